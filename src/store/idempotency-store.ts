import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** What an Idempotency-Key holds: the request's hash and the message id reserved for it. */
export interface IdempotencyClaim {
  hash: string;
  id: string;
  at: number;
}

/**
 * Idempotency keys, scoped per credential. The first request claims the key with the id its message will
 * get, so a retry after a crash or timeout finds the same id and never queues a second message.
 */
export class IdempotencyStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly ttlSeconds: number,
  ) {}

  /** Claims `key` for `claim`; returns the existing claim instead when one is there. */
  async claim(owner: string, key: string, claim: IdempotencyClaim): Promise<IdempotencyClaim | null> {
    const k = this.keys.idempotency(owner, key);
    const ok = await this.redis.set(k, JSON.stringify(claim), 'EX', Math.ceil(this.ttlSeconds), 'NX');
    if (ok === 'OK') return null;
    const existing = await this.redis.get(k);
    return existing ? (JSON.parse(existing) as IdempotencyClaim) : null;
  }

  /** The claim held for `key`, if any, without taking it. */
  async get(owner: string, key: string): Promise<IdempotencyClaim | null> {
    const existing = await this.redis.get(this.keys.idempotency(owner, key));
    return existing ? (JSON.parse(existing) as IdempotencyClaim) : null;
  }

  /** Releases a claim whose request was refused, so a corrected retry with the same key can go through. */
  async release(owner: string, key: string, id: string): Promise<void> {
    const k = this.keys.idempotency(owner, key);
    const existing = await this.redis.get(k);
    if (existing && (JSON.parse(existing) as IdempotencyClaim).id === id) await this.redis.del(k);
  }
}
