/**
 * Redis that answers but refuses writes (OOM under `noeviction`; READONLY after a failover, MISCONF on a full disk,
 * LOADING, BUSY alike): a "try later" like Redis being down. Intake answers 503 with Retry-After and SMTP 451 4.3.0,
 * never 500 / 451 "Internal error"; a delivery that arrived is recorded once Redis takes writes again, and not sent
 * again at every retry of its job meanwhile (until 2 Dec 2026, 60 s of OOM put seven copies in the inbox); a gateway
 * closed while such a record waits stops it and says what it leaves unrecorded (it kept retrying against closed clients).
 * The gateway's own redis-server (tests/helpers/private-redis.ts), never the shared one.
 */
import { Writable } from 'node:stream';
import { Redis, ReplyError } from 'ioredis';
import nodemailer from 'nodemailer';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isUnavailable } from '../../src/lib/errors.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startHeldReceiver, type HeldReceiver } from '../helpers/held-receiver.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { SMTP_USER, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

let redis: PrivateRedis;
let admin: Redis;
let dns: DnsServer;
let held: HeldReceiver;
let t: TestGateway;

const refuseWrites = (): Promise<unknown> => admin.config('SET', 'maxmemory', '1');
const takeWrites = (): Promise<unknown> => admin.config('SET', 'maxmemory', '0');

beforeAll(async () => {
  redis = await startPrivateRedis();
  admin = new Redis(redis.url);
  held = await startHeldReceiver('held@dest.test', { code: 250, message: '2.0.0 Ok: stored' });
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
  t = await startTestGateway({
    dns,
    overrides: {
      redis: { url: redis.url },
      limits: { enabled: false },
      // A short lease: the record's first window (half of it) ends well inside the refusal below.
      delivery: { mxPort: held.receiver.port, retrySchedule: [1], jobLockSeconds: 4, reconcile: { intervalSeconds: 2, graceSeconds: 2 } },
    },
  });
});
afterAll(async () => {
  await takeWrites().catch(() => undefined);
  await t?.close();
  admin?.disconnect();
  await held?.receiver.close();
  await dns?.close();
  await redis?.destroy();
});

it("takes Redis's write refusals for unavailability: a command, a script's write, a MULTI, and the other codes by their text", async () => {
  await refuseWrites();
  try {
    const errors = await Promise.all([
      admin.set('k', 'v').catch((e: unknown) => e),
      admin.eval("redis.call('GET', 'k'); return redis.call('SET', 'k', 'v')", 0).catch((e: unknown) => e),
      admin
        .multi()
        .set('k', 'v')
        .incr('n')
        .exec()
        .catch((e: unknown) => e),
    ]);
    expect(errors.map((e) => (e as Error).message.slice(0, 9))).toEqual(['OOM comma', 'OOM comma', 'EXECABORT']);
    expect(errors.map(isUnavailable)).toEqual([true, true, true]);
  } finally {
    await takeWrites();
  }
  const replies = [
    "READONLY You can't write against a read only replica.",
    'LOADING Redis is loading the dataset in memory',
    'MISCONF Errors writing to the AOF file: No space left on device',
    'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
  ];
  expect(replies.map((m) => isUnavailable(new ReplyError(m)))).toEqual(replies.map(() => true));
  // A bad command stays a bug, not a "try later".
  expect(isUnavailable(await admin.call('HSET', 'k').catch((e: unknown) => e))).toBe(false);
  expect(isUnavailable(new ReplyError('BUSYKEY Target key name already exists.'))).toBe(false);
});

it('answers 503 with Retry-After over HTTP and 451 4.3.0 over SMTP while Redis refuses writes, and accepts again after', async () => {
  const message = { from: 'noreply@example.test', to: ['a@dest.test'], subject: 'code', text: 'Code 1234' };
  await refuseWrites();
  try {
    const res = await fetch(`${t.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer dev-api-key-change-me-0001', 'content-type': 'application/json' },
      body: JSON.stringify(message),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await res.json()) as any).error.code).toBe('UNAVAILABLE');
    const smtp = nodemailer.createTransport({
      host: '127.0.0.1',
      port: t.gateway.ports.smtp as number,
      requireTLS: true,
      auth: SMTP_USER,
      tls: { rejectUnauthorized: false },
    });
    const refused = await smtp.sendMail({ from: 'noreply@example.test', to: 'b@dest.test', subject: 'code', text: 'Code 1234' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ responseCode: 451, response: expect.stringMatching(/^451 4\.3\.0 /) });
    smtp.close();
    // What the KurirIntakeUnavailable alert reads (dashboards/alerts.yml): both refusals, by reason UNAVAILABLE.
    const counted = (await t.gateway.metrics.intakeRefused.get()).values.filter((v) => v.labels.reason === 'UNAVAILABLE');
    expect(Object.fromEntries(counted.map((v) => [v.labels.interface, v.value]))).toEqual({ http: 1, smtp: 1 });
  } finally {
    await takeWrites();
  }
  expect((await t.submit(message)).status).toBe(202);
});

it('records a delivery made just before Redis refused writes once it takes them again, and does not send it again meanwhile', async () => {
  const res = await t.submit({ from: 'noreply@example.test', to: ['held@dest.test'], subject: 'code', text: 'Code 1234', priority: 'verification' });
  expect(res.status).toBe(202);
  await until(() => held.dataAttempts() === 1, 10_000);
  // The receiver has the message and holds its 250; Redis stops taking writes; then the 250 arrives.
  await refuseWrites();
  held.release();
  // Longer than the record's first window (2 s), several job retries (1 s) and a lease (4 s).
  await new Promise((r) => setTimeout(r, 9000));
  await takeWrites();
  const s = await t.waitForStatus(res.body.id, (x) => x.status === 'delivered', 20_000);
  expect(s.recipients['held@dest.test']).toMatchObject({ status: 'delivered', attempts: 1 });
  // Give any late run of the job the time to send it again: it must not.
  await new Promise((r) => setTimeout(r, 3000));
  expect(held.receiver.messages.filter((m) => m.rcptTo.includes('held@dest.test'))).toHaveLength(1);
});

it('a gateway closed while a delivery waits for Redis to take its record closes within its grace, says what it leaves unrecorded, and the job is sent again later', async () => {
  const prefix = `kurir-test-closing-${Math.random().toString(36).slice(2, 8)}`;
  const lines: Array<Record<string, any>> = [];
  const log = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, any>);
      done();
    },
  });
  const receiver = await startHeldReceiver('late@dest.test', { code: 250, message: '2.0.0 Ok: stored' });
  const overrides = {
    redis: { url: redis.url },
    limits: { enabled: false },
    delivery: {
      mxPort: receiver.receiver.port,
      retrySchedule: [1],
      jobLockSeconds: 4,
      shutdownGraceSeconds: 1,
      reconcile: { intervalSeconds: 2, graceSeconds: 2 },
    },
  };
  const closing = await startTestGateway({ dns, prefix, overrides, logger: pino({ level: 'warn' }, log) });
  let next: TestGateway | undefined;
  try {
    const res = await closing.submit({ from: 'noreply@example.test', to: ['late@dest.test'], subject: 'code', text: 'Code 1234', priority: 'verification' });
    expect(res.status).toBe(202);
    await until(() => receiver.dataAttempts() === 1, 10_000);
    await refuseWrites();
    receiver.release();
    // The record's first window (2 s) is over: it waits for up to 10 minutes now.
    await until(() => lines.some((l) => l.msg?.startsWith('delivery done but not recorded')), 10_000);

    const started = Date.now();
    await closing.close();
    // The grace (1 s), the wait for the stopped run (up to 1 s), and the rest of the close.
    expect(Date.now() - started).toBeLessThan(4000);
    const unrecorded = lines.find((l) => l.msg?.startsWith('delivered but not recorded'));
    expect(unrecorded).toMatchObject({ level: 50, id: res.body.id, recipients: ['late@dest.test'] });

    // As docs/reliability.md says: once Redis takes writes, the job runs again after its lease, and the recipient gets a second copy.
    await takeWrites();
    next = await startTestGateway({ dns, prefix, overrides });
    const s = await next.waitForStatus(res.body.id, (x) => x.status === 'delivered', 20_000);
    expect(s.recipients['late@dest.test']).toMatchObject({ status: 'delivered' });
    expect(receiver.receiver.messages.filter((m) => m.rcptTo.includes('late@dest.test'))).toHaveLength(2);
  } finally {
    await takeWrites();
    await closing.close();
    await next?.close();
    await receiver.receiver.close();
    await admin.eval("for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end", 0, `${prefix}:*`);
  }
}, 40_000);
