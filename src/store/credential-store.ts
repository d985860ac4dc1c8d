/**
 * Credentials created at runtime (API keys and SMTP accounts), one JSON record per credential in one
 * Redis hash, plus a version counter bumped by every change so each gateway knows when to reload.
 * Records hold keyed digests of their secrets, never the secrets (src/admin/credentials.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** What a credential may do: `send` (submit, read its own messages), `support` (search and read messages, remove a suppression), `admin` (everything). */
export const ROLES = ['send', 'support', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** One valid secret of a credential: its HMAC-SHA256 digest (hex) and, while a rotation overlaps, its end. */
export interface StoredSecret {
  digest: string;
  createdAt: number;
  /** Unix ms after which this secret no longer authenticates; null = until rotated or revoked. */
  notAfter: number | null;
}

export interface StoredWebhook {
  url: string;
  /** HMAC key of the Kurir-Signature header, shared with the receiver; never shown by the API or audited. */
  secret: string;
  /** Event types to send; null = all. */
  events: string[] | null;
}

export interface StoredCredential {
  id: string;
  kind: 'api-key' | 'smtp-account';
  name: string;
  role: Role;
  /** SMTP accounts: the login name. */
  username?: string;
  /** Lower-case sender domains, or ['*'] for every configured domain. */
  domains: string[];
  /** Priorities this credential may submit; null = all. */
  priorities: string[] | null;
  /** Overrides of `limits.credential`; null = the defaults. */
  limits: { perSecond?: number | null; perDay?: number | null } | null;
  /** API keys: where the booking system behind the key wants its events (the signing secret is needed to sign, so it is kept). */
  webhook?: StoredWebhook | null;
  secrets: StoredSecret[];
  createdAt: number;
  updatedAt: number;
  /** Who created it (`api-key:<name>` or `bootstrap`). */
  createdBy: string;
}

// Adds a record unless another has the same name (or, for SMTP accounts, user name). KEYS: hash version;
// ARGV: id json name username. Answers 1, or the conflicting field.
const CREATE_SCRIPT = `
for _, raw in ipairs(redis.call('HVALS', KEYS[1])) do
  local r = cjson.decode(raw)
  if r.name == ARGV[3] then return 'name' end
  if ARGV[4] ~= '' and r.username == ARGV[4] then return 'username' end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1`;

// Replaces a record only while it is still the one the change was made from: a concurrent revoke or change
// wins, and the caller reads again. KEYS: hash version; ARGV: id json previous-json. Answers 1, 0 (gone), -1 (changed).
const UPDATE_SCRIPT = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 0 end
if current ~= ARGV[3] then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1`;

/**
 * Redis storage of runtime credential records: name-checked creates, compare-and-set updates and deletes, each bumping the version
 * gateways reload on, plus the shared HMAC key of the secret digests.
 */
export class CredentialStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Every stored credential. */
  async all(): Promise<StoredCredential[]> {
    const raw = await this.redis.hvals(this.keys.credentials());
    return raw.map((r) => JSON.parse(r) as StoredCredential);
  }

  /** One credential, or null. */
  async get(id: string): Promise<StoredCredential | null> {
    const raw = await this.redis.hget(this.keys.credentials(), id);
    return raw ? (JSON.parse(raw) as StoredCredential) : null;
  }

  /** Stores a new credential; answers the field ('name' | 'username') another credential already holds, or null. */
  async create(record: StoredCredential): Promise<'name' | 'username' | null> {
    const res = await this.redis.eval(
      CREATE_SCRIPT,
      2,
      this.keys.credentials(),
      this.keys.credentialsVersion(),
      record.id,
      JSON.stringify(record),
      record.name,
      record.username ?? '',
    );
    return res === 1 ? null : (res as 'name' | 'username');
  }

  /**
   * Replaces `previous` (as `get` answered it) by `record`: 'changed' when another change or a rotation was
   * written since it was read (read again and redo the change), 'gone' when it no longer exists.
   */
  async update(record: StoredCredential, previous: StoredCredential): Promise<'updated' | 'changed' | 'gone'> {
    // A record parsed and stringified again is byte for byte what JSON.stringify stored.
    const res = await this.redis.eval(
      UPDATE_SCRIPT,
      2,
      this.keys.credentials(),
      this.keys.credentialsVersion(),
      record.id,
      JSON.stringify(record),
      JSON.stringify(previous),
    );
    return res === 1 ? 'updated' : res === 0 ? 'gone' : 'changed';
  }

  /** Deletes a credential (revocation); false when there was none. */
  async remove(id: string): Promise<boolean> {
    const [[, removed]] = (await this.redis.multi().hdel(this.keys.credentials(), id).incr(this.keys.credentialsVersion()).exec()) as [[unknown, number]];
    return removed === 1;
  }

  /** The change counter (0 before any change). */
  async version(): Promise<number> {
    return Number((await this.redis.get(this.keys.credentialsVersion())) ?? 0);
  }

  /** The shared HMAC key of the digests: the configured one, else created once in Redis. */
  async secret(configured: string): Promise<string> {
    if (configured) return configured;
    await this.redis.set(this.keys.credentialSecret(), randomBytes(32).toString('hex'), 'NX');
    return (await this.redis.get(this.keys.credentialSecret())) as string;
  }
}
