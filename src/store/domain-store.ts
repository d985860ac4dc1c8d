import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** Lifecycle of a runtime-managed sender domain (docs/domains.md). */
export type DomainState = 'pending-dns' | 'active' | 'rotating' | 'suspended' | 'removed';

/**
 * One DKIM key of a domain. `pending`: waiting for its DNS record (verify); `active`: signing; `retired`:
 * no longer signing, keep published until `keepPublishedUntil`; `revoked`: stopped at once by an admin.
 */
export type DomainKeyStatus = 'pending' | 'active' | 'retired' | 'revoked';

export interface DomainKeyRecord {
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  bits?: number;
  /** What the DNS record's p= tag must hold. */
  publicKeyBase64: string;
  /** AES-256-GCM sealed PKCS#8 PEM (src/dkim/key-vault.ts); never leaves the gateways unsealed. */
  sealedPrivateKey: string;
  status: DomainKeyStatus;
  createdAt: number;
  activatedAt?: number;
  retiredAt?: number;
  keepPublishedUntil?: number;
  revokedAt?: number;
}

export interface DomainVerification {
  at: number;
  /** The DKIM records of the keys that were checked all serve the matching key. */
  ok: boolean;
  problems: string[];
}

/** What happened to a domain, newest last (its timeline; the last MAX_DOMAIN_EVENTS are kept). */
export type DomainEventType =
  | 'added'
  | 'activated'
  | 'rotation-started'
  | 'rotation-waiting-dns'
  | 'rotation-switched'
  | 'key-age-warning'
  | 'revoked'
  | 'removed'
  | 'settings-changed';

export interface DomainEvent {
  at: number;
  type: DomainEventType;
  /** Who: `admin` (API or CLI) or `scheduler` (scheduled rotation). */
  by: 'admin' | 'scheduler';
  message: string;
  selectors?: string[];
}

/** How many events a domain keeps. */
export const MAX_DOMAIN_EVENTS = 50;

/** A rotation that waits for DNS: who started it and when. */
export interface DomainRotation {
  trigger: 'schedule' | 'manual';
  startedAt: number;
}

export interface DomainRecord {
  name: string;
  state: DomainState;
  /** Why the domain is not active (suspended: what happened), for intake refusals. */
  reason?: string;
  createdAt: number;
  updatedAt: number;
  /** Bumped by every write: a write based on an older read is refused (optimistic concurrency). */
  rev: number;
  keys: DomainKeyRecord[];
  lastVerification?: DomainVerification;
  /** Scheduled rotation of this domain: days between rotations, null = never; absent = domainKeys.rotation.everyDays. */
  rotationEveryDays?: number | null;
  /** The MTA-STS policy's mx: lines for this domain; absent = domainKeys.mtaSts.mx (or hostname). */
  mtaStsMx?: string[];
  /** Set while a rotation waits for DNS. */
  rotation?: DomainRotation;
  events?: DomainEvent[];
  /**
   * Selectors of earlier incarnations of the domain (removed, then added again) that its keys no longer list,
   * so a re-add never reuses a selector with another key; only recent months are kept (usedSelectorsSince).
   */
  usedSelectors?: string[];
}

/** Thrown when a domain changed between read and write; the caller reads again and retries or reports. */
export class DomainConflictError extends Error {
  constructor(domain: string) {
    super(`sender domain ${domain} was changed concurrently; try again`);
    this.name = 'DomainConflictError';
  }
}

/** Runtime-managed sender domains in Redis, one JSON value each, with a cluster-wide change counter. */
export class DomainStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** The stored record of a domain (any case; removed ones included), or null when it was never added. */
  async get(name: string): Promise<DomainRecord | null> {
    const raw = await this.redis.get(this.keys.senderDomain(name));
    return raw ? (JSON.parse(raw) as DomainRecord) : null;
  }

  /** Every stored domain (removed ones included), sorted by name. */
  async list(): Promise<DomainRecord[]> {
    const names = (await this.redis.smembers(this.keys.senderDomainIndex())).sort();
    if (!names.length) return [];
    const raws = await this.redis.mget(names.map((n) => this.keys.senderDomain(n)));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as DomainRecord);
  }

  /** The change counter: a gateway reloads its keys when it differs from what it loaded. */
  async version(): Promise<number> {
    return Number((await this.redis.get(this.keys.senderDomainsVersion())) ?? 0);
  }

  /**
   * Writes `record` if the stored one still has revision `record.rev - 1` (0: must not exist yet), and bumps
   * the change counter in the same transaction.
   *
   * @throws DomainConflictError when another writer came first
   */
  async put(record: DomainRecord): Promise<void> {
    const key = this.keys.senderDomain(record.name);
    const result = await this.redis.eval(
      PUT_SCRIPT,
      3,
      key,
      this.keys.senderDomainIndex(),
      this.keys.senderDomainsVersion(),
      String(record.rev - 1),
      JSON.stringify(record),
      record.name,
    );
    if (result !== 1) throw new DomainConflictError(record.name);
  }

  /** Takes the rotation scheduler's cluster-wide lock for `ttlMs` unless another gateway holds it; answers whether it did. */
  async lockRotation(owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.domainRotationLock(), owner, 'PX', Math.max(1, Math.round(ttlMs)), 'NX')) === 'OK';
  }

  /** Releases the rotation lock if `owner` still holds it. */
  async unlockRotation(owner: string): Promise<void> {
    await this.redis.eval(UNLOCK, 1, this.keys.domainRotationLock(), owner);
  }
}

const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

// Compare-and-set on the stored rev, index and counter in one atomic step.
const PUT_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
local rev = 0
if cur then rev = cjson.decode(cur).rev end
if tostring(rev) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('INCR', KEYS[3])
return 1`;
