/**
 * Source-IP pools end to end: a gateway binding its outbound SMTP connections to loopback addresses (Linux
 * routes all of 127/8 to lo), a receiving MX (smtp-server) that records each message's client address and
 * EHLO name. Verification mail arrives from 127.0.0.2 with HELO a.example, bulk from 127.0.0.3 with HELO
 * b.example, unmapped normal mail from the OS-chosen address with `hostname`; pooled connections never carry
 * a message of the other address; the attempt event shows the source. A warm-up cap of N per hour lets N
 * out and holds the rest (queued, delayed, never bounced) until the hour turns on the injected clock. With a
 * smarthost the pools still bind the connection (to the smarthost) and set its HELO; a sender domain's own
 * mapping sends its bulk mail from its own pool.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { supportPage } from '../../src/http/console/support-page.js';
import { DeliveryQueue, deliveryJobId } from '../../src/queue/delivery-queue.js';
import { MessageStore } from '../../src/store/message-store.js';
import { createKeys } from '../../src/store/keys.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_KEY, API_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

let dns: DnsServer;
let receiver: Receiver;

const domainOf = (a: string): string => a.slice(a.lastIndexOf('@') + 1);
const arrived = (domain: string) => receiver.messages.filter((m) => m.rcptTo.some((r) => domainOf(r) === domain));
const msg = (to: string, priority: string) => ({ from: 'noreply@example.test', to: [to], subject: 'Hello', text: 'Hello', priority });
const POOLS = {
  pools: {
    transactional: [{ address: '127.0.0.2', helo: 'a.example' }],
    bulk: [{ address: '127.0.0.3', helo: 'b.example' }],
  },
  priorities: { verification: 'transactional', bulk: 'bulk' },
};

async function metricsText(t: TestGateway): Promise<string> {
  return (await fetch(`${t.url}/metrics`)).text();
}

beforeAll(async () => {
  receiver = await startReceiver({ tls: false, hostname: 'mx.dest.test' });
  const zone: Record<string, any> = {};
  for (const d of ['dest.test', 'pool.test', 'warm.test']) {
    zone[d] = { MX: [{ exchange: `mx.${d}`, priority: 10 }] };
    zone[`mx.${d}`] = { A: ['127.0.0.1'] };
  }
  // An MX host with only an IPv6 address: out of reach of the IPv4 pool addresses.
  zone['v6only.test'] = { MX: [{ exchange: 'mx.v6only.test', priority: 10 }] };
  zone['mx.v6only.test'] = { AAAA: ['::1'] };
  dns = await startDnsServer(zone);
});

afterAll(async () => {
  await receiver?.close();
  await dns?.close();
});

describe('source-IP pools', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ dns, overrides: { hostname: 'mail.kurir.test', delivery: { mxPort: receiver.port, ipPools: POOLS } } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('sends verification from 127.0.0.2 as a.example, bulk from 127.0.0.3 as b.example, normal from the OS-chosen address', async () => {
    const sent = {
      verification: (await t.submit(msg('v@dest.test', 'verification'))).body.id,
      bulk: (await t.submit(msg('b@dest.test', 'bulk'))).body.id,
      normal: (await t.submit(msg('n@dest.test', 'normal'))).body.id,
    };
    for (const id of Object.values(sent)) await t.waitForStatus(id, (s) => s.status === 'delivered');
    const by = (to: string) => receiver.messages.find((m) => m.rcptTo.includes(to));
    expect(by('v@dest.test')).toMatchObject({ remoteAddress: '127.0.0.2', clientHostname: 'a.example' });
    expect(by('b@dest.test')).toMatchObject({ remoteAddress: '127.0.0.3', clientHostname: 'b.example' });
    expect(by('n@dest.test')).toMatchObject({ remoteAddress: '127.0.0.1', clientHostname: 'mail.kurir.test' });

    const attempt = async (id: string) => (await t.status(id)).events.find((e: any) => e.type === 'attempt');
    expect(await attempt(sent.verification)).toMatchObject({ sourceIp: '127.0.0.2', helo: 'a.example' });
    expect(await attempt(sent.bulk)).toMatchObject({ sourceIp: '127.0.0.3', helo: 'b.example' });
    const normal = await attempt(sent.normal);
    expect(normal.sourceIp).toBeUndefined();
    expect(normal.helo).toBeUndefined();
    // The support console's timeline says where the attempt came from.
    const store = new MessageStore(t.gateway.redis, createKeys(t.config.redis.prefix), 3600);
    const view = await store.get(sent.bulk);
    const page = supportPage(
      {
        query: 'b@dest.test',
        kind: 'address',
        address: 'b@dest.test',
        provider: 'other',
        messages: view ? [view] : [],
        placement: null,
        resend: null,
        now: Date.now(),
      },
      'csrf',
    ).toString();
    expect(page).toMatch(/delivery attempt to mx\.dest\.test\[127\.0\.0\.1\]:\d+ from 127\.0\.0\.3 \(HELO b\.example\)/);

    const text = await metricsText(t);
    expect(text).toMatch(/kurir_ip_sent_total\{ip="127\.0\.0\.2",pool="transactional"\} 1\b/);
    expect(text).toMatch(/kurir_ip_sent_total\{ip="127\.0\.0\.3",pool="bulk"\} 1\b/);
  });

  it('tries only MX addresses of the source IP family: an IPv6-only MX defers IPv4 pool mail with the reason', async () => {
    const id = (await t.submit(msg('x@v6only.test', 'bulk'))).body.id;
    const s = await t.waitForStatus(id, (x) => x.status === 'deferred');
    expect(s.recipients['x@v6only.test'].reply).toBe('no address of the MX hosts is IPv4, the family of source IP 127.0.0.3 (pool bulk)');
    expect(s.events.map((e: any) => e.type)).toEqual(['queued', 'deferred']);
  });

  it('keys pooled connections on the source address: alternating classes to one MX, each on its own reused connection', async () => {
    const before = receiver.connections;
    const order = ['verification', 'bulk', 'verification', 'bulk', 'verification', 'bulk'];
    for (const [i, priority] of order.entries()) {
      const id = (await t.submit(msg(`p${i}@pool.test`, priority))).body.id;
      await t.waitForStatus(id, (s) => s.status === 'delivered');
    }
    const got = arrived('pool.test');
    expect(got).toHaveLength(6);
    for (const m of got) {
      const i = Number(/^p(\d)@/.exec(m.rcptTo[0])?.[1]);
      const expected =
        order[i] === 'verification' ? { remoteAddress: '127.0.0.2', clientHostname: 'a.example' } : { remoteAddress: '127.0.0.3', clientHostname: 'b.example' };
      expect(m, m.rcptTo[0]).toMatchObject(expected);
    }
    // One connection per source address, reused by the later messages of the same class.
    expect(receiver.connections - before).toBe(2);
  });
});

describe('source-IP warm-up caps', () => {
  let t: TestGateway;
  let offset = 0;
  const clock = { now: () => Date.now() + offset };
  const CAP = 2;

  beforeAll(async () => {
    // Away from the top of the hour, so the first sends share one hour window (the clock only ever runs ahead of
    // the real one: the delivery queue's delayed jobs are timed by the real clock).
    if (3_600_000 - (Date.now() % 3_600_000) < 30_000) offset = 60_000;
    const today = new Date(clock.now()).toISOString().slice(0, 10);
    // The same cap on days 1 and 2: after 23:00 UTC the test's hour turns into the next day (warm-up day 2).
    const ipPools = {
      pools: { ...POOLS.pools, bulk: [{ address: '127.0.0.3', helo: 'b.example', warmupStart: today, warmup: { perHour: [CAP, CAP, 1000] } }] },
      priorities: POOLS.priorities,
    };
    t = await startTestGateway({ dns, overrides: { hostname: 'mail.kurir.test', delivery: { mxPort: receiver.port, ipPools } }, gatewayOptions: { clock } });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function jobState(id: string): Promise<string> {
    const queue = new DeliveryQueue(t.gateway.redis, createKeys(t.config.redis.prefix));
    try {
      return await queue.getState(deliveryJobId(id, 'warm.test'));
    } finally {
      await queue.close();
    }
  }

  it('lets N per hour out of a warming IP and holds the rest, queued and delayed, until the hour turns', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await t.submit(msg(`w${i}@warm.test`, 'bulk'))).body.id);
    await until(() => arrived('warm.test').length >= CAP, 10_000, `${CAP} warm.test messages`);
    // Verification does not share the warming IP and is not held by its cap.
    const v = (await t.submit(msg('v@warm.test', 'verification'))).body.id;
    await t.waitForStatus(v, (s) => s.status === 'delivered');
    await new Promise((r) => setTimeout(r, 1500));
    const bulk = () => arrived('warm.test').filter((m) => m.remoteAddress === '127.0.0.3');
    expect(bulk()).toHaveLength(CAP);
    const held = [];
    for (const id of ids) {
      const s = await t.status(id);
      if (s.status === 'delivered') continue;
      expect(s.status).toBe('queued');
      expect(s.events.map((e: any) => e.type)).toEqual(['queued']);
      expect(await jobState(id)).toBe('delayed');
      held.push(id);
    }
    expect(held).toHaveLength(5 - CAP);
    expect(await metricsText(t)).toMatch(/kurir_ip_warmup_waits_total\{pool="bulk"\} [3-9]/);
    const shaping = await (await fetch(`${t.url}/v1/shaping`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json();
    expect(shaping.sourceIps).toEqual([
      { address: '127.0.0.2', pool: 'transactional', helo: 'a.example', warmupDay: null, perHour: null, perDay: null, sentThisHour: null, sentToday: null },
      { address: '127.0.0.3', pool: 'bulk', helo: 'b.example', warmupDay: 1, perHour: CAP, perDay: null, sentThisHour: CAP, sentToday: null },
    ]);

    // The hour turns (injected clock); the held jobs run now instead of at the top of the real hour.
    offset += 3_600_000;
    for (const id of held) {
      const res = await fetch(`${t.url}/v1/messages/${id}/retry`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
      expect(res.status).toBe(200);
    }
    await until(() => bulk().length >= 2 * CAP, 10_000, `${2 * CAP} bulk messages`);
    await new Promise((r) => setTimeout(r, 1000));
    expect(bulk()).toHaveLength(2 * CAP);
    const states = await Promise.all(ids.map(async (id) => (await t.status(id)).status));
    expect(states.filter((s) => s === 'delivered')).toHaveLength(2 * CAP);
    expect(states.filter((s) => s === 'queued')).toHaveLength(5 - 2 * CAP);
    expect(await metricsText(t)).toMatch(new RegExp(`kurir_ip_sent_total\\{ip="127\\.0\\.0\\.3",pool="bulk"\\} ${2 * CAP}\\b`));
  });
});

describe('source-IP pools with a smarthost, per sender domain', () => {
  let t: TestGateway;
  const keyDir = mkdtempSync(join(tmpdir(), 'kurir-brand-'));
  beforeAll(async () => {
    const ipPools = {
      pools: { ...POOLS.pools, brand: [{ address: '127.0.0.4', helo: 'c.example' }] },
      priorities: POOLS.priorities,
      domains: { 'brand.test': { bulk: 'brand' } },
    };
    const dkim = (dir: string) => [{ selector: 'kurir1', algorithm: 'rsa', privateKeyFile: join(dir, 'rsa.pem'), generate: true }];
    t = await startTestGateway({
      dns,
      overrides: {
        hostname: 'mail.kurir.test',
        domains: [
          { name: 'example.test', dkim: dkim(join(keyDir, 'example')) },
          { name: 'brand.test', dkim: dkim(join(keyDir, 'brand')) },
        ],
        apiKeys: [
          { name: 'booking-dev', key: API_KEY, domains: ['*'] },
          { name: 'admin-dev', key: ADMIN_KEY, domains: ['*'], admin: true },
        ],
        delivery: { smarthost: { host: '127.0.0.1', port: receiver.port }, ipPools },
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('binds the smarthost connection to the pool address and sends its HELO; a sender domain mapping picks its own pool', async () => {
    const send = async (from: string, to: string, priority: string) => {
      const res = await t.submit({ ...msg(to, priority), from });
      expect(res.status).toBe(202);
      return t.waitForStatus(res.body.id, (s) => s.status === 'delivered');
    };
    await send('noreply@example.test', 'sv@relay.test', 'verification');
    await send('noreply@example.test', 'sb@relay.test', 'bulk');
    const brand = await send('news@brand.test', 'bb@relay.test', 'bulk');
    await send('noreply@brand.test', 'bv@relay.test', 'verification');
    const by = (to: string) => receiver.messages.find((m) => m.rcptTo.includes(to));
    expect(by('sv@relay.test')).toMatchObject({ remoteAddress: '127.0.0.2', clientHostname: 'a.example' });
    expect(by('sb@relay.test')).toMatchObject({ remoteAddress: '127.0.0.3', clientHostname: 'b.example' });
    expect(by('bb@relay.test')).toMatchObject({ remoteAddress: '127.0.0.4', clientHostname: 'c.example' });
    // brand.test maps only bulk: its verification mail uses the priorities' pool.
    expect(by('bv@relay.test')).toMatchObject({ remoteAddress: '127.0.0.2', clientHostname: 'a.example' });
    expect(brand.events.find((e: any) => e.type === 'attempt')).toMatchObject({ host: `127.0.0.1:${receiver.port}`, sourceIp: '127.0.0.4', helo: 'c.example' });
  });
});
