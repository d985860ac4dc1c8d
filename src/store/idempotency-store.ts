import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** What an Idempotency-Key holds: the request's hash and the message id reserved for it. */
export interface IdempotencyClaim {
  hash: string;
  id: string;
  at: number;
}

// Takes the key unless it is held, in one step: with a refused SET NX and a GET after it, a claim released in between
// read as taken by this call though nobody held the key (found 1 Dec 2026). SET NX GET would do it in one command but
// needs Redis 7.0; the README promises 6.2. KEYS: the key; ARGV: claim json, TTL seconds. Answers the claim held, or
// nil once taken.
const CLAIM_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false`;

// Deletes the key only while it holds the claim of this id, in one step: between a GET and a DEL the key could pass to
// another request's claim, which the DEL then removed. KEYS: the key; ARGV: the id. Answers 1 when deleted.
const RELEASE_SCRIPT = `
local held = redis.call('GET', KEYS[1])
if held and cjson.decode(held).id == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type IdempotencyRedis = Redis & {
  kurirIdemClaim(key: string, claim: string, ttlSeconds: number): Promise<string | null>;
  kurirIdemRelease(key: string, id: string): Promise<number>;
};

/**
 * Idempotency keys, scoped per credential. The first request claims the key with the id its message will
 * get, so a retry after a crash or timeout finds the same id and never queues a second message.
 */
export class IdempotencyStore {
  private readonly redis: IdempotencyRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly ttlSeconds: number,
  ) {
    this.redis = redis as IdempotencyRedis;
    // EVALSHA: the script text is not sent with every claim.
    if (typeof this.redis.kurirIdemClaim !== 'function') {
      this.redis.defineCommand('kurirIdemClaim', { numberOfKeys: 1, lua: CLAIM_SCRIPT });
      this.redis.defineCommand('kurirIdemRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
    }
  }

  /** Claims `key` for `claim`: null when this call took it, else the claim already there (nothing changed). */
  async claim(owner: string, key: string, claim: IdempotencyClaim): Promise<IdempotencyClaim | null> {
    const existing = await this.redis.kurirIdemClaim(this.keys.idempotency(owner, key), JSON.stringify(claim), Math.ceil(this.ttlSeconds));
    return existing === null ? null : (JSON.parse(existing) as IdempotencyClaim);
  }

  /** The claim held for `key`, if any, without taking it. */
  async get(owner: string, key: string): Promise<IdempotencyClaim | null> {
    const existing = await this.redis.get(this.keys.idempotency(owner, key));
    return existing ? (JSON.parse(existing) as IdempotencyClaim) : null;
  }

  /** Releases a claim whose request was refused, so a corrected retry with the same key can go through. */
  async release(owner: string, key: string, id: string): Promise<void> {
    await this.redis.kurirIdemRelease(this.keys.idempotency(owner, key), id);
  }
}
