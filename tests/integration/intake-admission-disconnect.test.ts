/**
 * Admission bytes of clients that go away at awkward moments are freed (found 1 Dec 2026: an HTTP client that hung
 * up while its authentication waited for Redis kept its reservation for good, because the 'close' the admission
 * listened for had fired already; four such requests held the 40 MiB bound and every later submission, HTTP and
 * SMTP, was refused until restart). The gateway has its own redis-server here, since the tests pause it.
 */
import { connect } from 'node:net';
import nodemailer from 'nodemailer';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { SmtpDialog } from '../helpers/smtp-dialog.js';
import { API_KEY, SMTP_USER, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

const MiB = 1024 * 1024;
let own: PrivateRedis;
let t: TestGateway;
let admin: Redis;

const held = async (): Promise<number> => (await t.gateway.metrics.intakeInflightBytes.get()).values[0]?.value ?? 0;

/** Writes `data` on a new connection to the HTTP port and hangs up after `afterMs`. */
function sendAndHangUp(data: string, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(t.gateway.ports.http!, '127.0.0.1', () => {
      s.write(data);
      setTimeout(() => {
        s.destroy();
        resolve();
      }, afterMs);
    });
    s.on('error', () => undefined);
  });
}

/** The head of a JSON submission declaring `bytes` of body. */
const head = (bytes: number): string =>
  `POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${bytes}\r\n\r\n`;

/** After a test: nothing held, and a small message goes through on both transports. */
async function roomIsFree(): Promise<void> {
  await until(async () => (await held()) === 0, 5000, 'the admission bytes to be released');
  expect((await t.submit({ from: 'noreply@example.test', to: ['after@dest.test'], subject: 'code', text: 'Code 1' })).status).toBe(202);
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.smtp, secure: false, ignoreTLS: true, auth: SMTP_USER });
  const sent = await transport.sendMail({ from: 'noreply@example.test', to: 'after@dest.test', subject: 'x', text: 'y' }).finally(() => transport.close());
  expect(sent.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
  expect(await held()).toBe(0);
}

beforeAll(async () => {
  own = await startPrivateRedis();
  // clearCacheMs 0: every authentication asks Redis, so pausing Redis holds it.
  t = await startTestGateway({
    overrides: { roles: ['intake', 'api'], redis: { url: own.url }, limits: { enabled: false }, authLimits: { clearCacheMs: 0 } },
  });
  admin = new Redis(own.url);
}, 60_000);
afterAll(async () => {
  await admin?.quit();
  await t?.close();
  await own?.destroy();
});

it('frees the bytes of HTTP clients that hang up while authentication waits for Redis, and of an SMTP client that leaves while its message is written', async () => {
  const d = await SmtpDialog.open(t.gateway.ports.smtp!);
  expect(await d.auth(SMTP_USER.user, SMTP_USER.pass)).toMatch(/^235 /);
  await d.startMessage('noreply@example.test', ['left@dest.test']);
  await admin.call('CLIENT', 'PAUSE', '1500', 'ALL'); // Redis slow for 1.5 s (a fork, a slow command, a failover)
  // The SMTP client sends its whole message, then leaves while the durable write waits for Redis.
  d.write(`From: noreply@example.test\r\nSubject: left\r\n\r\n${'z'.repeat(76).concat('\r\n').repeat(3000)}.\r\n`);
  await until(async () => (await held()) >= 3000 * 78, 5000, 'the SMTP message to be held');
  d.close();
  await Promise.all([0, 1, 2, 3].map(() => sendAndHangUp(`${head(10 * MiB)}{"from":`, 300)));
  await new Promise((r) => setTimeout(r, 1500)); // Redis answers again
  await roomIsFree();
}, 30_000);

it('frees the bytes of a pipelined HTTP submission waiting behind an earlier one when the client hangs up', async () => {
  // Writes wait, reads do not: the first submission is authenticated and waits for its durable write; the second,
  // pipelined behind it, is authenticated and admitted, and its answer is queued behind the first's.
  await admin.call('CLIENT', 'PAUSE', '1500', 'WRITE');
  const first = JSON.stringify({ from: 'noreply@example.test', to: ['first@dest.test'], subject: 'first', text: 'x' });
  await sendAndHangUp(`${head(Buffer.byteLength(first))}${first}${head(10 * MiB)}{"from":`, 500);
  expect(await held()).toBeGreaterThanOrEqual(10 * MiB); // the second request is admitted while the first waits
  await new Promise((r) => setTimeout(r, 1200));
  await roomIsFree();
}, 30_000);
