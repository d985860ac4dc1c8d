import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.js';

/** Who is submitting: an API key or SMTP account, with the sender domains it may use. */
export interface Credential {
  kind: 'api-key' | 'smtp-account';
  name: string;
  /** Lower-case sender domains, or null for every configured domain (`*`). */
  domains: ReadonlySet<string> | null;
  admin: boolean;
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

  constructor(config: Pick<Config, 'apiKeys' | 'smtpAccounts'>) {
    this.apiKeys = config.apiKeys.map((k) => ({
      digest: digestOf(k.key),
      cred: { kind: 'api-key', name: k.name, domains: scope(k.domains), admin: k.admin },
    }));
    for (const a of config.smtpAccounts) {
      this.accounts.set(a.username, {
        digest: digestOf(a.password),
        cred: { kind: 'smtp-account', name: a.name, domains: scope(a.domains), admin: a.admin },
      });
    }
  }

  /** The credential of an API key, or null. */
  byApiKey(key: string): Credential | null {
    const d = sha256(key);
    let found: Credential | null = null;
    for (const k of this.apiKeys) if (k.digest.length === d.length && timingSafeEqual(k.digest, d)) found = k.cred;
    return found;
  }

  /** Whether an SMTP account has this user name (for failure statistics, after the constant-time check). */
  hasSmtpUser(username: string): boolean {
    return this.accounts.has(username);
  }

  /** The credential of an SMTP account whose password matches, or null. */
  bySmtpLogin(username: string, password: string): Credential | null {
    const entry = this.accounts.get(username);
    const d = sha256(password);
    // Unknown user names cost the same comparison, so timing does not tell which accounts exist.
    const expected = entry && entry.digest.length === d.length ? entry.digest : UNKNOWN_USER_DIGEST;
    const match = timingSafeEqual(expected, d);
    return entry && match ? entry.cred : null;
  }
}
