/**
 * The envelope syntax SMTP intake accepts, over real sockets, real Redis and DNS on loopback: MAIL FROM and RCPT TO
 * parameters of extensions Kurir does not offer are refused with 555 5.5.4 naming them (RFC 5321 §4.5.3), and a
 * quoted local part ("john doe"@dest.test) is accepted over SMTP as over HTTP and delivered with the same RCPT TO.
 * The receiver is the raw scripted MX of tests/helpers/scripted-mx.ts (smtp-server, like Kurir's own parser
 * before, refuses a quoted local part holding a space), so the test sees the exact command Kurir sent. `AUTH` without
 * a mechanism is 501 5.5.4 naming the mechanisms offered (smtp-server's bare 504 until 2 Dec 2026).
 */
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { scripted, type Scripted } from '../helpers/scripted-mx.js';
import { SmtpDialog } from '../helpers/smtp-dialog.js';
import { SMTP_USER, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';
import { closeAll } from '../helpers/close-all.js';

let t: TestGateway;
let dns: DnsServer;
let receiver: Scripted;

beforeAll(async () => {
  // No PIPELINING offered: each command of Kurir's client arrives as its own line, as most receivers see it.
  receiver = await scripted({ pipelining: false });
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
  t = await startTestGateway({ dns, overrides: { roles: ['intake', 'api', 'worker'], delivery: { mxPort: receiver.port } } });
});

afterAll(() => closeAll(t, receiver, dns));

/** A session logged in (cleartext AUTH is allowed on loopback in tests), optionally after STARTTLS. */
async function session(starttls = false): Promise<SmtpDialog> {
  const d = await SmtpDialog.open(t.gateway.ports.smtp!);
  await d.cmd('EHLO client.test');
  if (starttls) {
    await d.starttls();
    await d.cmd('EHLO client.test');
  }
  expect(await d.cmd(`AUTH PLAIN ${Buffer.from(`\0${SMTP_USER.user}\0${SMTP_USER.pass}`).toString('base64')}`)).toMatch(/^235 /);
  return d;
}

const body = (to: string): string => `From: noreply@example.test\r\nTo: ${to}\r\nSubject: Your code\r\n\r\nCode: 123456\r\n.`;

describe('AUTH without a mechanism', () => {
  it('is answered 501 5.5.4 naming the mechanisms offered, before and after STARTTLS, and the session goes on', async () => {
    const want = '501 5.5.4 AUTH: name a mechanism, one of PLAIN, LOGIN (AUTH PLAIN <initial response>, or AUTH LOGIN)';
    const d = await SmtpDialog.open(t.gateway.ports.smtp!);
    await d.cmd('EHLO client.test');
    expect(await d.cmd('AUTH')).toBe(want);
    await d.starttls();
    await d.cmd('EHLO client.test');
    expect(await d.cmd('AUTH   ')).toBe(want);
    expect(await d.cmd(`AUTH PLAIN ${Buffer.from(`\0${SMTP_USER.user}\0${SMTP_USER.pass}`).toString('base64')}`)).toMatch(/^235 /);
    expect(await d.cmd('AUTH')).toBe(want);
    d.close();
  });
});

describe('MAIL FROM and RCPT TO parameters', () => {
  // Found 1 Dec 2026: every one of these was answered 250 and the parameter ignored.
  it('refuses a MAIL FROM parameter Kurir does not offer with 555 5.5.4 naming it, and the session goes on', async () => {
    const d = await session(true);
    const ehlo = await d.cmd('EHLO client.test');
    expect(ehlo).not.toMatch(/^250[- ](DSN|SMTPUTF8|REQUIRETLS)$/m);
    for (const [param, name] of [
      ['FOO=bar', 'FOO'],
      ['XYZZY', 'XYZZY'],
      ['SMTPUTF8', 'SMTPUTF8'],
      ['RET=HDRS', 'RET'],
      ['ENVID=abc', 'ENVID'],
      ['REQUIRETLS', 'REQUIRETLS'],
      ['SIZE=100 foo=1', 'FOO'],
    ]) {
      expect(await d.cmd(`MAIL FROM:<noreply@example.test> ${param}`), param).toBe(
        `555 5.5.4 MAIL FROM: parameter ${name} is not supported (this server accepts SIZE, BODY, AUTH)`,
      );
    }
    expect(await d.cmd('MAIL FROM:<noreply@example.test> SIZE=100 BODY=8BITMIME AUTH=<>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<params@dest.test>')).toMatch(/^250 /);
    expect(await d.cmd('DATA')).toMatch(/^354 /);
    expect(await d.cmd(body('params@dest.test'))).toMatch(/^250 2\.0\.0 Ok: queued as /);
    d.close();
  });

  it('refuses every RCPT TO parameter (DSN is not offered) with 555 5.5.4 naming it, and keeps the transaction', async () => {
    const d = await session();
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<dsn@dest.test> NOTIFY=NEVER')).toBe('555 5.5.4 RCPT TO: parameter NOTIFY is not supported (this server accepts none)');
    expect(await d.cmd('RCPT TO:<dsn@dest.test> ORCPT=rfc822;dsn@dest.test')).toMatch(/^555 5\.5\.4 RCPT TO: parameter ORCPT /);
    expect(await d.cmd('RCPT TO:<dsn@dest.test> FOO')).toMatch(/^555 5\.5\.4 RCPT TO: parameter FOO /);
    expect(await d.cmd('DATA')).toMatch(/^503 /); // no recipient was accepted
    expect(await d.cmd('RCPT TO:<dsn@dest.test>')).toMatch(/^250 /);
    expect(await d.cmd('DATA')).toMatch(/^354 /);
    expect(await d.cmd(body('dsn@dest.test'))).toMatch(/^250 2\.0\.0 Ok: queued as /);
    d.close();
  });

  it('still answers a SIZE over smtp.maxMessageBytes 552 5.3.4 at MAIL FROM', async () => {
    const d = await session();
    expect(await d.cmd(`MAIL FROM:<noreply@example.test> SIZE=${t.config.smtp.maxMessageBytes + 1}`)).toMatch(/^552 5\.3\.4 /);
    d.close();
  });

  it('lets nodemailer send an 8-bit message (BODY=8BITMIME)', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.smtp, auth: SMTP_USER, tls: { rejectUnauthorized: false } });
    const info = await transport.sendMail({ from: 'noreply@example.test', to: 'eight@dest.test', subject: 'Kód', text: 'Váš kód: 123456' });
    transport.close();
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
  });
});

describe('quoted local parts', () => {
  /** The RCPT TO line the receiver got for `address`, once the message was delivered. */
  async function deliveredWith(id: string, address: string): Promise<string> {
    await t.waitForStatus(id, (s) => s.status === 'delivered');
    return until(() => receiver.commands.find((l) => l === `RCPT TO:<${address}>`), 10_000, `RCPT TO:<${address}> at the receiver`);
  }

  // Found 1 Dec 2026: SMTP answered 501 Bad recipient address syntax, HTTP accepted and delivered the same address.
  it('accepts "john doe"@dest.test at RCPT TO and delivers it with that RCPT TO', async () => {
    const d = await session();
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<"john doe"@dest.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<"a@b"@Dest.test>')).toMatch(/^250 /);
    expect(await d.cmd('DATA')).toMatch(/^354 /);
    const reply = await d.cmd(body('"john doe"@dest.test'));
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    d.close();
    const id = reply.split(' ').pop()!;
    expect((await t.gateway.messages.getRecord(id))?.recipients).toEqual(['"john doe"@dest.test', '"a@b"@dest.test']);
    expect(await deliveredWith(id, '"john doe"@dest.test')).toBe('RCPT TO:<"john doe"@dest.test>');
    expect(await deliveredWith(id, '"a@b"@dest.test')).toBe('RCPT TO:<"a@b"@dest.test>');
  });

  it('accepts a quoted local part in MAIL FROM (the sender domain is still checked)', async () => {
    const d = await session();
    expect(await d.cmd('MAIL FROM:<"no reply"@other.test>')).toMatch(/^550 5\.7\.1 MAIL FROM: sender domain other\.test/);
    expect(await d.cmd('MAIL FROM:<"no reply"@example.test> SIZE=10')).toMatch(/^250 /);
    d.close();
  });

  it('accepts the same address over HTTP, writes it quoted in the To header, and delivers it with that RCPT TO', async () => {
    const res = await t.submit({ from: 'noreply@example.test', to: ['"jane roe"@dest.test', '"c@d"@dest.test'], subject: 'Your code', text: 'Code: 1' });
    expect(res.status).toBe(202);
    expect(await deliveredWith(res.body.id, '"jane roe"@dest.test')).toBe('RCPT TO:<"jane roe"@dest.test>');
    expect(await deliveredWith(res.body.id, '"c@d"@dest.test')).toBe('RCPT TO:<"c@d"@dest.test>');
    // nodemailer's addressparser used to drop the quotes: the header said a@b@dest.test.
    expect(receiver.bodies.find((m) => m.includes('"jane roe"'))).toMatch(/^To: <"jane roe"@dest\.test>, "c@d"@dest\.test$/m);
  });

  it('refuses a malformed quoted local part on both interfaces, naming the address', async () => {
    const d = await session();
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<"unterminated@dest.test>')).toBe('553 5.1.3 RCPT TO: ""unterminated@dest.test" has an invalid local part');
    expect(await d.cmd('RCPT TO:<"bad"quote"@dest.test>')).toBe('553 5.1.3 RCPT TO: ""bad"quote"@dest.test" has an invalid local part');
    expect(await d.cmd('RCPT TO:<"a b"c@dest.test>')).toMatch(/^501 5\.1\.3 /); // not a quoted string: smtp-server cannot parse it
    d.close();
    const res = await t.submit({ from: 'noreply@example.test', to: ['"bad"quote"@dest.test'], subject: 's', text: 'x' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'BAD_ADDRESS', field: 'to[0]' });
    expect(res.body.error.message).toContain('"bad"quote"@dest.test');
  });
});
