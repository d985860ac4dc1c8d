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

/**
 * The cluster-wide cache of MTA-STS policies in Redis: one key per recipient domain, expiring with the policy's
 * max_age, and a marker of a failed fetch so a broken policy host is not asked again for every message.
 */
export class MtaStsStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** The cached policy of `domain` if it has not expired at `now`. */
  async get(domain: string, now: number): Promise<StoredMtaStsPolicy | null> {
    const raw = await this.redis.get(this.keys.mtaStsPolicy(domain));
    if (!raw) return null;
    const policy = JSON.parse(raw) as StoredMtaStsPolicy;
    return now < policy.fetchedAt + policy.maxAge * 1000 ? policy : null;
  }

  /** Caches a freshly fetched policy for its max_age (a max_age of 0 is applied once and not cached). */
  async put(domain: string, policy: StoredMtaStsPolicy): Promise<void> {
    const k = this.keys.mtaStsPolicy(domain);
    if (policy.maxAge < 1) {
      await this.redis.del(k);
      return;
    }
    await this.redis.multi().set(k, JSON.stringify(policy), 'EX', Math.ceil(policy.maxAge)).del(this.keys.mtaStsFetchFailed(domain)).exec();
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
