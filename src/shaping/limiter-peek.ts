/**
 * Reads rate-limiter-flexible counters (RateLimiterRedis) without consuming: one MGET for all of them and one
 * PTTL each, sent together, instead of RateLimiterRedis.get's MULTI / GET / PTTL / EXEC per counter.
 *
 * Why: ioredis builds a Pipeline object for every MULTI and copies onto it each script defined on the connection
 * (Kurir and the limiter define about twenty-five), so each is a large object that lives for a Redis round trip.
 * At SMTP intake, whose MAIL FROM and RCPT TO peek three counters per message, they were the largest share of
 * the memory the intake process promoted to its old generation, and so of its full garbage collections
 * (docs/benchmarks.md). Plain reads rather than one Lua script: Redis holds a script during `CLIENT PAUSE WRITE`
 * (as in a failover) unless it is flagged `no-writes`, which Redis 6.2, still supported, cannot do; these checks
 * must not wait for writes.
 */
import type { Redis } from 'ioredis';
import { type RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

/** One counter to read: the limiter that owns it and the key as passed to its `consume`. */
export interface PeekItem {
  limiter: RateLimiterRedis;
  key: string;
}

/**
 * The current state of each item's counter, in order: null when it has no points in its window, else what
 * `RateLimiterRedis.get` would answer. The reads are not one transaction: a counter that expires between its
 * MGET and its PTTL is answered as gone (null). Rejects like `get` with `rejectIfRedisNotReady` when the
 * connection is not ready, and with the command's error when Redis fails.
 */
export async function peekLimiters(redis: Redis, items: readonly PeekItem[]): Promise<Array<RateLimiterRes | null>> {
  if (!items.length) return [];
  if (redis.status !== 'ready') throw new Error('Redis connection is not ready');
  const keys = items.map((i) => i.limiter.getKey(i.key));
  const [values, ttls] = await Promise.all([redis.mget(keys), Promise.all(keys.map((k) => redis.pttl(k)))]);
  return items.map((item, i) => {
    const value = values[i];
    const ttl = ttls[i];
    if (value === null || ttl === -2) return null;
    const consumed = Number.parseInt(value, 10);
    return new RateLimiterRes(Math.max(item.limiter.points - consumed, 0), ttl, consumed, false);
  });
}
