/**
 * runDelivery stage by stage, against real Redis (unique prefix), a real ProviderShaper behind the gate,
 * DNS on loopback and a manual clock: each run answers a value (done, retry at, wait until) and records
 * only what happened.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDelivery, type DeliveryDeps, type DeliveryJob } from '../../../src/delivery/pipeline.js';
import type { Priority } from '../../../src/config/schema.js';
import type { ProviderShaper } from '../../../src/shaping/provider-shaper.js';
import type { MessageStore } from '../../../src/store/message-store.js';
import { deliveryTestDeps, queueMessage, type DeliveryTestDeps } from '../../helpers/delivery-deps.js';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { manualClock } from '../../helpers/until.js';

const prefix = `kurir-test-pipeline-${Math.random().toString(36).slice(2, 8)}`;
const clock = manualClock(1_800_000_000_000);
let redis: Redis;
let dns: DnsServer;
let receiver: Receiver;
/** Run by the receiver at RCPT TO dup@lease.test, before it refuses it: what happens meanwhile elsewhere. */
let meanwhile: (() => Promise<void>) | null = null;
let t: DeliveryTestDeps;
let deps: DeliveryDeps;
let shaper: ProviderShaper;
let messages: MessageStore;

beforeAll(async () => {
  redis = new Redis('redis://127.0.0.1:6379');
  dns = await startDnsServer({
    'broken.test': { servfail: true },
    'mx.test': { A: ['127.0.0.1'] },
    'lease.test': { MX: [{ exchange: 'mx.test', priority: 10 }] },
  });
  receiver = await startReceiver({
    tls: false,
    script: async (ctx) => {
      if (ctx.stage !== 'rcpt') return undefined;
      if (ctx.address === 'dup@lease.test') await meanwhile?.();
      if (ctx.address === 'full@lease.test') return { code: 552, message: '5.2.2 mailbox full' };
      return ctx.address === 'gone@lease.test' || ctx.address === 'dup@lease.test' ? { code: 550, message: '5.1.1 no such user' } : undefined;
    },
  });
  t = deliveryTestDeps({
    redis,
    dns,
    clock,
    prefix,
    overrides: {
      delivery: { retrySchedule: [30], retryJitter: 0, mxPort: receiver.port },
      // acme: one message per minute, nothing borrowed ahead.
      shaping: {
        providers: [{ provider: 'acme', domains: ['acme.test'] }],
        limits: { acme: { perMinute: 1, maxConnections: null, adaptive: false } },
        burst: { bulk: 0 },
      },
    },
  });
  ({ deps, shaper, messages } = t);
});

afterAll(async () => {
  await redis.quit();
  await dns.close();
  await receiver.close();
  await t.cleanUp();
});

/** Stores a message to `to` (one address or several of one domain) as intake would, expiring `ttlMs` from now; returns its job. */
const queued = (to: string | string[], ttlMs: number, priority: Priority = 'bulk'): Promise<DeliveryJob> => queueMessage(messages, clock, to, ttlMs, priority);

describe('runDelivery', () => {
  it('expires a message past its lifetime before asking shaping: no slot, no rate token taken', async () => {
    const job = await queued('late@acme.test', -1);
    expect(await runDelivery(deps, job)).toEqual({ next: 'done' });
    const view = await messages.get(job.messageId);
    expect(view!.recipients['late@acme.test']).toMatchObject({ status: 'expired', attempts: 1, category: 'message-expired' });
    expect(view!.events.map((e) => e.type)).toEqual(['queued', 'expired']);
    // acme's one token per minute is still there: the first acquisition gets it, the second does not.
    expect((await shaper.acquire('acme', 'bulk')).ok).toBe(true);
    expect((await shaper.acquire('acme', 'bulk')).ok).toBe(false);
  });

  it('answers "wait" when the provider is at its rate, before any DNS query, recording nothing', async () => {
    clock.advance(60_000); // a new token
    expect((await shaper.acquire('acme', 'bulk')).ok).toBe(true);
    const job = await queued('soon@acme.test', 3_600_000);
    const queries = dns.queries.length;
    const result = await runDelivery(deps, job);
    expect(result).toEqual({ next: 'wait', at: clock.now() + 60_000, reason: 'provider-rate' }); // its booked slot, exactly
    expect(dns.queries.length).toBe(queries);
    const view = await messages.get(job.messageId);
    expect(view!.events.map((e) => e.type)).toEqual(['queued']);
    expect(view!.recipients['soon@acme.test']).toMatchObject({ status: 'queued', attempts: 0 });
  });

  it('records a DNS failure as a deferral and answers the retry time of the schedule', async () => {
    const job = await queued('x@broken.test', 3_600_000, 'normal');
    const result = await runDelivery(deps, job);
    expect(result).toEqual({ next: 'retry', at: clock.now() + 30_000 });
    const view = await messages.get(job.messageId);
    expect(view!.recipients['x@broken.test']).toMatchObject({ status: 'deferred', attempts: 1, nextAttemptAt: clock.now() + 30_000 });
    expect(view!.recipients['x@broken.test'].reply).toMatch(/^DNS: broken\.test: MX lookup failed/);
    expect(view!.events.map((e) => e.type)).toEqual(['queued', 'deferred']);
    // Run again: the attempt count goes on from the recorded state.
    clock.advance(30_000);
    expect(await runDelivery(deps, job)).toEqual({ next: 'retry', at: clock.now() + 30_000 });
    expect((await messages.get(job.messageId))!.recipients['x@broken.test'].attempts).toBe(2);
  });

  it('defers a recipient refused with 552 at RCPT TO (RFC 5321 4.5.3.1.10): not bounced, nothing suppressed', async () => {
    const job = await queued(['ok@lease.test', 'full@lease.test'], 3_600_000, 'normal');
    const bounced: string[] = [];
    const feedback = {
      onOutcomes: async (_r: unknown, outcomes: Array<{ address: string; status: string }>) => {
        bounced.push(...outcomes.filter((o) => o.status === 'bounced').map((o) => o.address));
        return [];
      },
    };
    expect(await runDelivery({ ...deps, feedback }, job)).toEqual({ next: 'retry', at: clock.now() + 30_000 });
    const view = await messages.get(job.messageId);
    expect(view!.recipients['ok@lease.test']).toMatchObject({ status: 'delivered' });
    expect(view!.recipients['full@lease.test']).toMatchObject({ status: 'deferred', category: 'mailbox-full', reply: '552 5.2.2 mailbox full' });
    expect(bounced).toEqual([]);
  });

  it('records only the events and the deliveries of a run that lost its lease: no other state, no suppression', async () => {
    const job = await queued(['ok@lease.test', 'gone@lease.test'], 3_600_000, 'normal');
    let asked = 0;
    const stale: DeliveryJob = {
      ...job,
      holdsLease: async () => {
        asked++;
        return false;
      },
    };
    const onOutcomes: Array<string[]> = [];
    const feedback = {
      onOutcomes: async (_r: unknown, outcomes: Array<{ address: string }>) => {
        onOutcomes.push(outcomes.map((o) => o.address));
        return [];
      },
    };
    expect(await runDelivery({ ...deps, feedback }, stale)).toEqual({ next: 'done' });
    expect(asked).toBe(1);
    const view = await messages.get(job.messageId);
    expect(view!.recipients['ok@lease.test']).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(view!.recipients['gone@lease.test']).toMatchObject({ status: 'queued', attempts: 0 });
    expect(view!.events.map((e) => e.type).sort()).toEqual(['attempt', 'bounced', 'delivered', 'queued']);
    // The 5xx is on the timeline, marked as a superseded outcome (webhooks skip it); the delivery is not marked.
    expect(view!.events.find((e) => e.type === 'bounced')).toMatchObject({ recipients: ['gone@lease.test'], superseded: true });
    expect(view!.events.find((e) => e.type === 'delivered')).not.toHaveProperty('superseded');
    // Only the delivery reached the suppression side (it ends the address's soft-bounce run); the 5xx did not.
    expect(onOutcomes).toEqual([['ok@lease.test']]);
  });

  it('records a 5xx for a recipient another run delivered meanwhile as superseded: it stays delivered, nothing suppressed', async () => {
    const job = await queued('dup@lease.test', 3_600_000, 'normal');
    const at = clock.now();
    // Another run of the job, one that had lost its lease, records its delivery while this one is in its transaction.
    meanwhile = async () => {
      const state = { status: 'delivered' as const, attempts: 1, updatedAt: at, reply: '250 2.0.0 ok' };
      await messages.update(
        job.messageId,
        [{ address: 'dup@lease.test', state }],
        [{ type: 'delivered', at, recipients: ['dup@lease.test'], host: 'mx.test', reply: '250 2.0.0 ok' }],
      );
    };
    const onOutcomes: Array<string[]> = [];
    const feedback = {
      onOutcomes: async (_r: unknown, outcomes: Array<{ address: string }>) => {
        onOutcomes.push(outcomes.map((o) => o.address));
        return [];
      },
    };
    try {
      expect(await runDelivery({ ...deps, feedback }, job)).toEqual({ next: 'done' });
    } finally {
      meanwhile = null;
    }
    const view = await messages.get(job.messageId);
    expect(view!.recipients['dup@lease.test']).toMatchObject({ status: 'delivered', reply: '250 2.0.0 ok' });
    expect(view!.events.filter((e) => e.type === 'bounced')).toEqual([expect.objectContaining({ recipients: ['dup@lease.test'], superseded: true })]);
    expect(onOutcomes).toEqual([]);
  });
});
