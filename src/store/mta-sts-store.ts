import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** A recipient domain's MTA-STS policy (RFC 8461 section 3.2) as fetched, with the id of its TXT record. */
export interface StoredMtaStsPolicy {
  id: string;
  mode: 'enforce' | 'testing' | 'none';
  /** MX host patterns, lower case; `*.` only as the leftmost label. */
  mx: string[];
  maxAge: number;
  /** When it was fetched (ms); it is valid until fetchedAt + maxAge. */
  fetchedAt: number;
}

/** How long a process reuses what it read of a domain's cached policy (or its absence) without asking Redis. */
export const MTA_STS_MEMORY_MS = 60_000;
const MEMORY_MAX_DOMAINS = 10_000;

/**
 * The cluster-wide cache of MTA-STS policies in Redis: one key per recipient domain, expiring with the policy's
 * max_age, and a marker of a failed fetch so a broken policy host is not asked again for every message. Each
 * process keeps what it read for {@link MTA_STS_MEMORY_MS}, so a delivery costs no Redis read; a caller that sees
 * a policy id newer than that copy asks again with `fresh` (another gateway may have fetched it).
 */
export class MtaStsStore {
  private readonly memory = new Map<string, { policy: StoredMtaStsPolicy | null; readAt: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** The cached policy of `domain` if it has not expired at `now`; `fresh` reads Redis even if read recently. */
  async get(domain: string, now: number, fresh = false): Promise<StoredMtaStsPolicy | null> {
    const kept = this.memory.get(domain);
    let policy: StoredMtaStsPolicy | null;
    if (!fresh && kept && now - kept.readAt >= 0 && now - kept.readAt < MTA_STS_MEMORY_MS) policy = kept.policy;
    else {
      const raw = await this.redis.get(this.keys.mtaStsPolicy(domain));
      policy = raw ? (JSON.parse(raw) as StoredMtaStsPolicy) : null;
      this.remember(domain, policy, now);
    }
    return policy && now < policy.fetchedAt + policy.maxAge * 1000 ? policy : null;
  }

  private remember(domain: string, policy: StoredMtaStsPolicy | null, now: number): void {
    if (this.memory.size >= MEMORY_MAX_DOMAINS && !this.memory.has(domain)) this.memory.clear();
    this.memory.set(domain, { policy, readAt: now });
  }

  /** Caches a freshly fetched policy for its max_age (a max_age of 0 is applied once and not cached). */
  async put(domain: string, policy: StoredMtaStsPolicy): Promise<void> {
    const k = this.keys.mtaStsPolicy(domain);
    if (policy.maxAge < 1) {
      await this.redis.del(k);
      this.memory.delete(domain);
      return;
    }
    await this.redis.multi().set(k, JSON.stringify(policy), 'EX', Math.ceil(policy.maxAge)).del(this.keys.mtaStsFetchFailed(domain)).exec();
    this.remember(domain, policy, policy.fetchedAt);
  }

  /** Remembers that fetching policy `id` of `domain` failed, for `seconds`. */
  async markFetchFailed(domain: string, id: string, seconds: number): Promise<void> {
    await this.redis.set(this.keys.mtaStsFetchFailed(domain), id, 'EX', Math.max(1, Math.ceil(seconds)));
  }

  /** True while a failed fetch of policy `id` of `domain` is remembered. */
  async fetchFailedRecently(domain: string, id: string): Promise<boolean> {
    return (await this.redis.get(this.keys.mtaStsFetchFailed(domain))) === id;
  }
}
