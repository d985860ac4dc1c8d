/**
 * The queue's step reads each taken job's message with it (src/queue/queue-scripts.ts PRELOAD), and the delivery
 * pipeline's first stage uses that copy instead of reading the message again (src/delivery/stages/job.ts): one
 * round trip less per job. Against the shared real Redis: the body's bytes come back intact, a message that is
 * gone, too large or not a hash is left for the worker to read, and an older layout is still migrated.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { type DeliveryDeps, loadJob } from '../../src/delivery/stages/job.js';
import { DeliveryQueue, PRELOAD_MAX_BYTES, type QueuedJob } from '../../src/queue/delivery-queue.js';
import { createKeys, type Keys } from '../../src/store/keys.js';
import { deliveryViewFromHash } from '../../src/store/delivery-view.js';
import { MessageStore } from '../../src/store/message-store.js';
import type { MessageRecord } from '../../src/store/types.js';
import { messageRecord } from '../helpers/message-record.js';
import { dropPrefix } from '../helpers/test-gateway.js';

let redis: Redis;
let prefix = '';
let keys: Keys;
let queue: DeliveryQueue;
let store: MessageStore;

beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
});
beforeEach(async () => {
  if (prefix) await dropPrefix(prefix);
  prefix = `kurir-test-preload-${Math.random().toString(36).slice(2, 8)}`;
  keys = createKeys(prefix);
  queue = new DeliveryQueue(redis, keys);
  store = new MessageStore(redis, keys, 600, { onEvents: async () => undefined });
});
afterAll(async () => {
  await dropPrefix(prefix);
  await redis.quit();
});

const record = (id: string, recipients: string[]): MessageRecord => messageRecord(id, recipients);

/** Stores a message with `body` and queues its jobs, as intake does. */
async function accepted(id: string, recipients: string[], body: Buffer): Promise<MessageRecord> {
  const rec = record(id, recipients);
  expect(await store.create(rec, body, [], true)).toBe(true);
  return rec;
}

const deps = (): DeliveryDeps => ({ messages: store }) as unknown as DeliveryDeps;
const asDeliveryJob = (j: QueuedJob) => ({ id: j.id, ...j.data, attemptsStarted: j.attemptsStarted, preloaded: j.message });

it('hands each taken job its message, body bytes intact, and the pipeline reads nothing more', async () => {
  // Bytes that are not UTF-8 must survive: the step's reply is read as binary.
  const body = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.from([0xff, 0x00, 0xfe, 0x80]), Buffer.from('\r\n')]);
  const rec = await accepted('p1', ['a@one.test', 'b@one.test', 'c@two.test'], body);
  const { jobs } = await queue.step([], 10, Date.now() + 60_000, 'w.');
  expect(jobs.map((j) => j.id).sort()).toEqual(['p1_one.test', 'p1_two.test']);
  for (const j of jobs) expect(deliveryViewFromHash(j.message ?? [])).toEqual(await store.getForDelivery('p1'));

  // The message is gone from Redis now: only the copy read with the job can answer.
  await redis.del(keys.message('p1'));
  const one = jobs.find((j) => j.data.domain === 'one.test') as QueuedJob;
  const loaded = await loadJob(deps(), asDeliveryJob(one));
  expect(loaded?.record).toEqual(rec);
  expect(loaded?.pending).toEqual(['a@one.test', 'b@one.test']);
  expect(loaded?.attempt).toBe(1);
  expect(loaded?.body?.equals(body)).toBe(true);
  // Without the copy the pipeline reads Redis, and finds nothing to do.
  expect(await loadJob(deps(), { ...asDeliveryJob(one), preloaded: undefined })).toBeNull();
});

it('leaves a message that is gone, too large or not a hash for the worker to read, and still takes the job', async () => {
  await accepted('big', ['a@one.test'], Buffer.alloc(PRELOAD_MAX_BYTES + 1, 'x'));
  await accepted('small', ['a@one.test'], Buffer.alloc(PRELOAD_MAX_BYTES, 'x'));
  await queue.enqueue('gone', 'normal', ['one.test']);
  await queue.enqueue('odd', 'normal', ['one.test']);
  await redis.set(keys.message('odd'), 'not a hash');
  const { jobs } = await queue.step([], 10, Date.now() + 60_000, 'w.');
  const byMessage = new Map(jobs.map((j) => [j.data.messageId, j]));
  expect([...byMessage.keys()].sort()).toEqual(['big', 'gone', 'odd', 'small']);
  expect(byMessage.get('big')?.message).toBeUndefined();
  expect(byMessage.get('gone')?.message).toBeUndefined();
  expect(byMessage.get('odd')?.message).toBeUndefined();
  expect(byMessage.get('small')?.message?.length).toBeGreaterThan(0);
  // The large one is read by the pipeline itself, whole.
  const big = await loadJob(deps(), asDeliveryJob(byMessage.get('big') as QueuedJob));
  expect(big?.body?.length).toBe(PRELOAD_MAX_BYTES + 1);
});

it('reads the message itself when the copy is in an older layout (record without recipient fields), and migrates it', async () => {
  const rec = record('old1', ['a@one.test']);
  // The layout before 2026-11-29: recipients and body under keys of their own.
  await redis.hset(keys.message('old1'), 'record', JSON.stringify(rec));
  await redis.hset(keys.legacyRecipients('old1'), 'a@one.test', JSON.stringify({ status: 'queued', attempts: 0, updatedAt: rec.createdAt }));
  await redis.set(keys.legacyBody('old1'), 'Subject: old\r\n\r\nbody\r\n');
  await queue.enqueue('old1', 'verification', ['one.test']);
  const [job] = (await queue.step([], 1, Date.now() + 60_000, 'w.')).jobs;
  expect(job.message?.length).toBe(2); // the record alone
  expect(deliveryViewFromHash(job.message ?? [])).toBeUndefined();
  const loaded = await loadJob(deps(), asDeliveryJob(job));
  expect(loaded?.pending).toEqual(['a@one.test']);
  expect(loaded?.body?.toString()).toContain('Subject: old');
  expect(await redis.exists(keys.legacyBody('old1'))).toBe(0);
});
