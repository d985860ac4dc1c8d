import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** What the authentication self-check verifies for a domain. */
export type SelfCheckName = 'dkim' | 'spf' | 'dmarc';

/** One verification of the probe message. */
export interface SelfCheckOutcome {
  check: SelfCheckName;
  ok: boolean;
  /** Why it failed, in words an admin can act on. */
  reason?: string;
}

/** The latest self-check of one sender domain, shared by every gateway. */
export interface SelfCheckResult {
  domain: string;
  /** When it ran (ms). */
  at: number;
  /** The sender-domains change counter it ran at: a higher one makes the domain due at once. */
  version: number;
  ok: boolean;
  checks: SelfCheckOutcome[];
}

/** The latest self-check result per domain and the lock that lets one worker of the cluster check a domain at a time. */
export class SelfCheckStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Stores the domain's latest result, replacing the one before. */
  async put(result: SelfCheckResult): Promise<void> {
    await this.redis.hset(this.keys.authSelfCheck(), result.domain, JSON.stringify(result));
  }

  /** The domain's latest result (the domain spelled as it was stored), or null when none is stored. */
  async get(domain: string): Promise<SelfCheckResult | null> {
    const raw = await this.redis.hget(this.keys.authSelfCheck(), domain);
    return raw ? (JSON.parse(raw) as SelfCheckResult) : null;
  }

  /** Every stored result by domain. */
  async all(): Promise<Map<string, SelfCheckResult>> {
    const raw = await this.redis.hgetall(this.keys.authSelfCheck());
    return new Map(Object.entries(raw).map(([d, v]) => [d, JSON.parse(v) as SelfCheckResult]));
  }

  /** Drops the results of domains no longer checked. */
  async drop(domains: string[]): Promise<void> {
    if (domains.length) await this.redis.hdel(this.keys.authSelfCheck(), ...domains);
  }

  /** Takes the domain's lock for `ttlMs` unless another worker holds it; answers whether it did. */
  async lock(domain: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.authSelfCheckLock(domain), owner, 'PX', Math.max(1, Math.round(ttlMs)), 'NX')) === 'OK';
  }

  /** Releases the lock if this owner still holds it. */
  async unlock(domain: string, owner: string): Promise<void> {
    await this.redis.eval(UNLOCK, 1, this.keys.authSelfCheckLock(domain), owner);
  }
}

const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
