/**
 * The webhook outbox: an outcome recorded on the timeline reaches the booking system even when its webhook could
 * not be queued at once. Layout as with redis.shards (src/roles/core.ts): the message and its timeline on one Redis
 * (the shared one, own prefix), the webhook queue and webhook state on another (a private redis-server this test
 * stops). Until 1 Dec 2026 such an event was logged, counted as failed and never sent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js';
import { WebhookQueue } from '../../src/queue/webhook-queue.js';
import { createKeys } from '../../src/store/keys.js';
import { MessageStore } from '../../src/store/message-store.js';
import { createRedis, waitReady } from '../../src/store/redis.js';
import type { TimelineEvent } from '../../src/store/types.js';
import { WebhookStore } from '../../src/store/webhook-store.js';
import { WebhookProducer, type WebhookTarget } from '../../src/webhooks/events.js';
import { OutboxRelay } from '../../src/webhooks/outbox-relay.js';
import { startWebhookWorker, type WebhookWorker } from '../../src/webhooks/worker.js';
import { messageRecord } from '../helpers/message-record.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { dropPrefix, testConfig } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const prefix = `kurir-test-outbox-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const GRACE_MS = 300;
const logger = pino({ level: 'silent' });
const target: WebhookTarget = { owner: 'booking', url: '', secret: 'whsec-0123456789abcdef', events: new Set(['delivered', 'bounced', 'suppressed']) };
const targetOf = (owner: string): WebhookTarget | undefined => (owner === 'booking' ? target : undefined);

let main: PrivateRedis;
let hooks: WebhookReceiver;
let dataDir: string;
let messageRedis: Redis;
let mainRedis: Redis;
let queueRedis: Redis;
let blocking: Redis;
let queue: WebhookQueue;
let metrics: Metrics;
let messages: MessageStore;
let relay: OutboxRelay;
let worker: WebhookWorker;

/** The outbox counter's value for `result`. */
async function outboxCount(result: 'relayed' | 'gone'): Promise<number> {
  const values = (await metrics.registry.getSingleMetric('kurir_webhook_outbox_total')?.get())?.values ?? [];
  return values.find((v) => v.labels.result === result)?.value ?? 0;
}

const delivered = (address: string) => ({ address, state: { status: 'delivered' as const, attempts: 1, updatedAt: Date.now(), reply: '250 ok' } });
const deliveredEvent = (address: string): TimelineEvent => ({
  type: 'delivered',
  at: Date.now(),
  recipients: [address],
  host: 'mx.dest.test',
  reply: '250 ok',
});

beforeAll(async () => {
  main = await startPrivateRedis();
  hooks = await startWebhookReceiver();
  target.url = hooks.url;
  dataDir = mkdtempSync(join(tmpdir(), 'kurir-outbox-'));
  const config = testConfig(dataDir, { webhooks: { maxAttempts: 3, backoffSeconds: 0.2, timeoutSeconds: 2 } });
  metrics = createMetrics({ defaultMetrics: false });
  messageRedis = createRedis('redis://127.0.0.1:6379', 'command');
  mainRedis = createRedis(main.url, 'command');
  queueRedis = createRedis(main.url, 'command');
  blocking = createRedis(main.url, 'blocking');
  for (const r of [messageRedis, mainRedis, queueRedis, blocking]) r.on('error', () => undefined);
  await Promise.all([messageRedis, mainRedis, queueRedis].map((r) => waitReady(r)));
  const store = new WebhookStore(mainRedis, keys, 50);
  queue = new WebhookQueue(queueRedis, keys, config.webhooks);
  const producer = new WebhookProducer({ config, queue, store, metrics, logger, targetOf });
  messages = new MessageStore(messageRedis, keys, 600, producer, { outboxGraceMs: GRACE_MS });
  relay = new OutboxRelay({ outbox: messages.outbox, messages, producer, metrics, logger, graceMs: GRACE_MS });
  relay.start();
  worker = startWebhookWorker({ config, clock: { now: () => Date.now() }, logger, metrics, messages, store, targetOf }, blocking, keys);
});

afterAll(async () => {
  await relay.stop();
  await worker.close(1000);
  await queue.close();
  for (const r of [messageRedis, mainRedis, queueRedis, blocking]) r.disconnect();
  await hooks.close();
  await main.destroy();
  await dropPrefix(prefix);
  rmSync(dataDir, { recursive: true, force: true });
});

it('an event queued at once is sent once and leaves the outbox', async () => {
  const record = messageRecord('outboxok0001', ['a@dest.test']);
  await messages.create(record, Buffer.from('x'));
  await messages.update(record.id, [delivered('a@dest.test')], [deliveredEvent('a@dest.test')], record);
  await hooks.waitFor((b) => b?.messageId === record.id && b.type === 'delivered');
  await messages.outbox.flush();
  expect(await messages.outbox.size()).toBe(0);
  // Well past the grace: the relay found nothing to send again.
  await new Promise((r) => setTimeout(r, 3 * GRACE_MS));
  expect(hooks.matching((b) => b?.messageId === record.id)).toHaveLength(1);
  expect(await outboxCount('relayed')).toBe(0);
});

it('an event recorded while the webhook queue’s Redis is down is sent by the relay once that Redis is back', async () => {
  const record = messageRecord('outboxlost01', ['b@dest.test']);
  await messages.create(record, Buffer.from('x'));
  await main.shutdown();
  // The delivery records its outcome: the message's Redis answers, the webhook queue's does not.
  expect(await messages.update(record.id, [delivered('b@dest.test')], [deliveredEvent('b@dest.test')], record)).toBe(true);
  expect(await messages.outbox.size()).toBe(1);
  // The relay tries while it is still down (and puts the entry back for another grace).
  await new Promise((r) => setTimeout(r, 4 * GRACE_MS));
  expect(await messages.outbox.size()).toBe(1);
  await main.start();
  await Promise.all([mainRedis, queueRedis].map((r) => waitReady(r, 10_000)));

  const [hook] = await hooks.waitFor((b) => b?.messageId === record.id && b.type === 'delivered', 1, 15_000);
  expect(hook.body.recipients).toEqual(['b@dest.test']);
  await until(async () => (await messages.outbox.size()) === 0);
  expect(await outboxCount('relayed')).toBe(1);
  expect(hooks.matching((b) => b?.messageId === record.id)).toHaveLength(1);
}, 30_000);

it('events no webhook wants, and superseded outcomes, never enter the outbox; an entry whose message is gone is dropped', async () => {
  const other = messageRecord('outboxnone01', ['c@dest.test'], { owner: 'nobody' });
  await messages.create(other, Buffer.from('x'));
  await messages.update(other.id, [delivered('c@dest.test')], [deliveredEvent('c@dest.test')], other);
  const late = messageRecord('outboxlate01', ['d@dest.test']);
  await messages.create(late, Buffer.from('x'));
  const superseded: TimelineEvent = {
    type: 'bounced',
    at: Date.now(),
    recipients: ['d@dest.test'],
    reply: '550 no',
    category: 'invalid-recipient',
    superseded: true,
  };
  await messages.update(late.id, [], [superseded], late);
  expect(await messages.outbox.size()).toBe(0);

  // A process that died after its write, for a message whose retention then ran out.
  await messageRedis.zadd(keys.webhookOutbox(), 0, 'outboxgone01:1:1');
  await until(async () => (await messages.outbox.size()) === 0);
  expect(await outboxCount('gone')).toBe(1);
});

// Since 1 Dec 2026 a recipient left out of an SMTP message at the end of DATA is written with the message (create), not
// by a later update: its `suppressed` event must reach the webhook the way an update's events do.
it('events written with a new message (a recipient left out at intake) go through the outbox too, also while the webhook queue’s Redis is down', async () => {
  const left: TimelineEvent = { type: 'suppressed', at: Date.now(), recipients: ['gone@dest.test'], reason: 'hard-bounce', source: 'intake' };
  const sent = messageRecord('outboxcrea01', ['e@dest.test'], { leftOut: [{ address: 'gone@dest.test', reason: 'hard-bounce' }] });
  expect(await messages.create(sent, Buffer.from('x'), [left])).toBe(true);
  const [first] = await hooks.waitFor((b) => b?.messageId === sent.id && b.type === 'suppressed');
  expect(first.body).toMatchObject({ recipient: 'gone@dest.test', reason: 'hard-bounce', source: 'intake' });
  await messages.outbox.flush();
  expect(await messages.outbox.size()).toBe(0);

  const record = messageRecord('outboxcrea02', ['f@dest.test'], { leftOut: [{ address: 'gone2@dest.test', reason: 'complaint' }] });
  await main.shutdown();
  expect(await messages.create(record, Buffer.from('x'), [{ ...left, recipients: ['gone2@dest.test'], reason: 'complaint' }])).toBe(true);
  expect(await messages.outbox.size()).toBe(1);
  await main.start();
  await Promise.all([mainRedis, queueRedis].map((r) => waitReady(r, 10_000)));
  const [hook] = await hooks.waitFor((b) => b?.messageId === record.id && b.type === 'suppressed', 1, 15_000);
  expect(hook.body).toMatchObject({ recipient: 'gone2@dest.test', reason: 'complaint', source: 'intake' });
  await until(async () => (await messages.outbox.size()) === 0);
  expect(hooks.matching((b) => b?.messageId === record.id)).toHaveLength(1);
}, 30_000);
