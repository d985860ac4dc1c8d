import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { DeliveryQueue } from '../../src/queue/delivery-queue.js';
import { queueSnapshot } from '../../src/queue/snapshot.js';
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
