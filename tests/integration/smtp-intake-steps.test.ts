/**
 * The work SMTP intake saves per message, with real sockets (STARTTLS), real Redis and a clock the test moves
 * forward: DATA reads the suppression list again only when the RCPT TO check is older than
 * SUPPRESSION_CHECK_FRESH_MS; replies ready in one event-loop turn leave in one TLS record, and a pipelined group's
 * MAIL reply waits for its RCPT and DATA replies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { SUPPRESSION_CHECK_FRESH_MS } from '../../src/intake/submission.js';
import { createLogger } from '../../src/lib/logger.js';
import { plainToken, SmtpDialog } from '../helpers/smtp-dialog.js';
import { dropPrefix, SMTP_USER, testConfig } from '../helpers/test-gateway.js';

let gateway: Gateway;
let dir: string;
let skew = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kurir-smtp-recheck-'));
  const config = testConfig(dir, {
    roles: ['intake'],
    redis: { prefix: `kurir-test-smtp-recheck-${Math.random().toString(36).slice(2, 10)}` },
    smtp: { port: 0 },
    domains: [{ name: 'example.test', dkim: [{ selector: 'kurir1', algorithm: 'rsa', privateKeyFile: join(dir, 'dkim/rsa.pem'), generate: true }] }],
  });
  gateway = await startGateway(config, createLogger({ level: 'silent' }), { clock: { now: () => Date.now() + skew } });
});

afterAll(async () => {
  await gateway?.close();
  if (gateway) await dropPrefix(gateway.config.redis.prefix);
  rmSync(dir, { recursive: true, force: true });
});

describe('SMTP replies of one turn', () => {
  it('sends the replies of a pipelined MAIL, RCPT and DATA in one TLS record (MAIL and RCPT held for the 354)', async () => {
    const d = await SmtpDialog.open(gateway.ports.smtp!);
    await d.cmd('EHLO client.test');
    await d.starttls();
    await d.cmd('EHLO client.test');
    expect(await d.cmd(`AUTH PLAIN ${plainToken(SMTP_USER.user, SMTP_USER.pass)}`)).toMatch(/^235 /);
    // Each TLS record the client decrypts is one 'data' event.
    const records: string[] = [];
    d.onData((chunk) => records.push(chunk.toString('latin1')));
    d.write('MAIL FROM:<noreply@example.test>\r\nRCPT TO:<together@dest.test>\r\nDATA\r\n');
    expect([await d.reply(), await d.reply(), await d.reply()]).toEqual([
      expect.stringMatching(/^250 /),
      expect.stringMatching(/^250 /),
      expect.stringMatching(/^354 /),
    ]);
    expect(records).toEqual([expect.stringMatching(/^250 [^\r]*\r\n250 [^\r]*\r\n354 [^\r]*\r\n$/)]);
    expect(await d.cmd(body('together@dest.test'))).toMatch(/^250 2\.0\.0 Ok: queued as /);
    d.close();
  });
});

/** A STARTTLS + AUTH session with MAIL and RCPT for `to` accepted, waiting for DATA. */
async function upToData(to: string): Promise<SmtpDialog> {
  const d = await SmtpDialog.open(gateway.ports.smtp!);
  await d.cmd('EHLO client.test');
  await d.starttls();
  await d.cmd('EHLO client.test');
  expect(await d.cmd(`AUTH PLAIN ${plainToken(SMTP_USER.user, SMTP_USER.pass)}`)).toMatch(/^235 /);
  expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
  expect(await d.cmd(`RCPT TO:<${to}>`)).toMatch(/^250 /);
  expect(await d.cmd('DATA')).toMatch(/^354 /);
  return d;
}

const body = (to: string): string => `From: noreply@example.test\r\nTo: ${to}\r\nSubject: Your code\r\n\r\nCode: 123456\r\n.`;

describe('SMTP DATA and the suppression check of RCPT TO', () => {
  it('does not read the suppression list again when the RCPT check is fresh', async () => {
    const check = vi.spyOn(gateway.suppressions, 'check');
    try {
      const d = await upToData('fresh@dest.test');
      expect(check).toHaveBeenCalledTimes(1);
      expect(await d.cmd(body('fresh@dest.test'))).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(check).toHaveBeenCalledTimes(1);
      d.close();
    } finally {
      check.mockRestore();
    }
  });

  it('checks again at DATA when RCPT was longer ago, refusing a recipient suppressed meanwhile (550 5.1.1)', async () => {
    const d = await upToData('late@dest.test');
    await gateway.suppressions.add({ address: 'late@dest.test', reason: 'hard-bounce', source: 'test', at: Date.now() });
    skew += SUPPRESSION_CHECK_FRESH_MS + 1000;
    expect(await d.cmd(body('late@dest.test'))).toMatch(/^550 5\.1\.1 .*late@dest\.test.*hard-bounce/);
    // A new transaction on the same session is checked at its own RCPT.
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<late@dest.test>')).toMatch(/^550 5\.1\.1 /);
    d.close();
  });
});
