import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

export interface Suppression {
  address: string;
  reason: string;
  source: string;
  at: number;
  messageId?: string;
}

/** The suppression list: addresses intake refuses. Filled by the feedback loop and by admins. */
export class SuppressionStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Adds or replaces an entry. */
  async add(entry: Suppression): Promise<void> {
    await this.redis.hset(this.keys.suppressions(), entry.address.toLowerCase(), JSON.stringify(entry));
  }

  /** Removes an address; returns whether it was there. */
  async remove(address: string): Promise<boolean> {
    return (await this.redis.hdel(this.keys.suppressions(), address.toLowerCase())) === 1;
  }

  /** The entries among `addresses` that are suppressed, in one round trip. */
  async check(addresses: string[]): Promise<Suppression[]> {
    if (!addresses.length) return [];
    const values = await this.redis.hmget(this.keys.suppressions(), ...addresses.map((a) => a.toLowerCase()));
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as Suppression);
  }
}
