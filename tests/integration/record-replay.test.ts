/**
 * A record write retried after Redis answered too late (applied, answer lost: a stall past the command timeout) is
 * applied once: the write's id (the same across its retries) makes the retry a no-op that answers as the first try.
 * Real Redis (own prefix), the gateway's webhook producer and BullMQ webhook queue. Until 2 Dec 2026 the retry
 * appended the events again, marked `duplicate`, and counted kurir_delivery_superseded_total{reason="duplicate"}.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DeliveryDeps, LoadedJob } from '../../src/delivery/stages/job.js';
import { classifyAttempt, DELIVERED_RECORD_MS, recordAttempt } from '../../src/delivery/stages/outcome.js';
import { WebhookQueue } from '../../src/queue/webhook-queue.js';
import { createKeys } from '../../src/store/keys.js';
import { RECORD_WRITE_ID_TTL_MS } from '../../src/store/message-scripts.js';
import type { AppendedEvent, EventSink } from '../../src/store/message-store-types.js';
import { MessageStore } from '../../src/store/message-store.js';
import { WebhookStore } from '../../src/store/webhook-store.js';
import { WebhookProducer, type WebhookTarget } from '../../src/webhooks/events.js';
import { deliveryTestDeps, type DeliveryTestDeps } from '../helpers/delivery-deps.js';
import { messageRecord } from '../helpers/message-record.js';
import { counterValue, webhookJobsOf } from '../helpers/record-checks.js';

const prefix = `kurir-test-replay-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const target: WebhookTarget = { owner: 'booking', url: 'http://127.0.0.1:9/hook', secret: 'whsec-0123456789abcdef', events: new Set(['delivered', 'expired']) };

let redis: Redis;
let queue: WebhookQueue;
let t: DeliveryTestDeps;
let deps: DeliveryDeps;

beforeAll(async () => {
  redis = new Redis('redis://127.0.0.1:6379');
  t = deliveryTestDeps({
    redis,
    clock: { now: () => Date.now() },
    prefix,
    overrides: {},
    sink: ({ config, metrics, logger }) => {
      queue = new WebhookQueue(redis, keys, config.webhooks);
      return new WebhookProducer({ config, queue, store: new WebhookStore(redis, keys, 50), metrics, logger, targetOf: () => target });
    },
  });
  deps = t.deps;
});

afterAll(async () => {
  await queue.close();
  await redis.quit();
  await t.cleanUp();
});

const webhookJobs = (id: string): Promise<number[]> => webhookJobsOf(queue, id);
const counter = (name: string, labels: Record<string, string>): Promise<number> => counterValue(deps.metrics, name, labels);

/** A sink that records what it is handed. */
function recordingSink(): EventSink & { got: AppendedEvent[] } {
  const got: AppendedEvent[] = [];
  return { got, onEvents: async (_r, events) => void got.push(...events), wants: () => true };
}

it('remembers a write id for longer than a delivery record retries', () => {
  expect(RECORD_WRITE_ID_TTL_MS).toBeGreaterThanOrEqual(DELIVERED_RECORD_MS + 60_000);
});

it('a delivery record whose first try was applied but answered too late is recorded once: no duplicate, no second webhook', async () => {
  const record = messageRecord('replay0001', ['amy@dest.test', 'bo@dest.test']);
  await t.messages.create(record, Buffer.from('x'));
  // The first try goes through a store whose hand-on fails (as a process cut off before it): the script ran, the
  // events are in the outbox, and the caller sees a timeout instead of the answer.
  const cutOff: EventSink = { onEvents: async () => Promise.reject(new Error('cut off')), wants: () => true };
  const late = new MessageStore(redis, keys, 86_400, cutOff, { outboxGraceMs: 60_000 });
  let tries = 0;
  const messages = Object.create(t.messages) as typeof t.messages;
  messages.updateDetailed = async (...args) => {
    if (tries++ > 0) return t.messages.updateDetailed(...args);
    await late.updateDetailed(...args);
    throw new Error('Command timed out');
  };
  const duplicates = await counter('kurir_delivery_superseded_total', { reason: 'duplicate' });
  const settled = await counter('kurir_delivery_superseded_total', { reason: 'settled' });
  const now = Date.now();
  const outcomes = [
    { address: 'amy@dest.test', kind: 'delivered' as const, code: 250, reply: '250 2.0.0 Ok' },
    { address: 'bo@dest.test', kind: 'temp' as const, code: 451, reply: '451 4.3.0 try later' },
  ];
  const attempt = classifyAttempt(deps.rules, outcomes, { attempt: 1, now, retryAt: null, host: 'mx1.dest.test' });
  const loaded: LoadedJob = { record, pending: record.recipients, attempt: 1, body: null };
  await recordAttempt({ ...deps, messages }, loaded, 'other', attempt, [], now, async () => true);

  expect(tries).toBe(2);
  const view = (await t.messages.get(record.id))!;
  expect(view.events.map((e) => e.type)).toEqual(['queued', 'delivered', 'expired']);
  expect(view.events.some((e) => 'duplicate' in e || 'superseded' in e)).toBe(false);
  expect(view.status).toBe('partially-delivered');
  expect(await counter('kurir_delivery_superseded_total', { reason: 'duplicate' })).toBe(duplicates);
  expect(await counter('kurir_delivery_superseded_total', { reason: 'settled' })).toBe(settled);
  // The first try's events went into the outbox: the relay hands them on; the replay queues nothing of its own.
  expect(await webhookJobs(record.id)).toEqual([]);
  expect(await redis.zrange(keys.webhookOutbox(), '0', '-1')).toEqual([`${record.id}:1:2`]);
  await redis.zrem(keys.webhookOutbox(), `${record.id}:1:2`);
});

it('a replayed write without the outbox hands the first try’s events to the sink once, at their timeline indexes', async () => {
  const record = messageRecord('replay0002', ['cy@dest.test']);
  await t.messages.create(record, Buffer.from('x'));
  const sink = recordingSink();
  const store = new MessageStore(redis, keys, 86_400, sink);
  const update = [{ address: 'cy@dest.test', state: { status: 'delivered' as const, attempts: 1, updatedAt: Date.now() } }];
  const events = [{ type: 'delivered' as const, at: Date.now(), recipients: ['cy@dest.test'], host: 'mx1.dest.test', reply: '250 Ok' }];
  // Applied by a store whose answer nobody read (no sink), then retried with the same id.
  await new MessageStore(redis, keys, 86_400).updateDetailed(record.id, update, events, record, { id: 'w-1', retry: false });
  const replay = await store.updateDetailed(record.id, update, events, record, { id: 'w-1', retry: true });
  expect(replay).toEqual({ final: true, duplicates: [], replayed: true });
  expect(sink.got).toEqual([{ index: 1, event: events[0] }]);
  const again = await store.updateDetailed(record.id, update, events, record, { id: 'w-1', retry: true });
  expect(again.replayed).toBe(true);
  expect(sink.got).toHaveLength(2);
  expect((await store.get(record.id))!.events.map((e) => e.type)).toEqual(['queued', 'delivered']);
});

it('two writes with different ids (two runs both sent) still mark the second delivery duplicate', async () => {
  const record = messageRecord('replay0003', ['di@dest.test']);
  await t.messages.create(record, Buffer.from('x'));
  const store = new MessageStore(redis, keys, 86_400, recordingSink());
  const update = [{ address: 'di@dest.test', state: { status: 'delivered' as const, attempts: 1, updatedAt: Date.now() } }];
  const events = [{ type: 'delivered' as const, at: Date.now(), recipients: ['di@dest.test'], host: 'mx1.dest.test', reply: '250 Ok' }];
  expect(await store.updateDetailed(record.id, update, events, record, { id: 'run-a', retry: false })).toEqual({ final: true, duplicates: [] });
  expect(await store.updateDetailed(record.id, update, events, record, { id: 'run-b', retry: false })).toEqual({ final: true, duplicates: ['di@dest.test'] });
  const timeline = (await store.get(record.id))!.events;
  expect(timeline.map((e) => e.type)).toEqual(['queued', 'delivered', 'delivered']);
  expect(timeline[2]).toMatchObject({ duplicate: true });
  // Writes without an id behave as before: each is applied.
  expect(await store.updateDetailed(record.id, update, events, record)).toEqual({ final: true, duplicates: ['di@dest.test'] });
  expect(await redis.keys(`${prefix}:record-write:${record.id}:*`)).toHaveLength(2);
  expect(await redis.pttl(keys.recordWrite(record.id, 'run-a'))).toBeGreaterThan(DELIVERED_RECORD_MS);
});
