/**
 * SMTP intake against real sockets and real Redis: a gateway with the intake role only (nothing is
 * delivered), driven with nodemailer and with a raw SMTP dialogue for the refusals.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/lib/logger.js';
import { KurirError } from '../../src/lib/errors.js';
import { smtpError } from '../../src/smtp/replies.js';
import { loadOrCreateTls } from '../../src/smtp/tls-material.js';
import { createKeys } from '../../src/store/keys.js';
import { SmtpDialog } from '../helpers/smtp-dialog.js';
import { dropPrefix, SMTP_USER, testConfig } from '../helpers/test-gateway.js';

const PLAIN_TOKEN = Buffer.from(`\0${SMTP_USER.user}\0${SMTP_USER.pass}`).toString('base64');
const MAX_BYTES = 8192;
const logger = createLogger({ level: 'silent' });

/** A raw SMTP dialogue (tests/helpers/smtp-dialog.ts) that expects the 220 greeting. */
const Dialog = {
  async open(port: number, implicitTls = false): Promise<SmtpDialog> {
    const d = await SmtpDialog.open(port, undefined, implicitTls);
    expect(d.greeting).toMatch(/^220 /);
    return d;
  },
};

/** EHLO, optional STARTTLS and AUTH PLAIN as the test account; returns the EHLO reply (after TLS when used). */
async function login(d: SmtpDialog, opts: { starttls?: boolean } = {}): Promise<string> {
  let ehlo = await d.cmd('EHLO client.test');
  if (opts.starttls) {
    await d.starttls();
    ehlo = await d.cmd('EHLO client.test');
  }
  expect(await d.cmd(`AUTH PLAIN ${PLAIN_TOKEN}`)).toMatch(/^235 /);
  return ehlo;
}

function message(from: string, to: string, extra = '', body = 'Code: 123456'): string {
  return `From: ${from}\r\nTo: ${to}\r\nSubject: Your code\r\n${extra}\r\n${body}\r\n`;
}

type Started = { gateway: Gateway; dir: string };

async function start(name: string, smtp: Record<string, unknown> = {}): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), `kurir-smtp-${name}-`));
  const config = testConfig(dir, {
    roles: ['intake'],
    redis: { prefix: `kurir-test-smtp-${name}-${Math.random().toString(36).slice(2, 10)}` },
    smtp: { port: 0, tlsPort: 0, maxRecipients: 3, maxMessageBytes: MAX_BYTES, ...smtp },
    domains: [
      { name: 'example.test', dkim: [{ selector: 'kurir1', algorithm: 'rsa', privateKeyFile: join(dir, 'dkim/rsa.pem'), generate: true }] },
      { name: 'other.test', dkim: [] },
    ],
  });
  return { gateway: await startGateway(config, logger), dir };
}

async function stop(s: Started | undefined): Promise<void> {
  if (!s) return;
  await s.gateway.close();
  await s.gateway.close(); // safe twice
  await dropPrefix(s.gateway.config.redis.prefix);
  rmSync(s.dir, { recursive: true, force: true });
}

/** Number of message records under the gateway's prefix, read over a separate connection. */
async function storedMessages(g: Gateway): Promise<number> {
  const redis = new Redis('redis://127.0.0.1:6379');
  const keys = await redis.keys(`${g.config.redis.prefix}:msg:*`);
  await redis.quit();
  return keys.length;
}

function transport(port: number, opts: Record<string, unknown> = {}) {
  const options = { host: '127.0.0.1', port, requireTLS: true, auth: SMTP_USER, tls: { rejectUnauthorized: false }, ...opts };
  return nodemailer.createTransport(options as nodemailer.TransportOptions);
}

let main: Started;
let port: number;

beforeAll(async () => {
  main = await start('main');
  port = main.gateway.ports.smtp!;
});
afterAll(() => stop(main));

describe('SMTP intake: accepting', () => {
  it('accepts over STARTTLS + AUTH PLAIN with 250 2.0.0 and an id, stored signed in Redis', async () => {
    const info = await transport(port, { authMethod: 'PLAIN' }).sendMail({
      from: 'Passport office <noreply@example.test>',
      to: 'alice@dest.test',
      subject: 'Your code',
      text: 'Code: 123456',
      headers: { 'X-Kurir-Priority': 'verification' },
    });
    const m = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(info.response);
    expect(m, info.response).not.toBeNull();
    const view = await main.gateway.messages.get(m![1]);
    expect(view?.record).toMatchObject({
      interface: 'smtp',
      owner: 'booking-dev',
      mailFrom: 'noreply@example.test',
      recipients: ['alice@dest.test'],
      priority: 'verification',
    });
    const body = (await main.gateway.messages.getBody(m![1]))!.toString();
    expect(body).toMatch(/^DKIM-Signature: .*d=example\.test/m);
    expect(body).toContain('Code: 123456');
  });

  it('accepts AUTH LOGIN and defaults to normal priority', async () => {
    const info = await transport(port, { authMethod: 'LOGIN' }).sendMail({ from: 'noreply@example.test', to: 'bob@dest.test', text: 'hi' });
    const id = /queued as (\S+)/.exec(info.response)![1];
    expect((await main.gateway.messages.getRecord(id))?.priority).toBe('normal');
  });

  it('accepts on the implicit TLS listener', async () => {
    const info = await transport(main.gateway.ports.smtpTls!, { secure: true, requireTLS: false }).sendMail({
      from: 'noreply@example.test',
      to: 'carol@dest.test',
      text: 'hi',
    });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
  });

  it('advertises STARTTLS, SIZE, AUTH PLAIN LOGIN and enhanced status codes; allows plaintext AUTH on loopback', async () => {
    const d = await Dialog.open(port);
    const ehlo = await login(d);
    expect(ehlo).toMatch(/^250-STARTTLS$/m);
    expect(ehlo).toMatch(new RegExp(`^250[- ]SIZE ${MAX_BYTES}$`, 'm'));
    expect(ehlo).toMatch(/^250[- ]AUTH PLAIN LOGIN$/m);
    expect(ehlo).toMatch(/^250[- ]ENHANCEDSTATUSCODES$/m);
    d.close();
  });
});

describe('SMTP intake: refusals', () => {
  it('refuses MAIL FROM without AUTH with 530 5.7.0 (no open relay) and stores nothing', async () => {
    const before = await storedMessages(main.gateway);
    const d = await Dialog.open(port);
    await d.cmd('EHLO client.test');
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^530 5\.7\.0 /);
    expect(await d.cmd('RCPT TO:<victim@dest.test>')).toMatch(/^530 5\.7\.0 /);
    expect(await d.cmd('DATA')).toMatch(/^530 5\.7\.0 /);
    d.close();
    await expect(
      transport(port, { auth: undefined, requireTLS: false }).sendMail({ from: 'x@example.test', to: 'victim@dest.test', text: 'x' }),
    ).rejects.toMatchObject({ responseCode: 530 });
    expect(await storedMessages(main.gateway)).toBe(before);
  });

  it('refuses a wrong password with 535 5.7.8', async () => {
    const err = await transport(port, { auth: { user: SMTP_USER.user, pass: 'wrong-password' } })
      .verify()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ responseCode: 535 });
    expect((err as { response: string }).response).toMatch(/^535 5\.7\.8 /);
  });

  it('refuses a MAIL FROM domain the account may not use with 550 5.7.1', async () => {
    const d = await Dialog.open(port);
    await login(d, { starttls: true });
    // Replies name the SMTP command, never an internal field name.
    expect(await d.cmd('MAIL FROM:<someone@other.test>')).toBe('550 5.7.1 MAIL FROM: sender domain other.test is not allowed for booking-dev');
    expect(await d.cmd('MAIL FROM:<someone@unknown.test>')).toMatch(/^550 5\.7\.1 MAIL FROM: /);
    expect(await d.cmd('MAIL FROM:<>')).toMatch(/^553 5\.1\.3 MAIL FROM: the null sender/);
    d.close();
  });

  it('refuses a From header of another domain with 550 5.7.1 after DATA', async () => {
    const err = await transport(port)
      .sendMail({ envelope: { from: 'noreply@example.test', to: ['alice@dest.test'] }, raw: message('spoof@other.test', 'alice@dest.test') })
      .catch((e: unknown) => e);
    expect((err as { response: string }).response).toMatch(/^550 5\.7\.1 From header: sender domain other\.test is not allowed/);
  });

  it('refuses the recipient beyond maxRecipients with 452 4.5.3, a bad address with 5.1.3', async () => {
    const d = await Dialog.open(port);
    await login(d);
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    for (const r of ['a', 'b', 'c']) expect(await d.cmd(`RCPT TO:<${r}@dest.test>`)).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<a@dest.test>')).toMatch(/^250 /); // a repeat is not one more
    expect(await d.cmd('RCPT TO:<d@dest.test>')).toMatch(/^452 4\.5\.3 /);
    expect(await d.cmd('RCPT TO:<user@nodot>')).toMatch(/^553 5\.1\.3 RCPT TO: /);
    expect(await d.cmd('RCPT TO:<not an address>')).toMatch(/^501 5\.1\.3 /);
    d.close();
  });

  // The replies docs/smtp.md lists (until 1 Dec 2026 it gave `553 5.1.3 / 501 5.1.3` for MAIL FROM as well).
  it('answers a malformed address 501 (smtp-server cannot parse it) or 553 5.1.3 (Kurir refuses it), naming the command', async () => {
    const d = await Dialog.open(port);
    await login(d);
    expect(await d.cmd('MAIL FROM:<bad>')).toMatch(/^501 5\.1\.7 /);
    expect(await d.cmd('MAIL FROM:<>')).toMatch(/^553 5\.1\.3 MAIL FROM: the null sender/);
    expect(await d.cmd('MAIL FROM:<noreply@[127.0.0.1]>')).toMatch(/^553 5\.1\.3 MAIL FROM: /);
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<bad>')).toMatch(/^501 5\.1\.3 /);
    expect(await d.cmd('RCPT TO:<a@[127.0.0.1]>')).toMatch(/^553 5\.1\.3 RCPT TO: /);
    expect(await d.cmd(`RCPT TO:<${'a'.repeat(65)}@dest.test>`)).toMatch(/^553 5\.1\.3 RCPT TO: .*invalid local part/);
    d.close();
  });

  it('refuses a declared and an actual oversized message with 552 5.3.4', async () => {
    const d = await Dialog.open(port);
    await login(d);
    expect(await d.cmd(`MAIL FROM:<noreply@example.test> SIZE=${MAX_BYTES + 1}`)).toMatch(/^552 5\.3\.4 /);
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<big@dest.test>')).toMatch(/^250 /);
    expect(await d.cmd('DATA')).toMatch(/^354 /);
    const big = `${'x'.repeat(76)}\r\n`.repeat(Math.ceil((MAX_BYTES * 2) / 78));
    expect(await d.cmd(`${message('noreply@example.test', 'big@dest.test', '', big)}.`)).toMatch(/^552 5\.3\.4 /);
    // The session goes on: the next message is accepted.
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<small@dest.test>')).toMatch(/^250 /);
    expect(await d.cmd('DATA')).toMatch(/^354 /);
    expect(await d.cmd(`${message('noreply@example.test', 'small@dest.test')}.`)).toMatch(/^250 2\.0\.0 Ok: queued as /);
    d.close();
  });

  it('refuses a suppressed recipient at RCPT with 550 5.1.1 and the reason', async () => {
    await main.gateway.suppressions.add({ address: 'gone@dest.test', reason: 'hard-bounce', source: 'test', at: Date.now() });
    const d = await Dialog.open(port);
    await login(d);
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<Gone@dest.test>')).toMatch(/^550 5\.1\.1 .*gone@dest\.test.*hard-bounce/);
    d.close();
  });

  it('takes pipelined MAIL, RCPT and DATA (RFC 2920), answering each in order, also when one is refused', async () => {
    await main.gateway.suppressions.add({ address: 'piped-gone@dest.test', reason: 'hard-bounce', source: 'test', at: Date.now() });
    const d = await Dialog.open(port);
    const ehlo = await login(d, { starttls: true });
    expect(ehlo).toMatch(/^250-PIPELINING$/m);
    const before = await storedMessages(main.gateway);
    const pipelined = async (from: string, to: string): Promise<string[]> => {
      d.write(`MAIL FROM:<${from}>\r\nRCPT TO:<${to}>\r\nDATA\r\n`);
      return [await d.reply(), await d.reply(), await d.reply()];
    };
    // Accepted: 250, 250, 354, then the message and its dot.
    expect(await pipelined('noreply@example.test', 'piped1@dest.test')).toEqual([
      expect.stringMatching(/^250 /),
      expect.stringMatching(/^250 /),
      expect.stringMatching(/^354 /),
    ]);
    expect(await d.cmd(`${message('noreply@example.test', 'piped1@dest.test')}.`)).toMatch(/^250 2\.0\.0 Ok: queued as /);
    // A suppressed recipient: 550 at RCPT, so DATA has no recipient; the client sends no message and resets.
    const refused = await pipelined('noreply@example.test', 'piped-gone@dest.test');
    expect(refused[0]).toMatch(/^250 /);
    expect(refused[1]).toMatch(/^550 5\.1\.1 /);
    expect(refused[2]).toMatch(/^5\d\d /);
    expect(await d.cmd('RSET')).toMatch(/^250 /);
    // A sender domain the account may not use: 550 at MAIL, and RCPT and DATA refused after it.
    const [mail, rcpt, data] = await pipelined('someone@other.test', 'piped2@dest.test');
    expect(mail).toMatch(/^550 5\.7\.1 /);
    expect(rcpt).toMatch(/^5\d\d /);
    expect(data).toMatch(/^5\d\d /);
    // The session is in step: the next pipelined message goes through.
    expect((await pipelined('noreply@example.test', 'piped3@dest.test'))[2]).toMatch(/^354 /);
    // The end of data with QUIT pipelined behind it: the message's answer comes first, then the 221.
    d.write(`${message('noreply@example.test', 'piped3@dest.test')}.\r\nQUIT\r\n`);
    expect(await d.reply()).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(await d.reply()).toMatch(/^221 /);
    d.close();
    expect((await storedMessages(main.gateway)) - before).toBe(2);
  });

  it('refuses an unknown X-Kurir-Priority with 501 5.5.4', async () => {
    const err = await transport(port)
      .sendMail({
        envelope: { from: 'noreply@example.test', to: ['alice@dest.test'] },
        raw: message('noreply@example.test', 'alice@dest.test', 'X-Kurir-Priority: urgent\r\n'),
      })
      .catch((e: unknown) => e);
    expect((err as { response: string }).response).toMatch(/^501 5\.5\.4 X-Kurir-Priority/);
  });
});

describe('SMTP intake: strict gateway (no plaintext AUTH, no implicit TLS), then Redis down', () => {
  let strict: Started;
  beforeAll(async () => {
    strict = await start('strict', { allowInsecureAuthOnLoopback: false, tlsPort: null });
  });
  afterAll(() => stop(strict));

  it('refuses plaintext AUTH with 538 5.7.11, accepts it after STARTTLS', async () => {
    expect(strict.gateway.ports.smtpTls).toBeUndefined();
    const d = await Dialog.open(strict.gateway.ports.smtp!);
    await d.cmd('EHLO client.test');
    expect(await d.cmd(`AUTH PLAIN ${PLAIN_TOKEN}`)).toMatch(/^538 5\.7\.11 /);
    expect(await d.cmd('AUTH LOGIN')).toMatch(/^538 5\.7\.11 /);
    await d.starttls();
    await d.cmd('EHLO client.test');
    expect(await d.cmd(`AUTH PLAIN ${PLAIN_TOKEN}`)).toMatch(/^235 /);
    d.close();
  });

  it('answers 451 4.3.0 when Redis is down (at DATA and at RCPT), stores nothing and keeps serving', async () => {
    const d = await Dialog.open(strict.gateway.ports.smtp!);
    await login(d, { starttls: true });
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<alice@dest.test>')).toMatch(/^250 /);
    strict.gateway.redis.disconnect(); // Redis goes away between RCPT and the end of DATA
    expect(await d.cmd('DATA')).toMatch(/^354 /);
    expect(await d.cmd(`${message('noreply@example.test', 'alice@dest.test')}.`)).toMatch(/^451 4\.3\.0 /);
    d.close();
    const t = transport(strict.gateway.ports.smtp!);
    const mail = { from: 'noreply@example.test', to: 'alice@dest.test', text: 'hi' };
    const err = await t.sendMail(mail).catch((e: unknown) => e);
    expect(err).toMatchObject({ responseCode: 451 });
    expect((err as { response: string }).response).toMatch(/^451 4\.3\.0 /);
    // The listener is still there and answers the same way.
    expect(await t.sendMail(mail).catch((e: unknown) => (e as { responseCode: number }).responseCode)).toBe(451);
    expect(await storedMessages(strict.gateway)).toBe(0);
  });
});

describe('SMTP replies', () => {
  it('maps registry errors, infrastructure failures and unexpected errors', () => {
    expect(smtpError(new KurirError('SENDER_NOT_ALLOWED'))).toMatchObject({
      responseCode: 550,
      message: '5.7.1 Sender domain not allowed for this credential',
    });
    expect(smtpError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }))).toMatchObject({
      responseCode: 451,
      message: expect.stringMatching(/^4\.3\.0 /),
    });
    expect(smtpError(new TypeError('x is undefined'))).toMatchObject({ responseCode: 451, message: '4.3.0 Internal error' });
    expect(smtpError(new KurirError('BAD_ADDRESS', 'bad\r\n250 injected')).message).toBe('5.1.3 bad 250 injected');
  });
});

describe('SMTP TLS material', () => {
  it('generates a self-signed certificate once (key 0600) and reuses it; names the key of an unreadable file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kurir-tls-'));
    try {
      const config = testConfig(dir, { hostname: 'mail.example.test' });
      const first = await loadOrCreateTls(config, logger);
      expect(first.cert).toContain('BEGIN CERTIFICATE');
      expect(statSync(join(dir, 'tls/smtp.key')).mode & 0o777).toBe(0o600);
      expect(await loadOrCreateTls(config, logger)).toEqual(first);
      const missing = testConfig(dir, { smtp: { tls: { keyFile: join(dir, 'nope.key'), certFile: join(dir, 'tls/smtp.crt') } } });
      await expect(loadOrCreateTls(missing, logger)).rejects.toThrow(/smtp\.tls\.keyFile = ".*nope\.key": cannot read the file \(file not found\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an unreadable TLS key stops the start before the worker runs (nothing of the worker written to Redis)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kurir-tls-'));
    const config = testConfig(dir, { roles: ['worker', 'intake'], smtp: { tls: { keyFile: join(dir, 'nope.key'), certFile: join(dir, 'nope.crt') } } });
    const redis = new Redis('redis://127.0.0.1:6379');
    const verpSecret = createKeys(config.redis.prefix).verpSecret();
    try {
      await expect(startGateway(config, logger)).rejects.toThrow(/smtp\.tls\.keyFile = ".*nope\.key": cannot read the file \(file not found\)/);
      // The worker's first act is to read or create the VERP secret; before this change it ran before the TLS read.
      expect(await redis.exists(verpSecret)).toBe(0);
      // The same config with the worker alone starts, and creates it: the assertion above can fail.
      const workerOnly = await startGateway({ ...config, roles: ['worker'] }, logger);
      await workerOnly.close();
      expect(await redis.exists(verpSecret)).toBe(1);
    } finally {
      await redis.quit();
      await dropPrefix(config.redis.prefix);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Last, as it closes the main gateway (afterAll closes it again: close is safe twice).
describe('SMTP intake: close', () => {
  it('lets an in-flight message finish, ends idle sessions with 421 4.3.2, takes no new connections', async () => {
    const idle = await Dialog.open(port);
    await idle.cmd('EHLO client.test');
    const busy = await Dialog.open(port);
    await login(busy);
    expect(await busy.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await busy.cmd('RCPT TO:<late@dest.test>')).toMatch(/^250 /);
    expect(await busy.cmd('DATA')).toMatch(/^354 /);
    const started = Date.now();
    const closed = main.gateway.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(await busy.cmd(`${message('noreply@example.test', 'late@dest.test')}.`)).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(await idle.reply()).toMatch(/^421 4\.3\.2 /);
    await closed;
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(Dialog.open(port)).rejects.toThrow();
    idle.close();
    busy.close();
  });
});
