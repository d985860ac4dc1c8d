/**
 * Two runs of one delivery job that both delivered to a recipient (one had lost its job's lease and went on
 * sending): the second record must not queue a second `delivered` webhook, nor count a second delivery in the
 * message's state, the confirmation-rate denominator or GET /v1/incidents, while the timeline keeps it, marked
 * `duplicate`. The check is the record script's own, so two records at the same moment are told apart too. Real
 * Redis (own prefix), the gateway's webhook producer and BullMQ webhook queue, its verification-delivery sink and
 * incident store. Until 2 Dec 2026 each record queued its own webhook, with its own event id.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DeliveryDeps, LoadedJob } from '../../src/delivery/stages/job.js';
import { classifyAttempt, recordAttempt } from '../../src/delivery/stages/outcome.js';
import { supportPage } from '../../src/http/console/support-page.js';
import { combineSinks, VerificationDeliveries } from '../../src/placement/confirmations.js';
import { WebhookQueue } from '../../src/queue/webhook-queue.js';
import { IncidentStore } from '../../src/store/incident-store.js';
import { createKeys } from '../../src/store/keys.js';
import type { MessageStore } from '../../src/store/message-store.js';
import type { MessageRecord } from '../../src/store/types.js';
import { WebhookStore } from '../../src/store/webhook-store.js';
import { WebhookProducer, type WebhookTarget } from '../../src/webhooks/events.js';
import { deliveryTestDeps, type DeliveryTestDeps } from '../helpers/delivery-deps.js';
import { messageRecord } from '../helpers/message-record.js';
import { counterValue, webhookJobsOf } from '../helpers/record-checks.js';

const prefix = `kurir-test-dupdeliv-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const target: WebhookTarget = { owner: 'booking', url: 'http://127.0.0.1:9/hook', secret: 'whsec-0123456789abcdef', events: new Set(['delivered', 'bounced']) };
const PROVIDER = 'other';

let redis: Redis;
let queue: WebhookQueue;
let incidents: IncidentStore;
let t: DeliveryTestDeps;
let deps: DeliveryDeps;
let messages: MessageStore;

beforeAll(async () => {
  redis = new Redis('redis://127.0.0.1:6379');
  incidents = new IncidentStore(redis, keys);
  t = deliveryTestDeps({
    redis,
    clock: { now: () => Date.now() },
    prefix,
    overrides: {},
    // As src/roles/core.ts wires it: webhooks, and the denominator of the confirmation rate.
    sink: ({ config, metrics, providers, logger }) => {
      queue = new WebhookQueue(redis, keys, config.webhooks);
      const producer = new WebhookProducer({ config, queue, store: new WebhookStore(redis, keys, 50), metrics, logger, targetOf: () => target });
      return combineSinks(producer, new VerificationDeliveries({ metrics, providers, smarthost: false, incidents }))!;
    },
  });
  deps = { ...t.deps, incidents };
  messages = t.messages;
});

afterAll(async () => {
  await queue.close();
  await redis.quit();
  await t.cleanUp();
});

/** One run's record of an attempt that delivered to `addresses` via `host`; `held`: whether the run still held its lease. */
async function recordDelivery(record: MessageRecord, addresses: string[], host: string, held: boolean): Promise<void> {
  const now = Date.now();
  const loaded: LoadedJob = { record, pending: addresses, attempt: 1, body: null };
  const outcomes = addresses.map((address) => ({ address, kind: 'delivered' as const, code: 250, reply: `250 2.0.0 Ok: queued at ${host}` }));
  const attempt = classifyAttempt(deps.rules, outcomes, { attempt: 1, now, retryAt: null, host });
  await recordAttempt(deps, loaded, PROVIDER, attempt, [], now, async () => held);
}

const webhookJobs = (id: string): Promise<number[]> => webhookJobsOf(queue, id);
const counter = (name: string, labels: Record<string, string>): Promise<number> => counterValue(deps.metrics, name, labels);

it('a second delivery of a delivered recipient is on the timeline, marked duplicate, with one webhook and one delivery counted', async () => {
  const record = messageRecord('dupdeliv0001', ['amy@dest.test']);
  await messages.create(record, Buffer.from('x'));
  const delivered = await counter('kurir_placement_verifications_delivered_total', {});
  // The run that lost its lease records its 250 first; the run holding the lease then records its own.
  await recordDelivery(record, ['amy@dest.test'], 'mx1.dest.test', false);
  const first = (await messages.get(record.id))!.recipients['amy@dest.test'];
  await recordDelivery(record, ['amy@dest.test'], 'mx2.dest.test', true);

  const view = (await messages.get(record.id))!;
  const events = view.events.filter((e) => e.type === 'delivered');
  expect(events).toHaveLength(2);
  expect(events[0]).toMatchObject({ recipients: ['amy@dest.test'], host: 'mx1.dest.test' });
  expect(events[0]).not.toHaveProperty('duplicate');
  expect(events[1]).toMatchObject({ recipients: ['amy@dest.test'], host: 'mx2.dest.test', duplicate: true });
  // The first delivery's state stands.
  expect(view.recipients['amy@dest.test']).toEqual(first);
  expect(view.status).toBe('delivered');
  expect(await webhookJobs(record.id)).toEqual([view.events.indexOf(events[0])]);
  expect(await counter('kurir_delivery_superseded_total', { reason: 'duplicate' })).toBe(1);
  expect((await counter('kurir_placement_verifications_delivered_total', {})) - delivered).toBe(1);
  // Support reads it as a second copy.
  const result = {
    query: 'amy@dest.test',
    kind: 'address' as const,
    address: 'amy@dest.test',
    provider: 'other',
    placement: null,
    resend: null,
    now: Date.now(),
  };
  expect(supportPage({ ...result, messages: [view] }, 'csrf').toString()).toContain(
    'delivered to mx2.dest.test: 250 2.0.0 Ok: queued at mx2.dest.test — a second copy, sent by another run of the same delivery job',
  );
});

it('of two records at the same moment, exactly one is the delivery and the other the duplicate', async () => {
  const record = messageRecord('dupdeliv0002', ['bo@dest.test']);
  await messages.create(record, Buffer.from('x'));
  const before = await counter('kurir_delivery_superseded_total', { reason: 'duplicate' });
  await Promise.all([recordDelivery(record, ['bo@dest.test'], 'mx1.dest.test', false), recordDelivery(record, ['bo@dest.test'], 'mx2.dest.test', true)]);

  const view = (await messages.get(record.id))!;
  const events = view.events.filter((e) => e.type === 'delivered');
  expect(events).toHaveLength(2);
  expect(events.filter((e) => 'duplicate' in e && e.duplicate)).toHaveLength(1);
  expect(events[1]).toMatchObject({ duplicate: true });
  expect(await webhookJobs(record.id)).toEqual([view.events.indexOf(events[0])]);
  expect((await counter('kurir_delivery_superseded_total', { reason: 'duplicate' })) - before).toBe(1);
});

it('a delivery event naming a new and an already delivered recipient is split: the new part is sent, the other marked', async () => {
  const record = messageRecord('dupdeliv0003', ['cy@dest.test', 'di@dest.test']);
  await messages.create(record, Buffer.from('x'));
  await recordDelivery(record, ['cy@dest.test'], 'mx1.dest.test', false);
  await recordDelivery(record, ['cy@dest.test', 'di@dest.test'], 'mx2.dest.test', true);

  const view = (await messages.get(record.id))!;
  expect(view.events.filter((e) => e.type === 'delivered')).toEqual([
    expect.objectContaining({ recipients: ['cy@dest.test'], host: 'mx1.dest.test' }),
    expect.objectContaining({ recipients: ['di@dest.test'], host: 'mx2.dest.test' }),
    expect.objectContaining({ recipients: ['cy@dest.test'], host: 'mx2.dest.test', duplicate: true }),
  ]);
  const sent = view.events.flatMap((e, i) => (e.type === 'delivered' && !('duplicate' in e) ? [i] : []));
  expect(await webhookJobs(record.id)).toEqual(sent);
  expect(view.status).toBe('delivered');

  // GET /v1/incidents counts each recipient delivered once: four, over the four recipients of this file.
  const window = await incidents.window([PROVIDER], Date.now(), 5);
  const buckets = window.get(PROVIDER) ?? [];
  expect(buckets.reduce((n, b) => n + b.delivered, 0)).toBe(4);
  expect(buckets.reduce((n, b) => n + b.verificationsDelivered, 0)).toBe(4);
});
