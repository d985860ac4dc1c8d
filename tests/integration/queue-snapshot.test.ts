import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { DeliveryQueue } from '../../src/queue/delivery-queue.js';
import { combinedQueueSnapshot, queueSnapshot } from '../../src/queue/snapshot.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createProviderMap } from '../../src/metrics/provider.js';
import { createKeys } from '../../src/store/keys.js';
import { dropPrefix } from '../helpers/test-gateway.js';

const prefix = `kurir-test-snap-${Math.random().toString(36).slice(2, 8)}`;
let redis: Redis;
let queue: DeliveryQueue;

beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  queue = new DeliveryQueue(redis, createKeys(prefix));
});
afterAll(async () => {
  await queue.close();
  await redis.quit();
  await dropPrefix(prefix);
});

it('counts jobs by state and priority and reports the oldest waiting verification job', async () => {
  const now = Date.now();
  await queue.enqueue('m1', 'verification', ['a.test']);
  await queue.enqueue('m2', 'bulk', ['a.test', 'b.test', 'c.test']);
  await queue.add({ messageId: 'm3', domain: 'a.test', priority: 'normal' }, Date.now() + 60_000);
  await queue.add({ messageId: 'm4', domain: 'a.test', priority: 'verification' }, Date.now() + 60_000);
  const snap = await queueSnapshot(queue, { now: () => now + 90_000 });
  const count = (state: string, priority: string) => snap.jobs.find((j) => j.state === state && j.priority === priority)?.count;
  expect(count('waiting', 'verification')).toBe(1);
  expect(count('waiting', 'bulk')).toBe(3);
  expect(count('waiting', 'normal')).toBe(0);
  expect(count('delayed', 'normal')).toBe(1);
  expect(count('delayed', 'verification')).toBe(1);
  expect(count('active', 'bulk')).toBe(0);
  expect(snap.oldestVerificationAgeSeconds).toBeGreaterThanOrEqual(89);
  expect(snap.oldestVerificationAgeSeconds).toBeLessThan(100);
});

it('reports the oldest waiting verification job per provider of its recipient domain', async () => {
  const providers = createProviderMap([
    { provider: 'gmail', domains: ['gmail.snap.test'] },
    { provider: 'yahoo', domains: ['yahoo.snap.test'] },
  ]);
  const now = Date.now();
  await queue.add({ messageId: 'p1', domain: 'gmail.snap.test', priority: 'verification' }, Date.now() + 60_000);
  const snap = await queueSnapshot(queue, { now: () => now + 300_000 }, providers);
  const ages = snap.oldestVerificationAgeByProvider ?? {};
  // The stalled job belongs to gmail; yahoo has none waiting and is absent (the gauge reads 0 for it).
  expect(ages.gmail).toBeGreaterThanOrEqual(299);
  expect(ages.gmail).toBeLessThan(310);
  expect(ages.yahoo).toBeUndefined();
  // The jobs of the first test are to a.test: no provider rule, so "other".
  expect(ages.other).toBeGreaterThan(0);

  const metrics = createMetrics({ defaultMetrics: false, providers: providers.names() });
  metrics.setQueueProvider(async () => snap);
  const text = await metrics.render();
  expect(text).toMatch(/^kurir_queue_oldest_verification_age_seconds\{provider="gmail"\} (29\d|30\d)/m);
  expect(text).toMatch(/^kurir_queue_oldest_verification_age_seconds\{provider="yahoo"\} 0$/m);
});

it('sums the queues of every Redis holding delivery jobs (redis.shards), leaving out one that does not answer', async () => {
  const shardPrefix = `${prefix}-shard`;
  const shard = new DeliveryQueue(redis, createKeys(shardPrefix));
  // A shard whose Redis is down: nothing listens on port 1.
  const downRedis = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, lazyConnect: true });
  downRedis.on('error', () => undefined);
  const down = new DeliveryQueue(downRedis, createKeys(`${prefix}-down`));
  try {
    const providers = createProviderMap([{ provider: 'gmail', domains: ['gmail.snap.test'] }]);
    const now = Date.now();
    await shard.enqueue('s1', 'bulk', ['x.test', 'y.test']);
    await shard.add({ messageId: 's2', domain: 'gmail.snap.test', priority: 'verification' }, Date.now() + 60_000);
    const clock = { now: () => now + 600_000 };
    const main = await queueSnapshot(queue, clock, providers);
    const both = await combinedQueueSnapshot([queue, shard, down], clock, providers);
    const count = (snap: typeof main, state: string, priority: string) => snap.jobs.find((j) => j.state === state && j.priority === priority)?.count ?? 0;
    expect(count(both, 'waiting', 'bulk')).toBe(count(main, 'waiting', 'bulk') + 2);
    expect(count(both, 'delayed', 'verification')).toBe(count(main, 'delayed', 'verification') + 1);
    // The shard's stalled gmail job (10 min) is older than the main queue's (its clock is the same): the max wins.
    expect(both.oldestVerificationAgeByProvider?.gmail).toBeGreaterThanOrEqual(599);
    expect(both.oldestVerificationAgeSeconds).toBeGreaterThanOrEqual(main.oldestVerificationAgeSeconds);
    await expect(combinedQueueSnapshot([down], clock, providers)).rejects.toBeDefined();
  } finally {
    await shard.close();
    await down.close().catch(() => undefined);
    downRedis.disconnect();
    await dropPrefix(`${prefix}-shard`);
  }
});
