/**
 * What the gateway writes to its log when it refuses: a failed AUTH (SMTP and HTTP) and a refused
 * message (SMTP and HTTP) are logged with their code and reply, and the log holds no password, no API
 * key, no recipient mailbox and no message content. A real gateway, its real pino logger writing into
 * memory instead of stdout.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/logger.js';
import { SmtpDialog } from '../helpers/smtp-dialog.js';
import { API_KEY, SMTP_USER, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

const WRONG_PASSWORD = 'wrong-pa55word-not-logged';
const WRONG_KEY = 'wrong-api-key-not-logged-0001';
const SUPPRESSED = 'gone-mailbox@example.org';
const BODY_MARKER = 'body-marker-not-logged';

const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});
let t: TestGateway;

gatewayForFile(
  {
    overrides: { roles: ['intake', 'api'], authLimits: { delayStepMs: 0 } },
    logger: createLogger({ level: 'info', destination: sink }),
  },
  async (g) => {
    t = g;
    await t.gateway.suppressions.add({ address: SUPPRESSED, reason: 'hard bounce', source: 'test', at: Date.now() });
  },
);

const text = (): string => lines.map((l) => JSON.stringify(l)).join('\n');

describe('refusals in the log', () => {
  it('logs a failed SMTP AUTH and a refused recipient with code and reply, without the password or the mailbox', async () => {
    const d = await SmtpDialog.open(t.gateway.ports.smtp!);
    expect(await d.auth(SMTP_USER.user, WRONG_PASSWORD)).toMatch(/^535 5\.7\.8 /);
    expect(await d.cmd(`AUTH PLAIN ${Buffer.from(`\0${SMTP_USER.user}\0${SMTP_USER.pass}`).toString('base64')}`)).toMatch(/^235 /);
    expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250 /);
    expect(await d.cmd(`RCPT TO:<${SUPPRESSED}>`)).toMatch(/^550 5\.1\.1 /);
    d.close();

    const auth = lines.find((l) => l.msg === 'smtp: refused' && l.code === 'AUTH_FAILED');
    expect(auth).toMatchObject({ level: 30, stage: 'auth', remote: '127.0.0.1' });
    expect(auth?.reply).toMatch(/^535 5\.7\.8 /);
    const rcpt = lines.find((l) => l.msg === 'smtp: refused' && l.code === 'SUPPRESSED');
    expect(rcpt).toMatchObject({ level: 30, stage: 'RCPT', account: 'booking-dev' });
    expect(rcpt?.reply).toMatch(/^550 5\.1\.1 …@example\.org is suppressed/);
    // The throttle's own line names the user and the reason, not the password.
    expect(lines.find((l) => l.msg === 'auth: failed' && l.interface === 'smtp')).toMatchObject({ user: SMTP_USER.user, reason: 'bad-password' });
  });

  it('logs a wrong API key and a refused submission with their codes, without the key, the mailbox or the body', async () => {
    const post = (key: string, body: unknown) =>
      fetch(`${t.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(body),
      });
    const message = { from: 'noreply@example.test', to: [SUPPRESSED], subject: 'x', text: BODY_MARKER };
    expect((await post(WRONG_KEY, message)).status).toBe(401);
    expect((await post(API_KEY, message)).status).toBe(422);

    const failed = lines.find((l) => l.code === 'AUTH_FAILED' && l.status === 401);
    expect(failed?.msg).toBe('Unknown API key');
    const refused = lines.find((l) => l.code === 'SUPPRESSED' && l.status === 422);
    expect(refused?.msg).toMatch(/^…@example\.org is suppressed/);
    expect(lines.find((l) => l.msg === 'auth: failed' && l.interface === 'http')).toMatchObject({ reason: 'unknown-key' });
  });

  it('holds no secret, mailbox or message content anywhere', () => {
    const all = text();
    expect(lines.length).toBeGreaterThan(5);
    for (const secret of [WRONG_PASSWORD, SMTP_USER.pass, WRONG_KEY, API_KEY, SUPPRESSED, BODY_MARKER]) expect(all).not.toContain(secret);
  });
});
