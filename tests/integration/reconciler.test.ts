/**
 * The reconciler against real Redis and the real delivery queue: every way a stored, non-final message can end up
 * without a live delivery job is found and repaired in one pass, and nothing else is touched.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { retryNow } from '../../src/admin/delivery-control.js';
import { Reconciler } from '../../src/delivery/reconciler.js';
import { createLogger } from '../../src/lib/logger.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { DeliveryQueue, deliveryJobId } from '../../src/queue/delivery-queue.js';
import { createKeys, type Keys } from '../../src/store/keys.js';
import { LiveIndex } from '../../src/store/live-index.js';
import { RECIPIENT_FIELD_PREFIX } from '../../src/store/message-scripts.js';
import { MessageStore } from '../../src/store/message-store.js';
import type { MessageRecord } from '../../src/store/types.js';
import { dropPrefix } from '../helpers/test-gateway.js';
import { messageRecord } from '../helpers/message-record.js';

let prefix: string;
let keys: Keys;
let redis: Redis;
let queue: DeliveryQueue;
let messages: MessageStore;
let live: LiveIndex;
let now = Date.now();
const clock = { now: () => now };
const metrics = createMetrics({ defaultMetrics: false });
const logger = createLogger({ level: 'silent' });
const config = { intervalSeconds: 60, graceSeconds: 30, batchSize: 3, maxPerPass: 1000 };
let n = 0;

const record = (id: string, recipients: string[], createdAt: number): MessageRecord => messageRecord(id, recipients, { createdAt });

/** Stores a message as intake would, without queueing it. */
async function stored(recipients: string[], ageSeconds = 120): Promise<string> {
  const id = `m${String(++n).padStart(21, '0')}`;
  await messages.create(record(id, recipients, now - ageSeconds * 1000), Buffer.from('Subject: x\r\n\r\nbody\r\n'));
  return id;
}

function reconciler(): Reconciler {
  return new Reconciler({ live, queue, messages, metrics, logger, clock, config });
}

/** Moves a job to the failed set the way the queue does it: taken by a worker that died, its lease run out too often. */
async function failJob(jobId: string): Promise<void> {
  const { jobs } = await queue.step([], 1, Date.now() - 1, 'dead-worker.');
  expect(jobs.map((j) => j.id)).toEqual([jobId]);
  expect(await queue.recover(0)).toMatchObject({ failed: 1 });
  expect((await queue.presence([jobId]))[0]).toBe('failed');
}

beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
});
beforeEach(async () => {
  if (prefix) {
    await queue.close();
    await dropPrefix(prefix);
  }
  prefix = `kurir-test-recon-${Math.random().toString(36).slice(2, 8)}`;
  keys = createKeys(prefix);
  queue = new DeliveryQueue(redis, keys);
  messages = new MessageStore(redis, keys, 3600);
  live = new LiveIndex(redis, keys);
  now = Date.now();
});
afterAll(async () => {
  await queue.close();
  await redis.quit();
  await dropPrefix(prefix);
});

it('re-queues stored-but-not-queued messages and failed jobs, finalizes final ones, drops vanished ones, and leaves healthy and young ones alone', async () => {
  const orphan = await stored(['a@one.test', 'b@two.test']);
  const failed = await stored(['c@one.test']);
  await queue.enqueue(failed, 'verification', ['one.test']);
  await failJob(deliveryJobId(failed, 'one.test'));
  const healthy = await stored(['d@one.test']);
  await queue.enqueue(healthy, 'verification', ['one.test']);
  const young = await stored(['e@one.test'], 5);
  const finished = await stored(['f@one.test']);
  await redis.hset(keys.message(finished), `${RECIPIENT_FIELD_PREFIX}f@one.test`, JSON.stringify({ status: 'delivered', attempts: 1, updatedAt: now }));
  const vanished = 'm999999999999999999999';
  await redis.zadd(keys.liveMessages(), now - 100_000, vanished);

  const before = (await metrics.registry.getSingleMetricAsString('kurir_queue_reconciled_total')).match(/reason="missing-job"} (\d+)/)?.[1];
  const report = await reconciler().runOnce();
  expect(report).toEqual({ skipped: false, checked: 5, requeued: 2, retried: 1, finalized: 1, dropped: 1 });

  const ids = [
    deliveryJobId(orphan, 'one.test'),
    deliveryJobId(orphan, 'two.test'),
    deliveryJobId(failed, 'one.test'),
    deliveryJobId(healthy, 'one.test'),
    deliveryJobId(young, 'one.test'),
  ];
  expect(await queue.presence(ids)).toEqual(['live', 'live', 'live', 'live', 'missing']);
  expect(await redis.zscore(keys.liveMessages(), finished)).toBeNull();
  expect(await redis.hexists(keys.message(finished), 'body')).toBe(0);
  expect(await redis.zscore(keys.liveMessages(), vanished)).toBeNull();
  const text = await metrics.registry.getSingleMetricAsString('kurir_queue_reconciled_total');
  expect(Number(text.match(/reason="missing-job"} (\d+)/)?.[1]) - Number(before)).toBe(2);

  // A second pass finds nothing to do; once the young message is past the grace, it is handled too.
  expect(await reconciler().runOnce()).toMatchObject({ requeued: 0, retried: 0 });
  now += 60_000;
  expect(await reconciler().runOnce()).toMatchObject({ requeued: 1 });
});

it('removes a failed job whose recipients are final instead of retrying it', async () => {
  const id = await stored(['a@one.test']);
  await queue.enqueue(id, 'verification', ['one.test']);
  await failJob(deliveryJobId(id, 'one.test'));
  await redis.hset(keys.message(id), `${RECIPIENT_FIELD_PREFIX}a@one.test`, JSON.stringify({ status: 'bounced', attempts: 1, updatedAt: now }));
  expect(await reconciler().runOnce()).toMatchObject({ retried: 0, finalized: 1 });
  expect(await queue.presence([deliveryJobId(id, 'one.test')])).toEqual(['missing']);
});

it('walks a large index in bounded passes from where the last one stopped', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 7; i++) ids.push(await stored([`u${i}@one.test`]));
  const small = new Reconciler({ live, queue, messages, metrics, logger, clock, config: { ...config, batchSize: 2, maxPerPass: 4 } });
  expect(await small.runOnce()).toMatchObject({ checked: 4, requeued: 4 });
  expect(await small.runOnce()).toMatchObject({ checked: 3, requeued: 3 });
  expect(await queue.presence(ids.map((id) => deliveryJobId(id, 'one.test')))).toEqual(ids.map(() => 'live'));
});

it('runs one pass at a time across processes (a Redis lock)', async () => {
  for (let i = 0; i < 5; i++) await stored([`p${i}@one.test`]);
  const [a, b] = await Promise.all([reconciler().runOnce(), reconciler().runOnce()]);
  expect([a.skipped, b.skipped].sort()).toEqual([false, true]);
  expect(a.requeued + b.requeued).toBe(5);
});

it('indexes messages stored before the live index existed, once', async () => {
  const id = await stored(['old@one.test']);
  await redis.del(keys.liveMessages());
  expect(await live.buildOnce()).toBe(1);
  expect(await redis.zscore(keys.liveMessages(), id)).not.toBeNull();
  expect(await live.buildOnce()).toBe(0);
});

it('retry (admin) moves a failed job back to wait and re-creates a missing one', async () => {
  const id = await stored(['a@one.test', 'b@two.test']);
  await queue.enqueue(id, 'verification', ['one.test']);
  await failJob(deliveryJobId(id, 'one.test'));
  const shaper = { status: async () => [] } as never;
  const res = await retryNow({ queue, messages, shaper, clock }, id);
  expect(res.jobs.sort((x, y) => x.domain.localeCompare(y.domain))).toEqual([
    { domain: 'one.test', state: 'failed', promoted: true },
    { domain: 'two.test', state: 'missing', promoted: true },
  ]);
  expect(await queue.presence([deliveryJobId(id, 'one.test'), deliveryJobId(id, 'two.test')])).toEqual(['live', 'live']);
});
