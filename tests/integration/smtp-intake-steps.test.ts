/**
 * The work SMTP intake saves per message, with real sockets (STARTTLS), real Redis and a clock the test moves
 * forward: DATA reads the suppression list again only when the RCPT TO check is older than
 * SUPPRESSION_CHECK_FRESH_MS, and a recipient suppressed meanwhile is left out and recorded with the message; replies ready in one event-loop turn leave in one TLS record, and a pipelined group's
 * MAIL reply waits for its RCPT and DATA replies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { SUPPRESSION_CHECK_FRESH_MS } from '../../src/intake/submission.js';
import { createLogger } from '../../src/lib/logger.js';
import { createKeys } from '../../src/store/keys.js';
import { plainToken, SmtpDialog } from '../helpers/smtp-dialog.js';
import { adminRequest, dropPrefix, SMTP_USER, testConfig } from '../helpers/test-gateway.js';

let gateway: Gateway;
let dir: string;
let skew = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kurir-smtp-recheck-'));
  const config = testConfig(dir, {
    roles: ['intake', 'api'],
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

/** A STARTTLS + AUTH session with MAIL and RCPT for each of `to` accepted, waiting for DATA. */
async function upToData(...to: string[]): Promise<SmtpDialog> {
  const d = await SmtpDialog.open(gateway.ports.smtp!);
  await d.cmd('EHLO client.test');
  await d.starttls();
  await d.cmd('EHLO client.test');
  expect(await d.cmd(`AUTH PLAIN ${plainToken(SMTP_USER.user, SMTP_USER.pass)}`)).toMatch(/^235 /);
  await d.startMessage('noreply@example.test', to);
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

  it('checks again at DATA when RCPT was longer ago, refusing a message whose only recipient was suppressed meanwhile (550 5.1.1)', async () => {
    const d = await upToData('late@dest.test');
    await gateway.suppressions.add({ address: 'late@dest.test', reason: 'hard-bounce', source: 'test', at: Date.now() });
    skew += SUPPRESSION_CHECK_FRESH_MS + 1000;
    expect(await d.cmd(body('late@dest.test'))).toMatch(/^550 5\.1\.1 .*late@dest\.test.*hard-bounce/);
    // A new transaction on the same session is checked at its own RCPT.
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd('RCPT TO:<late@dest.test>')).toMatch(/^550 5\.1\.1 /);
    d.close();
  });

  // Found 1 Dec 2026: one recipient suppressed meanwhile made the whole message 550 5.1.1, and the client took the
  // recipients that were fine as refused too. DATA has one reply, so the suppressed one is left out and recorded.
  it('leaves out recipients suppressed meanwhile and queues the message for the others, recording them on the timeline', async () => {
    const d = await upToData('ok1@dest.test', 'Gone@Dest.test', 'ok2@other-dest.test', 'gone2@dest.test');
    await gateway.suppressions.add({ address: 'gone@dest.test', reason: 'hard-bounce', source: 'dsn', at: Date.now() });
    await gateway.suppressions.add({ address: 'gone2@dest.test', reason: 'complaint', source: 'arf', at: Date.now() });
    skew += SUPPRESSION_CHECK_FRESH_MS + 1000;
    const reply = await d.cmd(body('ok1@dest.test'));
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    d.close();
    const view = await gateway.messages.get(reply.split(' ').pop()!);
    expect(view?.record.recipients).toEqual(['ok1@dest.test', 'ok2@other-dest.test']);
    expect(view?.events.filter((e) => e.type === 'suppressed')).toEqual([
      { type: 'suppressed', at: expect.any(Number), recipients: ['Gone@dest.test'], reason: 'hard-bounce', source: 'intake' },
      { type: 'suppressed', at: expect.any(Number), recipients: ['gone2@dest.test'], reason: 'complaint', source: 'intake' },
    ]);
  });

  // Found 1 Dec 2026: the left-out recipient's `suppressed` event was a second write after the message was accepted
  // (lost, only logged, when that write failed), and a search by its address did not find the message.
  it('records a left-out recipient in the write that stores the message: no later write can lose it, and a search by its address finds it', async () => {
    const update = vi.spyOn(gateway.messages, 'update').mockRejectedValue(new Error('Connection is closed.'));
    let id: string;
    try {
      const d = await upToData('stays@dest.test', 'Left@elsewhere.test');
      await gateway.suppressions.add({ address: 'left@elsewhere.test', reason: 'hard-bounce', source: 'dsn', at: Date.now() });
      skew += SUPPRESSION_CHECK_FRESH_MS + 1000;
      const reply = await d.cmd(body('stays@dest.test'));
      expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
      d.close();
      id = reply.split(' ').pop()!;
    } finally {
      update.mockRestore();
    }
    const view = await gateway.messages.get(id);
    expect(view?.events.map((e) => e.type)).toEqual(['queued', 'suppressed']);
    expect(view?.events[1]).toEqual({
      type: 'suppressed',
      at: expect.any(Number),
      recipients: ['Left@elsewhere.test'],
      reason: 'hard-bounce',
      source: 'intake',
    });
    // Never delivered: not a recipient, no state, no delivery job for its domain.
    expect(view?.record).toMatchObject({ recipients: ['stays@dest.test'], leftOut: [{ address: 'Left@elsewhere.test', reason: 'hard-bounce' }] });
    expect(Object.keys(view?.recipients ?? {})).toEqual(['stays@dest.test']);
    const jobs = await gateway.redis.hkeys(createKeys(gateway.config.redis.prefix).deliveryQueue().jobs);
    expect(jobs.filter((j) => j.startsWith(id))).toEqual([`${id}_dest.test`]);

    const found = await adminRequest(`http://127.0.0.1:${gateway.ports.http}`, 'GET', '/v1/messages?to=left%40elsewhere.test');
    expect(found.status).toBe(200);
    expect(found.body.items).toEqual([
      expect.objectContaining({
        id,
        to: ['stays@dest.test'],
        recipient: { status: 'suppressed', reason: 'hard-bounce', attempts: 0, updatedAt: expect.any(String), nextAttemptAt: null },
      }),
    ]);
    // The message view shows it apart from `to` (until 1 Dec 2026 only its timeline event did).
    const shown = await adminRequest(`http://127.0.0.1:${gateway.ports.http}`, 'GET', `/v1/messages/${id}`);
    expect(shown.body).toMatchObject({ to: ['stays@dest.test'], leftOut: [{ address: 'Left@elsewhere.test', reason: 'hard-bounce' }] });
    // The delivered recipient's search is as before.
    const stays = await adminRequest(`http://127.0.0.1:${gateway.ports.http}`, 'GET', '/v1/messages?to=stays%40dest.test');
    expect(stays.body.items[0]).toMatchObject({ id, recipient: { status: 'queued' } });
  });

  it('still refuses the message (550 5.1.1) when every recipient was suppressed meanwhile', async () => {
    const d = await upToData('all1@dest.test', 'all2@dest.test');
    await gateway.suppressions.add({ address: 'all1@dest.test', reason: 'hard-bounce', source: 'dsn', at: Date.now() });
    await gateway.suppressions.add({ address: 'all2@dest.test', reason: 'hard-bounce', source: 'dsn', at: Date.now() });
    skew += SUPPRESSION_CHECK_FRESH_MS + 1000;
    expect(await d.cmd(body('all1@dest.test'))).toMatch(/^550 5\.1\.1 .*all1@dest\.test.*hard-bounce/);
    d.close();
  });
});
