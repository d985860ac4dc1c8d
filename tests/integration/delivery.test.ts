import { authenticate } from 'mailauth';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeResolver, startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { adminRequest, SMTP_USER, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { closeAll } from '../helpers/close-all.js';

// Rules per recipient address at the receiver (acting as the recipients' MX).
const rules = {
  'greylisted@dest.test': [{ code: 451, message: '4.7.1 Greylisted, try again later' }],
  'ratelimited@dest.test': [{ code: 421, message: '4.7.28 rate limited, try again later' }],
  'nobody@dest.test': { code: 550, message: '5.1.1 The email account that you tried to reach does not exist' },
  // RFC 3463: the enhanced code's class 4 says temporary on a 5xx; a 4xx stays temporary whatever its enhanced code.
  'full@dest.test': [{ code: 550, message: '4.2.2 Mailbox full' }],
  'moved@dest.test': [{ code: 450, message: '5.1.1 Recipient address rejected: User unknown' }],
};

let dns: DnsServer;
let receiver: Receiver;
let t: TestGateway;

beforeAll(async () => {
  receiver = await startReceiver({ rules, hostname: 'mx.dest.test' });
  dns = await startDnsServer({
    'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
    'mx.dest.test': { A: ['127.0.0.1'] },
    // No MX: the A record is the implicit MX (RFC 5321 5.1).
    'implicit.test': { A: ['127.0.0.1'] },
    // A company domain hosted at a big provider (served by the loopback DNS only): counted as that provider.
    'corp.test': { MX: [{ exchange: 'aspmx.l.google.com', priority: 1 }] },
    'aspmx.l.google.com': { A: ['127.0.0.1'] },
    'nullmx.test': { MX: [{ exchange: '.', priority: 0 }] },
    // An MX whose address has nothing listening: connection refused until the TTL runs out.
    'down.test': { MX: [{ exchange: 'mx.down.test', priority: 10 }] },
    'mx.down.test': { A: ['127.0.0.2'] },
    'example.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
    '_dmarc.example.test': { TXT: ['v=DMARC1; p=reject; adkim=s'] },
    'bounce.example.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
  });
  t = await startTestGateway({ dns, overrides: { delivery: { mxPort: receiver.port } } });
  t.publishDkim(dns);
});

afterAll(() => closeAll(t, receiver, dns));

const base = { from: 'Passport office <noreply@example.test>', subject: 'Your code', text: 'Code: 123456', priority: 'verification' };

describe('delivery end to end', () => {
  it('delivers an HTTP submission over STARTTLS, DKIM-signed and DMARC-aligned', async () => {
    const res = await t.submit({ ...base, to: ['alice@dest.test'] });
    expect(res.status).toBe(202);
    const done = await t.waitForStatus(res.body.id, (s) => s.status === 'delivered');
    const msg = receiver.messages.find((m) => m.rcptTo.includes('alice@dest.test'));
    expect(msg).toBeDefined();
    expect(msg!.secure).toBe(true);
    expect(msg!.mailFrom).toMatch(new RegExp(`^b\\+${res.body.id}\\.[0-9a-f]+@bounce\\.example\\.test$`));
    const auth = await authenticate(msg!.raw, {
      ip: '127.0.0.1',
      helo: msg!.clientHostname,
      sender: msg!.mailFrom,
      mta: 'mx.dest.test',
      resolver: makeResolver(dns.address),
    });
    const dkim = auth.dkim.results.map((r: any) => [r.signingDomain, r.status.result, r.status.aligned]);
    expect(dkim).toContainEqual(['example.test', 'pass', 'example.test']);
    expect(auth.dkim.results).toHaveLength(2);
    expect(auth.dkim.results.every((r: any) => r.status.result === 'pass')).toBe(true);
    expect((auth.spf as any).status.result).toBe('pass');
    expect((auth.dmarc as any).status.result).toBe('pass');
    expect(done.events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'delivered']);
    expect(done.recipients['alice@dest.test'].status).toBe('delivered');
  });

  it('delivers an SMTP submission the same way', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.smtp, auth: SMTP_USER, tls: { rejectUnauthorized: false } });
    const info = await transport.sendMail({ from: 'noreply@example.test', to: 'bob@dest.test', subject: 'SMTP code', text: 'Code: 654321' });
    transport.close();
    const id = /queued as ([0-9a-z]+)/.exec(info.response)?.[1];
    expect(id).toBeTruthy();
    await t.waitForStatus(id!, (s) => s.status === 'delivered');
    const msg = receiver.messages.find((m) => m.rcptTo.includes('bob@dest.test'))!;
    const auth = await authenticate(msg.raw, { ip: '127.0.0.1', helo: msg.clientHostname, sender: msg.mailFrom, resolver: makeResolver(dns.address) });
    expect((auth.dmarc as any).status.result).toBe('pass');
  });

  it('defers on 451 and 421, then delivers', async () => {
    const a = await t.submit({ ...base, to: ['greylisted@dest.test'] });
    const b = await t.submit({ ...base, to: ['ratelimited@dest.test'] });
    for (const id of [a.body.id, b.body.id]) {
      const s = await t.waitForStatus(id, (x) => x.status === 'delivered');
      const types = s.events.map((e: any) => e.type);
      expect(types).toEqual(['queued', 'attempt', 'deferred', 'attempt', 'delivered']);
      const deferred = s.events.find((e: any) => e.type === 'deferred');
      expect(deferred.reply).toMatch(/^4(21|51)/);
      expect(deferred.category).toBe(id === a.body.id ? 'greylist' : 'rate-limit');
      expect(Date.parse(deferred.nextAttemptAt)).toBeGreaterThan(Date.parse(deferred.at));
    }
  });

  it('bounces on 550 keeping the remote reply, and delivers to the other recipient', async () => {
    const res = await t.submit({ ...base, to: ['nobody@dest.test', 'carol@dest.test'] });
    const s = await t.waitForStatus(res.body.id, (x) => x.status === 'partially-delivered');
    expect(s.recipients['nobody@dest.test']).toMatchObject({ status: 'bounced' });
    expect(s.recipients['nobody@dest.test'].reply).toMatch(/^550 5\.1\.1/);
    expect(s.recipients['nobody@dest.test'].category).toBe('invalid-recipient');
    expect(s.events.find((e: any) => e.type === 'bounced')).toMatchObject({ recipients: ['nobody@dest.test'], category: 'invalid-recipient' });
    expect(s.recipients['carol@dest.test'].status).toBe('delivered');
  });

  it('defers "550 4.2.2 Mailbox full" and "450 5.1.1" (either code saying temporary), then delivers; nothing bounced or suppressed', async () => {
    const res = await t.submit({ ...base, to: ['full@dest.test', 'moved@dest.test'] });
    const s = await t.waitForStatus(res.body.id, (x) => x.status === 'delivered');
    // One deferred event per category.
    expect(s.events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'deferred', 'deferred', 'attempt', 'delivered']);
    const deferred = s.events.filter((e: any) => e.type === 'deferred').map((e: any) => ({ recipients: e.recipients, category: e.category, reply: e.reply }));
    expect(deferred).toEqual(
      expect.arrayContaining([
        { recipients: ['full@dest.test'], category: 'mailbox-full', reply: '550 4.2.2 Mailbox full' },
        { recipients: ['moved@dest.test'], category: 'invalid-recipient', reply: '450 5.1.1 Recipient address rejected: User unknown' },
      ]),
    );
    expect(receiver.messages.filter((m) => m.rcptTo.includes('full@dest.test') || m.rcptTo.includes('moved@dest.test'))).toHaveLength(1);
    for (const address of ['full@dest.test', 'moved@dest.test'])
      expect((await adminRequest(t.url, 'GET', `/v1/suppressions/${encodeURIComponent(address)}`)).status).toBe(404);
  });

  it('bounces at once for a null MX domain, without connecting', async () => {
    const before = receiver.connections;
    const res = await t.submit({ ...base, to: ['x@nullmx.test'] });
    const s = await t.waitForStatus(res.body.id, (x) => x.status === 'bounced');
    expect(s.recipients['x@nullmx.test'].reply).toMatch(/^556 5\.1\.10/);
    expect(s.recipients['x@nullmx.test'].attempts).toBe(1);
    expect(s.recipients['x@nullmx.test'].category).toBe('bad-domain');
    expect(receiver.connections).toBe(before);
  });

  it('bounces a domain that does not exist', async () => {
    const res = await t.submit({ ...base, to: ['x@nxdomain.test'] });
    const s = await t.waitForStatus(res.body.id, (x) => x.status === 'bounced');
    expect(s.recipients['x@nxdomain.test'].reply).toMatch(/^550 5\.1\.2/);
  });

  it('falls back to the A record when a domain has no MX', async () => {
    const res = await t.submit({ ...base, to: ['dave@implicit.test'] });
    await t.waitForStatus(res.body.id, (x) => x.status === 'delivered');
    expect(receiver.messages.some((m) => m.rcptTo.includes('dave@implicit.test'))).toBe(true);
  });

  it('labels metrics with the provider found from the MX host when the domain says nothing', async () => {
    const res = await t.submit({ ...base, to: ['frank@corp.test'] });
    await t.waitForStatus(res.body.id, (x) => x.status === 'delivered');
    const text = await (await fetch(`${t.url}/metrics`)).text();
    expect(text).toMatch(/^kurir_delivery_attempts_total\{provider="gmail",result="delivered",category="none"\} 1$/m);
  });

  it('expires a message whose receiver stays unreachable until its TTL', async () => {
    const res = await t.submit({ ...base, to: ['eve@down.test'], ttl: 4 });
    const s = await t.waitForStatus(res.body.id, (x) => x.status === 'expired', 15_000);
    const types = s.events.map((e: any) => e.type);
    expect(types[0]).toBe('queued');
    expect(types.at(-1)).toBe('expired');
    expect(types.filter((x: string) => x === 'deferred').length).toBeGreaterThanOrEqual(1);
    expect(s.events.find((e: any) => e.type === 'deferred').category).toBe('network');
    expect(s.recipients['eve@down.test'].category).toBe('message-expired');
    expect(Date.parse(s.events.at(-1).at)).toBeLessThanOrEqual(Date.parse(s.expiresAt) + 1500);
    expect(receiver.messages.some((m) => m.rcptTo.includes('eve@down.test'))).toBe(false);
  });
});
