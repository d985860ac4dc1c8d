/**
 * A message's expiry while its job runs, with runDelivery against real Redis (unique prefix), DNS on loopback, a
 * receiver on 127.0.0.1 and a manual clock that the test moves where a real attempt spends its time (an MX
 * lookup, a host that does not answer). A message past its TTL is recorded `expired` and never sent.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDelivery, type DeliveryDeps } from '../../../src/delivery/pipeline.js';
import { sendMessage } from '../../../src/delivery/smtp-client.js';
import type { MessageStore } from '../../../src/store/message-store.js';
import { deliveryTestDeps, queueMessage, type DeliveryTestDeps } from '../../helpers/delivery-deps.js';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { manualClock } from '../../helpers/until.js';

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
    'slow.test': {
      MX: [
        { exchange: 'mx1.slow.test', priority: 10 },
        { exchange: 'mx2.slow.test', priority: 20 },
      ],
    },
    'mx1.slow.test': { A: ['127.0.0.2'] },
    'mx2.slow.test': { A: ['127.0.0.1'] },
  });
  t = deliveryTestDeps({
    redis,
    dns,
    clock,
    prefix: `kurir-test-pipeline-expiry-${Math.random().toString(36).slice(2, 8)}`,
    overrides: { delivery: { retrySchedule: [30], retryJitter: 0, mxPort: receiver.port } },
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
