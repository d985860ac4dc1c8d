/**
 * A message's expiry while its job runs or waits, with runDelivery against real Redis (unique prefix), DNS on
 * loopback, a receiver on 127.0.0.1 and a manual clock that the test moves where a real attempt spends its time
 * (an MX lookup, a host that does not answer). A message past its TTL is recorded `expired` and never sent; one
 * held by its provider's rate comes back no later than its expiry.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDelivery, type DeliveryDeps, type DeliveryJob } from '../../../src/delivery/pipeline.js';
import { sendMessage } from '../../../src/delivery/smtp-client.js';
import type { MessageStore } from '../../../src/store/message-store.js';
import { deliveryTestDeps, queueMessage, type DeliveryTestDeps } from '../../helpers/delivery-deps.js';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { manualClock } from '../../helpers/until.js';
import { primaryAndBackupMx } from '../../helpers/mx-zones.js';

const clock = manualClock(1_800_000_000_000);
let redis: Redis;
let dns: DnsServer;
let receiver: Receiver;
let t: DeliveryTestDeps;
let deps: DeliveryDeps;
let messages: MessageStore;
/** How long (on the manual clock) a connection to the first MX, which refuses it, takes: a host that never greets. */
let firstMxMs = 0;
/** How long the MX lookup takes on the manual clock (the MTA-STS fetch after it can take up to 20 s). */
let lookupMs = 0;

beforeAll(async () => {
  redis = new Redis('redis://127.0.0.1:6379');
  receiver = await startReceiver({ tls: false });
  // mx1 is 127.0.0.2, where nothing listens on the receiver's port: refused at once, as the test's clock says how long it took.
  dns = await startDnsServer({
    ...primaryAndBackupMx('slow.test'),
    // A null MX: a message that gets past shaping is bounced without a connection.
    'acme.test': { MX: [{ exchange: '.', priority: 0 }] },
  });
  t = deliveryTestDeps({
    redis,
    dns,
    clock,
    prefix: `kurir-test-pipeline-expiry-${Math.random().toString(36).slice(2, 8)}`,
    overrides: {
      delivery: { retrySchedule: [30], retryJitter: 0, mxPort: receiver.port },
      // acme sends 2 messages a minute (as after an adaptive slow-down).
      shaping: { providers: [{ provider: 'acme', domains: ['acme.test'] }], limits: { acme: { perMinute: 2, maxConnections: null, adaptive: false } } },
    },
  });
  messages = t.messages;
  const resolver = t.deps.resolver;
  deps = {
    ...t.deps,
    resolver: {
      ...resolver,
      resolveMx: async (name) => {
        clock.advance(lookupMs);
        return resolver.resolveMx(name);
      },
    },
    send: async (target, envelope, raw, opts) => {
      if (target.host === '127.0.0.2') clock.advance(firstMxMs);
      return sendMessage(target, envelope, raw, opts);
    },
  };
});

afterAll(async () => {
  await redis.quit();
  await dns.close();
  await receiver.close();
  await t.cleanUp();
});

const arrived = (address: string): boolean => receiver.messages.some((m) => m.rcptTo.includes(address));

describe('runDelivery when the message expires during its attempt', () => {
  it('delivers to the second MX when the first does not answer and the message is still alive', async () => {
    firstMxMs = 30_000;
    const job = await queueMessage(messages, clock, 'alive@slow.test', 60_000, 'verification');
    expect(await runDelivery(deps, job)).toEqual({ next: 'done' });
    const view = await messages.get(job.messageId);
    expect(view!.recipients['alive@slow.test']).toMatchObject({ status: 'delivered' });
    expect(view!.events.filter((e) => e.type === 'attempt').map((e) => e.type === 'attempt' && e.host)).toEqual([
      `mx1.slow.test[127.0.0.2]:${receiver.port}`,
      `mx2.slow.test[127.0.0.1]:${receiver.port}`,
    ]);
    expect(arrived('alive@slow.test')).toBe(true);
  });

  it('records it expired, and does not try the next MX host, when the first one outlived its TTL', async () => {
    firstMxMs = 61_000;
    const job = await queueMessage(messages, clock, 'late@slow.test', 60_000, 'verification');
    const expiresAt = clock.now() + 60_000;
    const connections = receiver.connections;
    expect(await runDelivery(deps, job)).toEqual({ next: 'done' });
    const view = await messages.get(job.messageId);
    // The same outcome as a job found expired when it is loaded: `expired`, message-expired, the same reply.
    expect(view!.recipients['late@slow.test']).toMatchObject({
      status: 'expired',
      attempts: 1,
      category: 'message-expired',
      reply: 'message expired before delivery',
    });
    expect(view!.events.map((e) => e.type)).toEqual(['queued', 'attempt', 'expired']);
    expect(view!.events[2].at).toBeGreaterThanOrEqual(expiresAt);
    expect(receiver.connections).toBe(connections);
    expect(arrived('late@slow.test')).toBe(false);
  });

  it('records it expired without any connection when the MX lookup took it past its TTL', async () => {
    firstMxMs = 0;
    lookupMs = 61_000;
    try {
      const job = await queueMessage(messages, clock, 'slow-dns@slow.test', 60_000, 'verification');
      const connections = receiver.connections;
      expect(await runDelivery(deps, job)).toEqual({ next: 'done' });
      const view = await messages.get(job.messageId);
      expect(view!.recipients['slow-dns@slow.test']).toMatchObject({ status: 'expired', category: 'message-expired' });
      expect(view!.events.map((e) => e.type)).toEqual(['queued', 'expired']);
      expect(receiver.connections).toBe(connections);
    } finally {
      lookupMs = 0;
    }
  });
});

describe('runDelivery for a message held by its provider rate', () => {
  it('holds it no later than its expiry, records it expired then, and keeps no turn for it that holds back later mail', async () => {
    const ttl = 600_000;
    // 30 normal messages at once while acme allows 2 a minute: 2 go, the rest queue for turns 30 s apart.
    const waits: Array<{ job: DeliveryJob; to: string; until: number; expiresAt: number }> = [];
    for (let i = 0; i < 30; i++) {
      const to = `u${i}@acme.test`;
      const job = await queueMessage(messages, clock, to, ttl, 'normal');
      const r = await runDelivery(deps, job);
      if (r.next === 'wait') waits.push({ job, to, until: r.at, expiresAt: clock.now() + ttl });
    }
    expect(waits).toHaveLength(28);
    // No message waits past its expiry (+50 ms and up to 20 ms of spread); until 1 Dec 2026 the last one waited 14 min.
    for (const w of waits) expect(w.until - w.expiresAt).toBeLessThanOrEqual(70);
    // 20 turns fit in the 10 minutes (30 s, 60 s, … 600 s); the other 8 messages come back at their expiry.
    const capped = waits.filter((w) => w.until >= w.expiresAt + 50);
    expect(capped).toHaveLength(8);
    // A message with a longer life queues after the 20 turns, not after 28 (no turn is kept for an expiring one).
    const patient = await runDelivery(deps, await queueMessage(messages, clock, 'patient@acme.test', 3_600_000, 'normal'));
    expect(patient.next === 'wait' && patient.at - clock.now()).toBeGreaterThanOrEqual(630_000);
    expect(patient.next === 'wait' && patient.at - clock.now()).toBeLessThanOrEqual(630_020);
    // At its expiry the job runs again and the message is recorded expired, on time.
    const { job, to, until, expiresAt } = capped[0];
    clock.set(until);
    expect(await runDelivery(deps, { ...job, attemptsStarted: 2 })).toEqual({ next: 'done' });
    const view = await messages.get(job.messageId);
    expect(view!.recipients[to]).toMatchObject({ status: 'expired', category: 'message-expired' });
    const expired = view!.events.find((e) => e.type === 'expired');
    expect(expired!.at - expiresAt).toBeLessThanOrEqual(70);
  });
});
