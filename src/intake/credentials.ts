import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Role, StoredCredential, StoredWebhook } from '../store/credential-store.js';

/** Who is submitting: an API key or SMTP account, with the sender domains it may use. */
export interface Credential {
  kind: 'api-key' | 'smtp-account';
  name: string;
  /** Lower-case sender domains, or null for every configured domain (`*`). */
  domains: ReadonlySet<string> | null;
  /** Whether the role is `admin` (config: `admin: true`). */
  admin: boolean;
  /** The role; absent = `admin` when `admin` is set, else `send` (config credentials). */
  role?: Role;
  /** Runtime credentials: the id under /v1/credentials. */
  id?: string;
  /** Priorities it may submit; absent or null = all. */
  priorities?: ReadonlySet<string> | null;
  /** Overrides of `limits.credential` (the intake limiter reads config credentials' from the config itself). */
  limits?: { perSecond?: number | null; perDay?: number | null } | null;
}

/** The role of a credential: its own, else `admin` for admin config credentials, else `send`. */
export function roleOf(cred: Credential): Role {
  return cred.role ?? (cred.admin ? 'admin' : 'send');
}

/** Whether a credential may submit at `priority`. */
export function mayUsePriority(cred: Credential, priority: string): boolean {
  return !cred.priorities || cred.priorities.has(priority);
}

/** The keyed digest (hex) a runtime credential's secret is stored and looked up as. */
export function keyedDigest(hmacKey: string, secret: string): string {
  return createHmac('sha256', hmacKey).update(secret).digest('hex');
}

/** A runtime credential as the registry uses it. */
interface RuntimeEntry {
  cred: Credential;
  record: StoredCredential;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

const UNKNOWN_USER_DIGEST = sha256('\0no such account\0');

/** `sha256:<hex>` stays a digest; anything else is the secret itself and is hashed here. */
function digestOf(secret: string): Buffer {
  return secret.startsWith('sha256:') ? Buffer.from(secret.slice(7), 'hex') : sha256(secret);
}

function scope(domains: string[]): ReadonlySet<string> | null {
  return domains.includes('*') ? null : new Set(domains.map((d) => d.toLowerCase()));
}

/** Whether a credential may send as `domain`. */
export function mayUseDomain(cred: Credential, domain: string): boolean {
  return cred.domains === null || cred.domains.has(domain.toLowerCase());
}

/** Looks up API keys and SMTP accounts from config; secrets are compared as SHA-256 digests in constant time. */
export class CredentialRegistry {
  private readonly apiKeys: Array<{ digest: Buffer; cred: Credential }>;
  private readonly accounts = new Map<string, { digest: Buffer; cred: Credential }>();
  private runtimeKeys = new Map<string, RuntimeEntry>();
  private runtimeAccounts = new Map<string, RuntimeEntry>();
  private runtimeWebhooks = new Map<string, StoredWebhook>();
  private hmacKey: string | null = null;
  private catchUp: (() => Promise<void>) | null = null;

  constructor(config: Pick<Config, 'apiKeys' | 'smtpAccounts'>) {
    this.apiKeys = config.apiKeys.map((k) => ({
      digest: digestOf(k.key),
      cred: { kind: 'api-key', name: k.name, domains: scope(k.domains), admin: k.admin, limits: k.limits ?? null },
    }));
    for (const a of config.smtpAccounts) {
      this.accounts.set(a.username, {
        digest: digestOf(a.password),
        cred: { kind: 'smtp-account', name: a.name, domains: scope(a.domains), admin: a.admin, limits: a.limits ?? null },
      });
    }
  }

  /**
   * Replaces the runtime credentials (src/intake/runtime-credentials.ts keeps them current) and the HMAC
   * key their digests are made with.
   */
  setRuntime(hmacKey: string, records: StoredCredential[]): void {
    const keys = new Map<string, RuntimeEntry>();
    const accounts = new Map<string, RuntimeEntry>();
    const webhooks = new Map<string, StoredWebhook>();
    for (const record of records) {
      if (record.kind === 'api-key' && record.webhook) webhooks.set(record.name, record.webhook);
      const cred: Credential = {
        kind: record.kind,
        name: record.name,
        id: record.id,
        domains: scope(record.domains),
        admin: record.role === 'admin',
        role: record.role,
        priorities: record.priorities ? new Set(record.priorities) : null,
        limits: record.limits,
      };
      const entry = { cred, record };
      if (record.kind === 'smtp-account' && record.username) accounts.set(record.username, entry);
      // Looked up by keyed digest: a map hit reveals nothing about other keys, so no constant-time walk is needed.
      else if (record.kind === 'api-key') for (const s of record.secrets) keys.set(s.digest, entry);
    }
    this.hmacKey = hmacKey;
    this.runtimeKeys = keys;
    this.runtimeAccounts = accounts;
    this.runtimeWebhooks = webhooks;
  }

  /** The credential of an API key (config first, then runtime keys whose secret is still valid at `now`), or null. */
  byApiKey(key: string, now = Date.now()): Credential | null {
    const d = sha256(key);
    let found: Credential | null = null;
    for (const k of this.apiKeys) if (k.digest.length === d.length && timingSafeEqual(k.digest, d)) found = k.cred;
    if (found || this.hmacKey === null) return found;
    const digest = keyedDigest(this.hmacKey, key);
    const entry = this.runtimeKeys.get(digest);
    const secret = entry?.record.secrets.find((s) => s.digest === digest);
    return entry && secret && (secret.notAfter === null || secret.notAfter > now) ? entry.cred : null;
  }

  /**
   * Sets how to catch up with credentials changed on another gateway (RuntimeCredentials.refresh: one
   * Redis read when nothing moved). Without it the resolve methods are the plain lookups.
   */
  setCatchUp(catchUp: (() => Promise<void>) | null): void {
    this.catchUp = catchUp;
  }

  /** Runs a lookup; on a miss catches up once (a key created a moment ago on another gateway) and looks again. */
  private async resolve(lookup: () => Credential | null): Promise<Credential | null> {
    const found = lookup();
    if (found || !this.catchUp) return found;
    // Redis not answering leaves the miss a miss; the throttle in front reports the outage itself.
    await this.catchUp().catch(() => undefined);
    return lookup();
  }

  /** byApiKey, catching up on a miss so a key is usable on every gateway as soon as it is created. */
  resolveApiKey(key: string, now = Date.now()): Promise<Credential | null> {
    return this.resolve(() => this.byApiKey(key, now));
  }

  /** bySmtpLogin, catching up on a miss like resolveApiKey. */
  resolveSmtpLogin(username: string, password: string, now = Date.now()): Promise<Credential | null> {
    return this.resolve(() => this.bySmtpLogin(username, password, now));
  }

  /** Whether an SMTP account has this user name (for failure statistics, after the constant-time check). */
  hasSmtpUser(username: string): boolean {
    return this.accounts.has(username) || this.runtimeAccounts.has(username);
  }

  /** The credential of an SMTP account whose password matches, or null. */
  bySmtpLogin(username: string, password: string, now = Date.now()): Credential | null {
    const entry = this.accounts.get(username);
    const d = sha256(password);
    // Unknown user names cost the same comparison, so timing does not tell which accounts exist.
    const expected = entry && entry.digest.length === d.length ? entry.digest : UNKNOWN_USER_DIGEST;
    const match = timingSafeEqual(expected, d);
    if (entry) return match ? entry.cred : null;
    const runtime = this.runtimeAccounts.get(username);
    if (!runtime || this.hmacKey === null) return null;
    const given = Buffer.from(keyedDigest(this.hmacKey, password), 'hex');
    let ok = false;
    for (const s of runtime.record.secrets) {
      const stored = Buffer.from(s.digest, 'hex');
      if (stored.length === given.length && timingSafeEqual(stored, given) && (s.notAfter === null || s.notAfter > now)) ok = true;
    }
    return ok ? runtime.cred : null;
  }

  /** The webhook of a runtime API key by its name (the owner of its messages), or undefined. */
  runtimeWebhook(owner: string): StoredWebhook | undefined {
    return this.runtimeWebhooks.get(owner);
  }

  /** Names of the config credentials (runtime ones may not reuse them) and SMTP user names. */
  configNames(): { names: Set<string>; usernames: Set<string> } {
    return {
      names: new Set([...this.apiKeys.map((k) => k.cred.name), ...[...this.accounts.values()].map((a) => a.cred.name)]),
      usernames: new Set(this.accounts.keys()),
    };
  }

  /** The config credentials, for listing (read-only: they change with the config file). */
  configCredentials(): Array<Credential & { username?: string }> {
    return [...this.apiKeys.map((k) => k.cred), ...[...this.accounts.entries()].map(([username, a]) => ({ ...a.cred, username }))];
  }
}
