/**
 * Proves the shared test infrastructure works against real clients:
 * node:dns (c-ares) against the DNS server, nodemailer against the receiver,
 * and mailauth's authenticate() against both (DKIM/SPF/DMARC pass).
 */
import { Redis } from 'ioredis';
import { authenticate } from 'mailauth';
import { dkimSignOnce } from '../helpers/mailauth-sign.js';
import nodemailer from 'nodemailer';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeResolver, nodeResolver, startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { openMonitor, parseMonitorLine } from '../helpers/redis-monitor.js';
import { startReceiver, type Receiver, type ReceiverOptions } from '../helpers/receiver.js';
import { describeCert, dkimKeyPair, selfSignedCert } from '../helpers/tls.js';

const LONG_TXT = `v=DKIM1; k=rsa; p=${'A'.repeat(600)}`;

describe('dns-server via node:dns Resolver', () => {
  let dns: DnsServer;
  beforeAll(async () => {
    dns = await startDnsServer({
      'Example.TEST.': {
        MX: [
          { exchange: 'mx2.example.test', priority: 20 },
          { exchange: 'mx.example.test', priority: 10 },
        ],
        A: ['127.0.0.1'],
        AAAA: ['::1', '2001:db8::25'],
        TXT: ['v=spf1 ip4:127.0.0.1 -all'],
      },
      'long.example.test': { TXT: [LONG_TXT] },
      'nullmx.test': { MX: [{ exchange: '.', priority: 0 }], A: ['127.0.0.2'] },
      'broken.test': { servfail: true, MX: [{ exchange: 'mx.broken.test', priority: 10 }] },
      'alias.example.test': { CNAME: ['example.test'] },
      '1.2.0.192.in-addr.arpa': { PTR: ['mx.example.test'] },
    });
  });
  afterAll(() => dns.close());

  it('answers MX, A, AAAA and TXT, case-insensitively and with a trailing dot', async () => {
    const r = nodeResolver(dns.address);
    // Node 24 adds `type: 'MX'` to each record; what the server answered is the exchange and the priority.
    const mx = (await r.resolveMx('EXAMPLE.test.')).map(({ exchange, priority }) => ({ exchange, priority }));
    expect(mx.sort((a, b) => a.priority - b.priority)).toEqual([
      { exchange: 'mx.example.test', priority: 10 },
      { exchange: 'mx2.example.test', priority: 20 },
    ]);
    expect(await r.resolve4('example.test')).toEqual(['127.0.0.1']);
    expect(await r.resolve6('example.test')).toEqual(['::1', '2001:db8::25']);
    expect(await r.resolveTxt('example.test')).toEqual([['v=spf1 ip4:127.0.0.1 -all']]);
  });

  it('splits long TXT into 255-byte strings and falls back to TCP above 512 bytes', async () => {
    const chunks = await nodeResolver(dns.address).resolveTxt('long.example.test');
    expect(chunks).toHaveLength(1);
    expect(chunks[0].map((c) => c.length)).toEqual([255, 255, 108]);
    expect(chunks[0].join('')).toBe(LONG_TXT);
    const protocols = dns.queries.filter((q) => q.name === 'long.example.test').map((q) => q.protocol);
    expect(protocols).toEqual(['udp', 'tcp']);
  });

  it('serves a null MX, which node reports as exchange "" (not ".")', async () => {
    expect(await nodeResolver(dns.address).resolveMx('nullmx.test')).toMatchObject([{ exchange: '', priority: 0 }]);
  });

  it('maps NXDOMAIN, NODATA and SERVFAIL to ENOTFOUND, ENODATA and ESERVFAIL', async () => {
    const r = nodeResolver(dns.address);
    await expect(r.resolveMx('nope.example.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(r.resolveTxt('nullmx.test')).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(r.resolveMx('broken.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
    await expect(makeResolver(dns.address)('nope.example.test', 'TXT')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(dns.queries.find((q) => q.name === 'broken.test')?.rcode).toBe(2);
  });

  it('follows in-zone CNAMEs and answers PTR', async () => {
    const r = nodeResolver(dns.address);
    expect(await r.resolveCname('alias.example.test')).toEqual(['example.test']);
    expect(await r.resolve4('alias.example.test')).toEqual(['127.0.0.1']);
    expect(await r.reverse('192.0.2.1')).toEqual(['mx.example.test']);
  });

  it('applies set / remove / servfail at runtime', async () => {
    const r = nodeResolver(dns.address);
    dns.set('new.test', 'A', ['127.0.0.9']);
    expect(await r.resolve4('new.test')).toEqual(['127.0.0.9']);
    dns.servfail('new.test');
    await expect(r.resolve4('new.test')).rejects.toMatchObject({ code: 'ESERVFAIL' });
    dns.servfail('new.test', false);
    dns.remove('new.test', 'A');
    await expect(r.resolve4('new.test')).rejects.toMatchObject({ code: 'ENODATA' });
    dns.remove('new.test');
    await expect(r.resolve4('new.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(() => dns.set('x.test', 'A', ['not-an-ip'])).toThrow(/bad A address/);
  });
});

describe('receiver via nodemailer', () => {
  let receiver: Receiver | undefined;
  const start = async (opts?: ReceiverOptions): Promise<Receiver> => (receiver = await startReceiver(opts));
  afterEach(async () => {
    await receiver?.close();
    receiver = undefined;
  });
  const transport = (rx: Receiver, requireTLS = true) =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port: rx.port,
      secure: false,
      requireTLS,
      name: 'client.example.test',
      tls: { rejectUnauthorized: false },
    });
  const mail = (to: string | string[]) => ({
    envelope: { from: 'bounce@example.test', to: [to].flat() },
    from: 'Sender <sender@example.test>',
    to: [to].flat(),
    subject: 'hello',
    text: 'body',
  });

  it('records a message delivered over STARTTLS', async () => {
    const rx = await start();
    const info = await transport(rx).sendMail(mail('user@dest.test'));
    expect(info.accepted).toEqual(['user@dest.test']);
    const [msg] = await rx.waitFor(1, 2000);
    expect(msg).toMatchObject({
      mailFrom: 'bounce@example.test',
      rcptTo: ['user@dest.test'],
      remoteAddress: '127.0.0.1',
      clientHostname: 'client.example.test',
      secure: true,
    });
    expect(msg.raw.toString()).toMatch(/^Subject: hello\r$/m);
    expect(msg.receivedAt).toBeInstanceOf(Date);
    expect(rx.connections).toBe(1);
    expect(describeCert((await selfSignedCert('mx.example.test')).cert).subjectAltName).toContain('mx.example.test');
  });

  it('delivers in plaintext when tls is off', async () => {
    const rx = await start({ tls: false });
    await transport(rx, false).sendMail(mail('user@dest.test'));
    expect((await rx.waitFor(1)).map((m) => m.secure)).toEqual([false]);
  });

  it('replies 451 then accepts for one recipient across two sends (rules)', async () => {
    const rx = await start({ rules: { 'Slow@dest.test': [{ code: 451, message: '4.7.1 try later' }] } });
    const first = transport(rx).sendMail(mail('slow@dest.test'));
    await expect(first).rejects.toMatchObject({ code: 'EENVELOPE', responseCode: 451, response: '451 4.7.1 try later' });
    expect(rx.messages).toHaveLength(0);
    const info = await transport(rx).sendMail(mail('slow@dest.test'));
    expect(info.accepted).toEqual(['slow@dest.test']);
    expect(rx.attempts('slow@dest.test')).toBe(2);
    expect((await rx.waitFor(1)).map((m) => m.rcptTo)).toEqual([['slow@dest.test']]);
  });

  it('lets a script reject per stage and partially accept recipients', async () => {
    const rx = await start({
      script: (ctx) => {
        if (ctx.stage === 'rcpt' && ctx.address === 'gone@dest.test') return { code: 550, message: '5.1.1 no such user' };
        if (ctx.stage === 'data' && ctx.attempt === 1) return { code: 554, message: '5.7.1 spam' };
        if (ctx.stage === 'data') return { code: 250, message: '2.0.0 queued as ABC123' };
        return undefined;
      },
    });
    await expect(transport(rx).sendMail(mail('ok@dest.test'))).rejects.toMatchObject({ responseCode: 554 });
    const info = await transport(rx).sendMail(mail(['ok@dest.test', 'gone@dest.test']));
    expect(info.accepted).toEqual(['ok@dest.test']);
    expect(info.rejected).toEqual(['gone@dest.test']);
    expect(info.response).toBe('250 2.0.0 queued as ABC123');
    expect(rx.messages.map((m) => m.rcptTo)).toEqual([['ok@dest.test']]);
  });

  it('waitFor rejects with a description of what was received', async () => {
    const rx = await start({ tls: false });
    await transport(rx, false).sendMail(mail('one@dest.test'));
    await expect(rx.waitFor(2, 100)).rejects.toThrow(/timed out after 100ms: 1 message\(s\) received[\s\S]*one@dest\.test/);
  });
});

describe('mailauth authenticate() against the DNS server', () => {
  let dns: DnsServer;
  beforeAll(async () => {
    dns = await startDnsServer();
  });
  afterAll(() => dns.close());

  it('gives dkim=pass, spf=pass and dmarc=pass for a signed message', async () => {
    const dkimKey = await dkimKeyPair({ algorithm: 'rsa', bits: 2048 });
    dns.set('sel._domainkey.example.test', 'TXT', [dkimKey.txt]);
    dns.set('example.test', 'TXT', ['v=spf1 ip4:127.0.0.1 -all']);
    dns.set('_dmarc.example.test', 'TXT', ['v=DMARC1; p=reject']);
    // the ~410-char RSA-2048 key record is served as two character-strings
    const chunks = await nodeResolver(dns.address).resolveTxt('sel._domainkey.example.test');
    expect(chunks[0].length).toBe(2);
    expect(chunks[0].join('')).toBe(dkimKey.txt);

    const message = Buffer.from(
      'From: Sender <sender@example.test>\r\nTo: user@dest.test\r\nSubject: signed\r\n' +
        'Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\nHello.\r\n',
    );
    const key = { signingDomain: 'example.test', selector: 'sel', privateKey: dkimKey.privateKey };
    // mailauth's index.d.ts requires the top-level fields, the implementation only reads signatureData.
    const signed = await dkimSignOnce(message, { ...key, signatureData: [key] });
    expect(signed.errors).toEqual([]);

    const resolver = makeResolver(dns.address);
    const result = await authenticate(Buffer.concat([Buffer.from(signed.signatures), message]), {
      ip: '127.0.0.1',
      helo: 'client.example.test',
      sender: 'bounce@example.test',
      mta: 'mx.dest.test',
      resolver,
      disableBimi: true,
    });

    expect(result.dkim.results).toHaveLength(1);
    expect(result.dkim.results[0]).toMatchObject({ signingDomain: 'example.test', selector: 'sel', status: { result: 'pass', aligned: 'example.test' } });
    expect(result.spf).toMatchObject({ domain: 'example.test', 'client-ip': '127.0.0.1', status: { result: 'pass' } });
    expect(result.dmarc).toMatchObject({
      domain: 'example.test',
      policy: 'reject',
      status: { result: 'pass' },
      alignment: { dkim: { result: 'example.test' }, spf: { result: 'example.test' } },
    });
    expect(result.headers).toMatch(/dkim=pass header\.i=@example\.test header\.s=sel/);
    expect(result.headers).toMatch(/dmarc=pass \(p=REJECT/);
    const looked = dns.queries.map((q) => `${q.type} ${q.name}`);
    expect(looked).toEqual(expect.arrayContaining(['TXT sel._domainkey.example.test', 'TXT example.test', 'TXT _dmarc.example.test']));

    // a temporary DNS failure on the key surfaces as a DKIM temperror
    dns.servfail('sel._domainkey.example.test');
    const again = await authenticate(Buffer.concat([Buffer.from(signed.signatures), message]), {
      ip: '127.0.0.1',
      helo: 'client.example.test',
      sender: 'bounce@example.test',
      resolver,
      disableBimi: true,
    });
    expect(again.dkim.results[0].status.result).toBe('temperror');
    dns.servfail('sel._domainkey.example.test', false);
  });

  it('verifies an Ed25519 (RFC 8463) signature published via the raw-key TXT form', async () => {
    const dkimKey = await dkimKeyPair({ algorithm: 'ed25519' });
    dns.set('ed._domainkey.example.test', 'TXT', [dkimKey.txt]);
    const message = 'From: sender@example.test\r\nTo: user@dest.test\r\nSubject: ed\r\n\r\nHi.\r\n';
    const key = { signingDomain: 'example.test', selector: 'ed', privateKey: dkimKey.privateKey, algorithm: 'ed25519-sha256' as const };
    const signed = await dkimSignOnce(message, { ...key, signatureData: [key] });
    const result = await authenticate(signed.signatures + message, {
      ip: '127.0.0.1',
      helo: 'client.example.test',
      sender: 'bounce@example.test',
      resolver: makeResolver(dns.address),
      disableBimi: true,
    });
    expect(result.dkim.results[0]).toMatchObject({ selector: 'ed', status: { result: 'pass' } });
  });
});

describe('redis-monitor', () => {
  it("parses MONITOR lines with escapes and sees commands in order, a script's own as lua", async () => {
    expect(parseMonitorLine('1796172844.723690 [0 127.0.0.1:42986] "lpush" "k" "{\\"result\\":\\"inbox\\"}" "a\\x00b\\r\\n"')).toEqual({
      args: ['lpush', 'k', '{"result":"inbox"}', 'a\u0000b\r\n'],
      source: '127.0.0.1:42986',
    });
    expect(parseMonitorLine('not a monitor line')).toBeNull();
    const key = `kurir-test-monitor-${Math.random().toString(36).slice(2, 8)}`;
    const monitor = await openMonitor();
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      await redis.set(key, 'say "hi"\n');
      await redis.eval("return redis.call('GET', KEYS[1])", 1, key);
      await redis.del(key);
      await monitor.sync();
    } finally {
      await monitor.close();
      await redis.quit();
    }
    const mine = monitor.commands.filter((c) => c.args.includes(key)).map((c) => [c.source === 'lua' ? 'lua' : 'client', ...c.args]);
    expect(mine).toEqual([
      ['client', 'set', key, 'say "hi"\n'],
      ['client', 'eval', "return redis.call('GET', KEYS[1])", '1', key],
      ['lua', 'GET', key],
      ['client', 'del', key],
    ]);
  });
});
