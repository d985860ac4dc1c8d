import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { DeliveryQueue } from '../../src/queue/delivery-queue.js';
import { queueSnapshot } from '../../src/queue/snapshot.js';
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
  await queue.queue.add('deliver', { messageId: 'm3', domain: 'a.test', priority: 'normal' }, { delay: 60_000, priority: 5 });
  await queue.queue.add('deliver', { messageId: 'm4', domain: 'a.test', priority: 'verification' }, { delay: 60_000, priority: 1 });
  const snap = await queueSnapshot(queue.queue, { now: () => now + 90_000 });
  const count = (state: string, priority: string) => snap.jobs.find((j) => j.state === state && j.priority === priority)?.count;
  expect(count('prioritized', 'verification')).toBe(1);
  expect(count('prioritized', 'bulk')).toBe(3);
  expect(count('prioritized', 'normal')).toBe(0);
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
  await queue.queue.add('deliver', { messageId: 'p1', domain: 'gmail.snap.test', priority: 'verification' }, { delay: 60_000, priority: 1 });
  const snap = await queueSnapshot(queue.queue, { now: () => now + 300_000 }, providers);
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
