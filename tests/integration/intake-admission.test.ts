/**
 * Admission control and clean failure answers at intake: a bound on message bytes in flight across HTTP
 * and SMTP (503 BUSY / 451 4.3.2 with Retry-After, nothing stored; the bytes of a client that vanishes mid-message,
 * HTTP or SMTP after STARTTLS, freed), large concurrent submissions that
 * never answer 500 and never leave a stored message without its job, and a Redis that stops answering
 * (commands time out) answered 503 with nothing left behind.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { Redis } from 'ioredis';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { SmtpDialog } from '../helpers/smtp-dialog.js';
import { API_KEY, SMTP_USER, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const MiB = 1024 * 1024;
let t: TestGateway;
let redis: Redis;

async function inflight(): Promise<number> {
  return (await t.gateway.metrics.intakeInflightBytes.get()).values[0]?.value ?? 0;
}

/** Opens a raw submission that declares `bytes` and sends almost none of them: it holds its reservation. */
function holdSubmission(bytes: number): Promise<Socket> {
  const port = Number(new URL(t.url).port);
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write(
        `POST /v1/messages?to=held@dest.test HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${API_KEY}\r\n` +
          `Content-Type: message/rfc822\r\nContent-Length: ${bytes}\r\n\r\nFrom: a@example.test\r\n`,
      );
      resolve(s);
    });
    s.on('error', reject);
  });
}

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function smtpSend(size: number) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.smtp, secure: false, ignoreTLS: true, auth: SMTP_USER });
  return transport.sendMail({ from: 'noreply@example.test', to: 'smtp@dest.test', subject: 'x', text: 'y'.repeat(size) }).finally(() => transport.close());
}

beforeAll(async () => {
  t = await startTestGateway({
    overrides: { roles: ['intake', 'api'], intake: { maxBytesInFlight: MiB, busyRetryAfterSeconds: 7 }, limits: { enabled: false } },
  });
  redis = new Redis('redis://127.0.0.1:6379');
});
afterAll(async () => {
  await t?.close();
  await redis?.quit();
});

it('refuses submissions over the bytes-in-flight bound on both transports, lets small ones through, and frees the room afterwards', async () => {
  const held = await holdSubmission(900_000);
  await until(async () => (await inflight()) >= 900_000);

  const big = await fetch(`${t.url}/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from: 'noreply@example.test', to: ['big@dest.test'], subject: 'big', text: 'z'.repeat(300_000) }),
  });
  expect(big.status).toBe(503);
  expect(big.headers.get('retry-after')).toBe('7');
  expect((await big.json()).error.code).toBe('BUSY');

  const small = await t.submit({ from: 'noreply@example.test', to: ['small@dest.test'], subject: 'code', text: 'Code 1234' });
  expect(small.status).toBe(202);

  await expect(smtpSend(300_000)).rejects.toMatchObject({ responseCode: 451, response: expect.stringContaining('4.3.2') });

  held.destroy();
  await until(async () => (await inflight()) === 0);
  const again = await smtpSend(300_000);
  expect(again.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
  expect(await inflight()).toBe(0);
  const refused = await t.gateway.metrics.intakeRefused.get();
  const busy = refused.values
    .filter((v) => v.labels.reason === 'BUSY')
    .map((v) => `${v.labels.interface}=${v.value}`)
    .sort();
  expect(busy).toEqual(['http=1', 'smtp=1']);
});

it('frees the bytes of an SMTP message whose client vanishes in the middle of DATA, after STARTTLS', async () => {
  const d = await SmtpDialog.open(t.gateway.ports.smtp!);
  expect(await d.cmd('EHLO client.test')).toMatch(/^250/);
  await d.starttls();
  expect(await d.auth(SMTP_USER.user, SMTP_USER.pass)).toMatch(/^235 /);
  expect(await d.cmd('MAIL FROM:<noreply@example.test>')).toMatch(/^250/);
  expect(await d.cmd('RCPT TO:<gone@dest.test>')).toMatch(/^250/);
  expect(await d.cmd('DATA')).toMatch(/^354/);
  d.write(`From: noreply@example.test\r\nSubject: half\r\n\r\n${'z'.repeat(76).concat('\r\n').repeat(5000)}`);
  await until(async () => (await inflight()) >= 300_000);
  d.close(); // no final dot: the client is gone with the message half sent
  await until(async () => (await inflight()) === 0);
  // The room is there for the next message, and nothing of the half message was stored.
  expect((await smtpSend(300_000)).response).toMatch(/^250 2\.0\.0 Ok: queued as /);
  expect(await inflight()).toBe(0);
  expect(await redis.keys(`${t.config.redis.prefix}:rcpt-msgs:gone@dest.test`)).toEqual([]);
});

it('answers a burst of large concurrent submissions with 202 or 503 only, and every 202 is stored with its job', async () => {
  const html = '<p>Your appointment details are below; please keep this message.</p>\n'.repeat(Math.floor((0.45 * MiB) / 71));
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      fetch(`${t.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ from: 'noreply@example.test', to: [`burst${i}@dest.test`], subject: `big ${i}`, text: 'see html', html }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { id?: string } })),
    ),
  );
  const statuses = results.map((r) => r.status);
  expect(statuses.filter((s) => s !== 202 && s !== 503)).toEqual([]);
  expect(statuses).toContain(202);
  expect(statuses).toContain(503);
  const prefix = t.config.redis.prefix;
  for (const r of results.filter((x) => x.status === 202)) {
    expect(await redis.exists(`${prefix}:msg:${r.body.id}`)).toBe(1);
    expect(await redis.zscore(`${prefix}:live`, r.body.id!)).not.toBeNull();
  }
  // Nothing stored for the refused ones: the live index holds exactly the accepted messages of this burst and the
  // three the tests before accepted (none of the half-sent SMTP message).
  const live = await redis.zrange(`${prefix}:live`, '0', '-1');
  const burstIds = new Set(results.filter((x) => x.status === 202).map((x) => x.body.id));
  expect(live.filter((id) => burstIds.has(id)).length).toBe(burstIds.size);
  expect(live.length).toBe(burstIds.size + 3);
});

it('answers 503 (never 500) when Redis stops answering mid-request, and leaves nothing stored', async () => {
  const own: PrivateRedis = await startPrivateRedis({ extraArgs: ['--enable-debug-command', 'yes'] });
  const g = await startTestGateway({ overrides: { roles: ['intake', 'api'], redis: { url: own.url }, limits: { enabled: false } } });
  const admin = new Redis(own.url);
  try {
    const sleeping = admin.call('DEBUG', 'SLEEP', '6').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const res = await g.submit({ from: 'noreply@example.test', to: ['stall@dest.test'], subject: 'code', text: 'Code 1' });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('UNAVAILABLE');
    await sleeping;
    // The writes queued behind the stall ran afterwards; the take-back ran after them.
    await new Promise((r) => setTimeout(r, 300));
    expect(await admin.keys(`${g.config.redis.prefix}:msg:*`)).toEqual([]);
    expect(await admin.zcard(`${g.config.redis.prefix}:live`)).toBe(0);
  } finally {
    await admin.quit();
    await g.close();
    await own.destroy();
  }
}, 30_000);
