/**
 * The incident window's buffered writes (src/store/incident-buffer.ts) on a redis-server of the test's own:
 * counts gathered in memory land in Redis summed, with their TTLs, in one pipeline per flush; while Redis is
 * down they are kept and written once it answers again; GET /v1/incidents' flush-before-read sees them.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentBuffer } from '../../src/store/incident-buffer.js';
import { IncidentStore } from '../../src/store/incident-store.js';
import { createKeys } from '../../src/store/keys.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';

const keys = createKeys('kurir-test-incbuf');
const at = Date.UTC(2026, 10, 29, 13, 7, 30);
let priv: PrivateRedis;
let redis: Redis;
let pipelines = 0;

beforeAll(async () => {
  priv = await startPrivateRedis();
  redis = new Redis(priv.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  redis.on('error', () => undefined); // the second test stops the server on purpose
  await redis.ping();
  const pipeline = redis.pipeline.bind(redis);
  redis.pipeline = ((...a: Parameters<Redis['pipeline']>) => {
    pipelines++;
    return pipeline(...a);
  }) as Redis['pipeline'];
});

afterAll(async () => {
  redis.disconnect();
  await priv.destroy();
});

describe('incident buffer', () => {
  it('writes nothing until flushed, then the summed counts and the latest sample reply in one pipeline, with TTLs', async () => {
    const store = new IncidentStore(redis, keys);
    const buffer = new IncidentBuffer({ store, keys, logger: pino({ level: 'silent' }) });
    for (let i = 0; i < 50; i++) {
      await buffer.record('gmail', at, [{ status: 'delivered', category: 'ok', count: 1 }]);
      await buffer.recordVerification('gmail', at, 'delivered');
    }
    await buffer.record('gmail', at, [{ status: 'bounced', category: 'auth-failure', cause: 'dmarc', reply: '550 5.7.26 first', count: 2 }]);
    await buffer.record('gmail', at, [{ status: 'bounced', category: 'auth-failure', cause: 'dmarc', reply: '550 5.7.26 latest', count: 1 }]);
    await buffer.record('yahoo', at, [{ status: 'deferred', category: 'throttled', count: 3 }]);
    expect(await redis.exists(keys.incidentMinute('gmail', Math.floor(at / 60_000)))).toBe(0);
    const p0 = pipelines;
    await buffer.flush();
    expect(pipelines - p0).toBe(1);
    const [bucket] = (await store.window(['gmail'], at, 1)).get('gmail') ?? [];
    expect(bucket).toMatchObject({
      delivered: 50,
      verificationsDelivered: 50,
      bounced: { 'auth-failure': 3 },
      auth: { dmarc: { bounced: 3 } },
      replies: { dmarc: '550 5.7.26 latest' },
    });
    expect((await store.window(['yahoo'], at, 1)).get('yahoo')?.[0]?.deferred).toEqual({ throttled: 3 });
    expect(await redis.ttl(keys.incidentMinute('gmail', Math.floor(at / 60_000)))).toBeGreaterThan(3600);
    expect(await redis.ttl(keys.incidentHour('gmail', Math.floor(at / 3_600_000)))).toBeGreaterThan(7 * 86400);
    // Nothing pending: a second flush sends nothing.
    const p1 = pipelines;
    await buffer.flush();
    expect(pipelines).toBe(p1);
    await buffer.close();
  });

  it('keeps the counts while Redis is down and writes them, with what came meanwhile, once it answers', async () => {
    const store = new IncidentStore(redis, keys);
    const buffer = new IncidentBuffer({ store, keys, logger: pino({ level: 'silent' }) });
    const later = at + 3_600_000;
    await buffer.recordVerification('outlook', later, 'delivered');
    await priv.shutdown();
    await buffer.flush(); // fails: kept
    await buffer.recordVerification('outlook', later, 'delivered');
    await priv.start();
    await redis.ping();
    await buffer.close();
    const [bucket] = (await store.window(['outlook'], later, 1)).get('outlook') ?? [];
    expect(bucket?.verificationsDelivered).toBe(2);
  });
});
