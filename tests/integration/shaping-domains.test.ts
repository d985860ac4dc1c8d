/**
 * Shaping per recipient domain and per provider connection, end to end (real Redis, real SMTP, DNS on
 * loopback): an admin pauses and resumes one recipient domain (its mail waits delayed, other domains of the
 * same provider go on, expiry still applies), and a provider's `maxMessagesPerConnection` decides how many
 * connections the receiver sees.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryQueue, deliveryJobId } from '../../src/queue/delivery-queue.js';
import { createKeys } from '../../src/store/keys.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_KEY, API_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

let dns: DnsServer;
let receiver: Receiver;

const domainOf = (a: string): string => a.slice(a.lastIndexOf('@') + 1);
const receivedFor = (address: string) => receiver.messages.filter((m) => m.rcptTo.includes(address));
const received = (domain: string) => receiver.messages.filter((m) => m.rcptTo.some((r) => domainOf(r) === domain));
const msg = (to: string, extra: Record<string, unknown> = {}) => ({ from: 'noreply@example.test', to: [to], subject: 'Hello', text: 'Hello', ...extra });

async function admin(t: TestGateway, method: string, path: string, body?: unknown, key = ADMIN_KEY): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json() };
}

/** The queue state of a message's delivery job ('missing' once it is gone). */
async function jobState(t: TestGateway, messageId: string, domain: string): Promise<string> {
  const queue = new DeliveryQueue(t.gateway.redis, createKeys(t.config.redis.prefix));
  try {
    return await queue.getState(deliveryJobId(messageId, domain));
  } finally {
    await queue.close();
  }
}

beforeAll(async () => {
  receiver = await startReceiver({ tls: false });
  const zone: Record<string, any> = {};
  // ctl.test and ctl2.test: one provider (by domain). fresh.test, expire.test: provider `other`, known only after the MX lookup.
  for (const d of ['ctl.test', 'ctl2.test', 'fresh.test', 'expire.test']) zone[d] = { MX: [{ exchange: 'mx.test', priority: 10 }] };
  zone['mx.test'] = { A: ['127.0.0.1'] };
  // Separate MX names, so the pool keeps separate connections per destination.
  zone['permsg.test'] = { MX: [{ exchange: 'mx.permsg-mx.test', priority: 10 }] };
  zone['mx.permsg-mx.test'] = { A: ['127.0.0.1'] };
  zone['plain.test'] = { MX: [{ exchange: 'mx.plain.test', priority: 10 }] };
  zone['mx.plain.test'] = { A: ['127.0.0.1'] };
  dns = await startDnsServer(zone);
});

afterAll(async () => {
  await receiver?.close();
  await dns?.close();
});

describe('pausing one recipient domain', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({
      dns,
      overrides: {
        delivery: { mxPort: receiver.port, retrySchedule: [60], retryJitter: 0 },
        shaping: {
          providers: [{ provider: 'ctl', domains: ['ctl.test', 'ctl2.test'] }],
          limits: { ctl: { perMinute: null, maxConnections: null, adaptive: false } },
          pausedRecheckSeconds: 60,
        },
      },
    });
  });
  afterAll(() => t?.close());

  it("holds the domain's mail (queued, not failed) while other domains of the provider go on; resume delivers it at once", async () => {
    const paused = await admin(t, 'POST', '/v1/shaping/domains/CTL.test/pause');
    expect(paused).toMatchObject({ status: 200, body: { domain: 'ctl.test', pausedUntil: 'indefinitely', pausedBy: 'admin-dev', heldJobs: 0 } });
    const held = (await t.submit(msg('held@ctl.test', { priority: 'verification' }))).body.id;
    const other = (await t.submit(msg('go@ctl2.test', { priority: 'verification' }))).body.id;
    await t.waitForStatus(other, (s) => s.status === 'delivered', 5000);
    const view = await until(
      async () => {
        const { body } = await admin(t, 'GET', '/v1/shaping');
        return body.pausedDomains[0]?.heldJobs >= 1 ? body : undefined;
      },
      10_000,
      'the held job',
    );
    expect(view.pausedDomains).toEqual([{ domain: 'ctl.test', pausedUntil: 'indefinitely', pausedAt: expect.any(String), pausedBy: 'admin-dev', heldJobs: 1 }]);
    // The provider itself is not paused.
    expect(view.providers.find((p: any) => p.provider === 'ctl')).toMatchObject({ adminPaused: null, heldJobs: 0 });
    // Asked, refused and put back in the delayed set until the re-check (60 s): it cannot run meanwhile.
    await until(async () => (await jobState(t, held, 'ctl.test')) === 'delayed', 5000, 'the held job to be delayed');
    const waiting = await t.status(held);
    expect(waiting.status).toBe('queued');
    expect(waiting.events.map((e: any) => e.type)).toEqual(['queued']); // no attempt counted
    expect(receivedFor('held@ctl.test')).toHaveLength(0);

    const resumed = await admin(t, 'POST', '/v1/shaping/domains/ctl.test/resume');
    expect(resumed).toMatchObject({ status: 200, body: { domain: 'ctl.test', wasPaused: true, promoted: 1 } });
    const done = await t.waitForStatus(held, (s) => s.status === 'delivered', 3000);
    expect(done.events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'delivered']);
    expect((await admin(t, 'GET', '/v1/shaping')).body.pausedDomains).toEqual([]);
    expect((await admin(t, 'POST', '/v1/shaping/domains/ctl.test/resume')).body).toMatchObject({ wasPaused: false, promoted: 0 });
  });

  it('holds a domain whose provider is only known after the MX lookup, before that lookup', async () => {
    await admin(t, 'POST', '/v1/shaping/domains/fresh.test/pause', { seconds: 600 });
    const id = (await t.submit(msg('first@fresh.test'))).body.id;
    await until(
      async () => (await admin(t, 'GET', '/v1/shaping')).body.pausedDomains.find((p: any) => p.domain === 'fresh.test')?.heldJobs === 1,
      10_000,
      'the held job',
    );
    const { body } = await admin(t, 'GET', '/v1/shaping');
    expect(Date.parse(body.pausedDomains.find((p: any) => p.domain === 'fresh.test').pausedUntil) - Date.now()).toBeGreaterThan(590_000);
    expect((await t.status(id)).status).toBe('queued');
    expect(await t.gateway.metrics.render()).toMatch(/kurir_shaping_refusals_total\{limit="domain-paused"\} [1-9]/);
    expect((await admin(t, 'POST', '/v1/shaping/domains/fresh.test/resume')).body).toMatchObject({ wasPaused: true, promoted: 1 });
    await t.waitForStatus(id, (s) => s.status === 'delivered', 3000);
  });

  it('still expires a held message on time (an expired event, never a late delivery)', async () => {
    await admin(t, 'POST', '/v1/shaping/domains/expire.test/pause');
    const id = (await t.submit(msg('late@expire.test', { ttl: 1 }))).body.id;
    const s = await t.waitForStatus(id, (x) => x.status === 'expired', 5000);
    expect(s.events.map((e: any) => e.type)).toEqual(['queued', 'expired']);
    // Its job is done (completed jobs are removed), so the resume has nothing to promote and it can never be sent.
    await until(async () => (await jobState(t, id, 'expire.test')) === 'missing', 5000, 'the job to be gone');
    // No longer counted as held: its entry ended with its message.
    expect((await admin(t, 'GET', '/v1/shaping')).body.pausedDomains.find((p: any) => p.domain === 'expire.test')).toMatchObject({ heldJobs: 0 });
    expect((await admin(t, 'POST', '/v1/shaping/domains/expire.test/resume')).body).toMatchObject({ wasPaused: true, promoted: 0 });
    expect(receivedFor('late@expire.test')).toHaveLength(0);
  });

  it('is for admin keys only and wants a domain name', async () => {
    expect((await admin(t, 'POST', '/v1/shaping/domains/ctl.test/pause', undefined, API_KEY)).status).toBe(403);
    const bad = await admin(t, 'POST', '/v1/shaping/domains/not_a_domain/pause');
    expect(bad).toMatchObject({ status: 400, body: { error: { code: 'VALIDATION', field: 'domain' } } });
    expect((await admin(t, 'POST', '/v1/shaping/domains/ctl.test/pause', { seconds: 0 })).status).toBe(400);
  });
});

describe('messages per connection per provider', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({
      dns,
      overrides: {
        // One delivery at a time, so every message can reuse the pooled connection of the one before.
        delivery: { mxPort: receiver.port, concurrency: 1 },
        shaping: {
          providers: [{ provider: 'permsg', mx: ['*.permsg-mx.test'] }],
          limits: {
            permsg: { perMinute: null, maxConnections: null, adaptive: false, maxMessagesPerConnection: 3 },
            other: { perMinute: null, maxConnections: null, adaptive: false },
          },
        },
      },
    });
  });
  afterAll(() => t?.close());

  async function deliverAll(domain: string, n: number): Promise<number> {
    const before = receiver.connections;
    for (let i = 0; i < n; i++) expect((await t.submit(msg(`u${i}@${domain}`))).status).toBe(202);
    await until(() => received(domain).length >= n, 15_000, `${n} messages at ${domain}`);
    return receiver.connections - before;
  }

  it('a provider limit of 3 gives ⌈n/3⌉ connections; the default (100) one', async () => {
    expect(await deliverAll('permsg.test', 7)).toBe(3);
    expect(await deliverAll('plain.test', 7)).toBe(1);
    const { body } = await admin(t, 'GET', '/v1/shaping');
    expect(body.providers.find((p: any) => p.provider === 'permsg').configured).toMatchObject({ maxMessagesPerConnection: 3 });
    expect(body.providers.find((p: any) => p.provider === 'other').configured).toMatchObject({ maxMessagesPerConnection: 100 });
  });
});
