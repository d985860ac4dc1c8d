/**
 * The DNS cache against the loopback DNS server: answers as node:dns gives them, TTLs honoured (queries
 * counted at the server), negative answers cached by the SOA and bounded, failures never cached, LRU bound,
 * one query for concurrent lookups, TCP when UDP is truncated.
 */
import { createSocket } from 'node:dgram';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveRoute } from '../../../src/delivery/mx.js';
import { createResolver } from '../../../src/delivery/resolver.js';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';

let dns: DnsServer;
let soa: DnsServer;
let now = 1_000_000;
const clock = { now: () => now };

const zone = {
  'multi.test': {
    MX: [
      { exchange: 'mx2.multi.test', priority: 20 },
      { exchange: 'mx1.multi.test', priority: 10 },
    ],
  },
  'mx1.multi.test': { A: ['127.0.0.11'] },
  'mx2.multi.test': { A: ['127.0.0.12'], AAAA: ['::1', '2001:db8::5'] },
  'short.test': { MX: [{ exchange: 'mx1.multi.test', priority: 10 }], ttl: 5 },
  'long.test': { MX: [{ exchange: 'mx1.multi.test', priority: 10 }], ttl: 86_400 },
  'nullmx.test': { MX: [{ exchange: '.', priority: 0 }] },
  'big.test': { MX: Array.from({ length: 40 }, (_, i) => ({ exchange: `mx${i}.a-rather-long-host-name.big.test`, priority: i })) },
  'flaky.test': { servfail: true },
  'txt.test': { TXT: ['hello'] },
  'long-txt.test': { TXT: [`v=DKIM1; k=rsa; p=${'A'.repeat(300)}`, ['two', 'chunks']] },
};

beforeAll(async () => {
  dns = await startDnsServer(zone);
  soa = await startDnsServer(zone, { negativeTtl: 600 });
});
afterAll(async () => {
  await dns.close();
  await soa.close();
});

const cache = { enabled: true, maxEntries: 100, maxTtlSeconds: 3600, negativeMaxSeconds: 300 };
const cached = (server = dns, opts: Partial<typeof cache> = {}) =>
  createResolver({ servers: [server.address], timeoutSeconds: 1, tries: 1, cache: { ...cache, ...opts } }, clock);
const plain = (server = dns) => createResolver({ servers: [server.address], timeoutSeconds: 1, tries: 1 });
const asked = (server: DnsServer, name: string, type?: string) => server.queries.filter((q) => q.name === name && (!type || q.type === type)).length;
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

describe('cached resolver', () => {
  it('answers MX, A, AAAA and errors as node:dns does', async () => {
    const c = cached();
    const p = plain();
    for (const name of ['multi.test', 'nullmx.test']) expect(await c.resolveMx(name)).toEqual(await p.resolveMx(name));
    for (const name of ['mx1.multi.test', 'mx2.multi.test']) expect(await c.resolve4(name)).toEqual(await p.resolve4(name));
    expect(await c.resolve6('mx2.multi.test')).toEqual(await p.resolve6('mx2.multi.test'));
    expect(await c.resolve6('mx2.multi.test')).toEqual(['::1', '2001:db8::5']);
    expect(await codeOf(c.resolveMx('nope.test'))).toBe(await codeOf(p.resolveMx('nope.test')));
    expect(await codeOf(c.resolve6('mx1.multi.test'))).toBe('ENODATA');
    expect(await codeOf(c.resolveMx('flaky.test'))).toBe('ESERVFAIL');
    expect(await c.resolveTxt('txt.test')).toEqual(await p.resolveTxt('txt.test'));
    expect(await c.resolve('txt.test', 'TXT')).toEqual([['hello']]);
    expect(await c.resolveTxt('long-txt.test')).toEqual(await p.resolveTxt('long-txt.test'));
    expect(await resolveRoute(c, 'multi.test')).toEqual(await resolveRoute(p, 'multi.test'));
    expect(await resolveRoute(c, 'nope.test')).toEqual({ kind: 'no-domain', reason: 'nope.test: domain does not exist (NXDOMAIN)' });
  });

  it('asks no DNS within the TTL and asks again after it, per record TTL', async () => {
    const c = cached();
    now = 1_000_000;
    const before = { multi: asked(dns, 'multi.test', 'MX'), short: asked(dns, 'short.test', 'MX') };
    await c.resolveMx('multi.test');
    await c.resolveMx('short.test');
    now += 4_000;
    await c.resolveMx('multi.test');
    await c.resolveMx('short.test');
    expect(asked(dns, 'multi.test', 'MX') - before.multi).toBe(1);
    expect(asked(dns, 'short.test', 'MX') - before.short).toBe(1);
    now += 2_000; // 6 s: past short.test's 5 s, within multi.test's 60 s
    await c.resolveMx('multi.test');
    await c.resolveMx('short.test');
    expect(asked(dns, 'multi.test', 'MX') - before.multi).toBe(1);
    expect(asked(dns, 'short.test', 'MX') - before.short).toBe(2);
    now += 60_000;
    await c.resolveMx('multi.test');
    expect(asked(dns, 'multi.test', 'MX') - before.multi).toBe(2);
  });

  it('cuts a long TTL to maxTtlSeconds', async () => {
    const c = cached(dns, { maxTtlSeconds: 100 });
    const before = asked(dns, 'long.test');
    await c.resolveMx('long.test');
    now += 99_000;
    await c.resolveMx('long.test');
    expect(asked(dns, 'long.test') - before).toBe(1);
    now += 2_000;
    await c.resolveMx('long.test');
    expect(asked(dns, 'long.test') - before).toBe(2);
  });

  it('caches NXDOMAIN and NODATA for min(SOA minimum, negativeMaxSeconds)', async () => {
    const c = cached(soa);
    const before = { nx: asked(soa, 'gone.test'), nodata: asked(soa, 'mx1.multi.test', 'AAAA') };
    expect(await codeOf(c.resolveMx('gone.test'))).toBe('ENOTFOUND');
    expect(await codeOf(c.resolve6('mx1.multi.test'))).toBe('ENODATA');
    now += 299_000; // SOA says 600 s; the bound is 300 s
    expect(await codeOf(c.resolveMx('gone.test'))).toBe('ENOTFOUND');
    expect(await codeOf(c.resolve6('mx1.multi.test'))).toBe('ENODATA');
    expect(asked(soa, 'gone.test') - before.nx).toBe(1);
    expect(asked(soa, 'mx1.multi.test', 'AAAA') - before.nodata).toBe(1);
    now += 2_000;
    soa.set('gone.test', 'MX', [{ exchange: 'mx1.multi.test', priority: 10 }]);
    expect(await c.resolveMx('gone.test')).toEqual([{ exchange: 'mx1.multi.test', priority: 10 }]);
    expect(asked(soa, 'gone.test') - before.nx).toBe(2);
    soa.remove('gone.test');
  });

  it('does not cache a negative answer without an SOA, nor SERVFAIL', async () => {
    const c = cached();
    const before = { nx: asked(dns, 'nosoa.test'), flaky: asked(dns, 'flaky.test') };
    await codeOf(c.resolveMx('nosoa.test'));
    await codeOf(c.resolveMx('nosoa.test'));
    await codeOf(c.resolveMx('flaky.test'));
    await codeOf(c.resolveMx('flaky.test'));
    expect(asked(dns, 'nosoa.test') - before.nx).toBe(2);
    expect(asked(dns, 'flaky.test') - before.flaky).toBe(2);
  });

  it('keeps at most maxEntries, dropping the least recently used', async () => {
    const c = cached(dns, { maxEntries: 2 });
    const count = () => asked(dns, 'mx1.multi.test', 'A') + asked(dns, 'mx2.multi.test', 'A') + asked(dns, 'multi.test', 'MX');
    const base = count();
    await c.resolve4('mx1.multi.test'); // miss
    await c.resolve4('mx2.multi.test'); // miss
    await c.resolve4('mx1.multi.test'); // hit: mx1 is now the most recent
    await c.resolveMx('multi.test'); // miss: pushes mx2 out
    expect(count() - base).toBe(3);
    await c.resolve4('mx1.multi.test'); // still there
    expect(count() - base).toBe(3);
    await c.resolve4('mx2.multi.test'); // gone: asked again
    expect(count() - base).toBe(4);
    expect(c.cache?.size).toBe(2);
  });

  it('sends one query for concurrent lookups of one name', async () => {
    const c = cached();
    now += 3_600_000;
    const before = asked(dns, 'mx2.multi.test', 'A');
    const answers = await Promise.all(Array.from({ length: 20 }, () => c.resolve4('mx2.multi.test')));
    expect(new Set(answers.map((a) => a.join()))).toEqual(new Set(['127.0.0.12']));
    expect(asked(dns, 'mx2.multi.test', 'A') - before).toBe(1);
  });

  it('retries over TCP when the UDP answer is truncated', async () => {
    const c = cached();
    const mx = await c.resolveMx('big.test');
    expect(mx).toHaveLength(40);
    expect(dns.queries.filter((q) => q.name === 'big.test').map((q) => q.protocol)).toEqual(['udp', 'tcp']);
  });

  it('fails, and does not hang, when the server closes the TCP connection after a truncated UDP answer', { timeout: 10_000 }, async () => {
    // UDP answers every query truncated (TC set); TCP on the same port accepts and closes without answering.
    const sockets: net.Socket[] = [];
    const tcp = net.createServer((socket) => void sockets.push(socket.end()));
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const port = (tcp.address() as net.AddressInfo).port;
    const udp = createSocket('udp4');
    udp.on('message', (msg, from) => {
      const reply = Buffer.from(msg);
      reply[2] = 0x82; // QR and TC
      reply[3] = 0;
      udp.send(reply, from.port, from.address);
    });
    await new Promise<void>((resolve) => udp.bind(port, '127.0.0.1', () => resolve()));
    try {
      const c = createResolver({ servers: [`127.0.0.1:${port}`], timeoutSeconds: 5, tries: 1, cache }, clock);
      // A temporary failure (never NXDOMAIN): the route is deferred, and the next lookup asks again instead of
      // joining a query that never ends.
      expect(await codeOf(c.resolveMx('big.test'))).toBe('ECONNRESET');
      expect(await resolveRoute(c, 'big.test')).toMatchObject({ kind: 'temp-error' });
    } finally {
      udp.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => tcp.close(resolve));
    }
  });
});
