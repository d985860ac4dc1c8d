/** peekLimiters against a real Redis: the same answer as RateLimiterRedis.get, without MULTI, and not held by a write pause. */
import { Redis } from 'ioredis';
import { RateLimiterRedis, type RateLimiterRes } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peekLimiters } from '../../../src/shaping/limiter-peek.js';
import { openMonitor } from '../../helpers/redis-monitor.js';
import { dropPrefix } from '../../helpers/test-gateway.js';

const prefix = `kurir-test-peek-${Math.random().toString(36).slice(2, 8)}`;
let redis: Redis;

beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379', { enableOfflineQueue: false });
  return new Promise((r) => redis.once('ready', r));
});
afterAll(async () => {
  await redis.quit();
  await dropPrefix(prefix);
});

const limiterOf = (name: string, points: number, extra: Record<string, unknown> = {}): RateLimiterRedis =>
  new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `${prefix}:${name}`,
    points,
    duration: 600,
    rejectIfRedisNotReady: true,
    ...extra,
  } as ConstructorParameters<typeof RateLimiterRedis>[0]);

/** The fields a caller reads, with the TTL rounded to the second (the two reads are a few ms apart). */
const view = (r: RateLimiterRes | null) =>
  r && { consumedPoints: r.consumedPoints, remainingPoints: r.remainingPoints, secondsBeforeNext: Math.round(r.msBeforeNext / 1000) };

describe('peekLimiters', () => {
  it('answers what RateLimiterRedis.get answers: missing, counting and over-limit counters, in order', async () => {
    const a = limiterOf('a', 3);
    const b = limiterOf('b', 1);
    await a.consume('x', 2);
    await b.consume('y').catch(() => undefined);
    await b.consume('y').catch(() => undefined); // over: 2 of 1
    const items = [
      { limiter: a, key: 'x' },
      { limiter: a, key: 'never' },
      { limiter: b, key: 'y' },
    ];
    const peeked = await peekLimiters(redis, items);
    const got = await Promise.all(items.map((i) => i.limiter.get(i.key)));
    expect(peeked.map(view)).toEqual(got.map(view));
    expect(peeked.map(view)).toEqual([
      { consumedPoints: 2, remainingPoints: 1, secondsBeforeNext: 600 },
      null,
      { consumedPoints: 2, remainingPoints: 0, secondsBeforeNext: 600 },
    ]);
    // A peek consumes nothing.
    expect((await a.get('x'))?.consumedPoints).toBe(2);
  });

  it('reads a blocked key (blockDuration) with the block as its time to live', async () => {
    const l = limiterOf('blocked', 1, { blockDuration: 900 });
    await l.consume('ip').catch(() => undefined);
    await l.consume('ip').catch(() => undefined);
    const [peeked] = await peekLimiters(redis, [{ limiter: l, key: 'ip' }]);
    expect(view(peeked)).toEqual(view(await l.get('ip')));
    expect(view(peeked)?.secondsBeforeNext).toBe(900);
  });

  it('reads many counters with one MGET and a PTTL each, never MULTI, and none for an empty list', async () => {
    const l = limiterOf('many', 5);
    await l.consume('q');
    const monitor = await openMonitor();
    await peekLimiters(redis, []);
    const peeked = await peekLimiters(
      redis,
      ['p', 'q', 'r'].map((key) => ({ limiter: l, key })),
    );
    await monitor.sync();
    await monitor.close();
    const seen = monitor.commands
      .map((c) => c.args)
      .filter((args) => args.some((x) => x.startsWith(`${prefix}:many:`)) || /^(multi|exec)$/i.test(args[0]!))
      .map((args) => args.join(' ').toLowerCase());
    expect(peeked.map((r) => r?.consumedPoints ?? null)).toEqual([null, 1, null]);
    const k = (x: string) => `${prefix}:many:${x}`.toLowerCase();
    expect(seen).toEqual([`mget ${k('p')} ${k('q')} ${k('r')}`, `pttl ${k('p')}`, `pttl ${k('q')}`, `pttl ${k('r')}`]);
  });

  it('answers while Redis holds writes (CLIENT PAUSE WRITE, as in a failover)', async () => {
    const l = limiterOf('paused', 2);
    await l.consume('k');
    const admin = new Redis('redis://127.0.0.1:6379');
    await admin.call('CLIENT', 'PAUSE', '1000', 'WRITE');
    try {
      const started = Date.now();
      const [res] = await peekLimiters(redis, [{ limiter: l, key: 'k' }]);
      expect(res?.consumedPoints).toBe(1);
      expect(Date.now() - started).toBeLessThan(500);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE');
      await admin.quit();
    }
  });

  it('rejects without sending when the connection is not ready, like get with rejectIfRedisNotReady', async () => {
    const down = new Redis('redis://127.0.0.1:6379', { enableOfflineQueue: false, lazyConnect: true });
    const l = new RateLimiterRedis({
      storeClient: down,
      keyPrefix: `${prefix}:down`,
      points: 1,
      duration: 1,
      rejectIfRedisNotReady: true,
    } as ConstructorParameters<typeof RateLimiterRedis>[0]);
    await expect(peekLimiters(down, [{ limiter: l, key: 'k' }])).rejects.toThrow(/not ready/);
    await expect(l.get('k')).rejects.toThrow(/not ready/);
    down.disconnect();
  });
});
