/**
 * Failed-authentication throttling end to end: two in-process gateways on one Redis prefix (one
 * cluster), real SMTP and HTTP sockets from different loopback source addresses (127.0.0.x: each a
 * different client IP). Short windows keep it fast: 6 failures per IP, 4 per user name, 3 per SMTP
 * connection, blocks of 2 s, delays of 50 ms per failure up to 150 ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { httpFrom, SmtpDialog } from '../helpers/smtp-dialog.js';
import { API_KEY, SMTP_USER, dropPrefix, testConfig } from '../helpers/test-gateway.js';

const prefix = `kurir-test-authlim-${Math.random().toString(36).slice(2, 8)}`;
const OPS = { user: 'ops', pass: 'ops-password-0001' };
const WRONG = 'wrong-password-4711';
const WRONG_KEY = 'not-the-api-key-0815';
const overrides = {
  roles: ['intake', 'api'],
  authLimits: { windowSeconds: 60, maxFailuresPerIp: 6, maxFailuresPerUser: 4, blockSeconds: 2, maxFailuresPerConnection: 3, delayStepMs: 50, maxDelayMs: 150 },
  smtpAccounts: [
    { name: 'booking-dev', username: SMTP_USER.user, password: SMTP_USER.pass, domains: ['example.test'] },
    { name: 'ops', username: OPS.user, password: OPS.pass, domains: ['example.test'] },
  ],
};

/** Every JSON log line both gateways wrote (level warn and above). */
const logLines: Array<Record<string, unknown>> = [];
const rawLog: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
      rawLog.push(line);
      logLines.push(JSON.parse(line) as Record<string, unknown>);
    }
    done();
  },
});

let a: Gateway;
let b: Gateway;
const dirs: string[] = [];

async function start(): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'kurir-authlim-'));
  dirs.push(dir);
  return startGateway(testConfig(dir, overrides, undefined, prefix), pino({ level: 'warn' }, sink));
}

/** One connection from `ip`: EHLO, AUTH PLAIN; answers the AUTH reply and, after a 421, whether the server closed within 1 s. */
async function authOnce(g: Gateway, ip: string, user: string, pass: string): Promise<{ reply: string; closed: boolean }> {
  const d = await SmtpDialog.open(g.ports.smtp!, ip);
  const reply = await d.auth(user, pass);
  const closed = /^421 /.test(reply) && (await Promise.race([d.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000))]));
  d.close();
  return { reply, closed };
}

const apiGet = (g: Gateway, ip: string, key: string) =>
  httpFrom(ip, g.ports.http!, { path: '/v1/messages/00000000000000000000000000', headers: { authorization: `Bearer ${key}` } });

async function metric(name: string, labels: string): Promise<number> {
  let sum = 0;
  for (const g of [a, b]) {
    const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(await g.metrics.render());
    sum += m ? Number(m[1]) : 0;
  }
  return sum;
}

beforeAll(async () => {
  [a, b] = await Promise.all([start(), start()]);
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await dropPrefix(prefix);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('SMTP AUTH brute force', () => {
  it('one connection: each failure answered 535 5.7.8 after a growing delay, the third 421 4.7.0 and disconnected', async () => {
    const d = await SmtpDialog.open(a.ports.smtp!, '127.0.0.2');
    expect(await d.cmd('EHLO client.test')).toMatch(/^250/);
    const took: number[] = [];
    const replies: string[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      replies.push(await d.cmd(`AUTH PLAIN ${Buffer.from(`\0nobody-1\0${WRONG}`).toString('base64')}`));
      took.push(Date.now() - t0);
    }
    expect(replies[0]).toMatch(/^535 5\.7\.8 /);
    expect(replies[1]).toMatch(/^535 5\.7\.8 /);
    expect(replies[2]).toMatch(/^421 4\.7\.0 Too many failed authentication attempts/);
    expect(took[0]).toBeGreaterThanOrEqual(45); // 50 ms × 1st failure of this IP
    expect(took[1]).toBeGreaterThanOrEqual(95); // 50 ms × 2nd
    await d.closed;
    expect(d.isClosed).toBe(true);
  });

  it('many connections from one IP, over both gateways: blocked at the 6th failure; then the right password is refused too (and the API key over HTTP)', async () => {
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await authOnce(i % 2 ? b : a, '127.0.0.3', `guess-${i}`, WRONG));
    for (const r of results.slice(0, 5)) expect(r.reply).toMatch(/^535 5\.7\.8 /);
    expect(results[5].reply).toMatch(/^421 4\.7\.0 Too many failed authentication attempts, try again in 2 s/);
    expect(results[5].closed).toBe(true);

    const right = await authOnce(b, '127.0.0.3', SMTP_USER.user, SMTP_USER.pass);
    expect(right.reply).toMatch(/^421 4\.7\.0 /);
    expect(right.closed).toBe(true);
    const api = await apiGet(a, '127.0.0.3', API_KEY);
    expect(api.status).toBe(429);
    expect(JSON.parse(api.body).error.code).toBe('AUTH_BLOCKED');
    // Another client is not affected.
    expect((await authOnce(a, '127.0.0.4', SMTP_USER.user, SMTP_USER.pass)).reply).toMatch(/^235 /);
  });

  it('per user name across IPs and gateways: blocked at the 4th failure, whatever the IP, until the block lapses; a success resets the count', async () => {
    const ips = ['127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.8'];
    const results = [];
    for (const [i, ip] of ips.entries()) results.push(await authOnce(i % 2 ? a : b, ip, OPS.user, WRONG));
    for (const r of results.slice(0, 3)) expect(r.reply).toMatch(/^535 5\.7\.8 /);
    expect(results[3].reply).toMatch(/^421 4\.7\.0 /);
    expect(results[3].closed).toBe(true);

    const during = await authOnce(a, '127.0.0.9', OPS.user, OPS.pass);
    expect(during.reply).toMatch(/^421 4\.7\.0 /);
    expect(during.closed).toBe(true);
    expect((await authOnce(a, '127.0.0.9', SMTP_USER.user, SMTP_USER.pass)).reply).toMatch(/^235 /); // only `ops` is blocked

    const blockedAt = Date.now();
    let after = await authOnce(b, '127.0.0.9', OPS.user, OPS.pass);
    while (!/^235 /.test(after.reply) && Date.now() - blockedAt < 5000) {
      await new Promise((r) => setTimeout(r, 250));
      after = await authOnce(b, '127.0.0.9', OPS.user, OPS.pass);
    }
    expect(after.reply).toMatch(/^235 /);
    expect(Date.now() - blockedAt).toBeLessThan(4000);
    expect(await a.redis.exists(`${prefix}:auth-fail:user:ops`)).toBe(0); // reset by the success
  });

  it('logs each failure at warn with IP and user name, never the password; counts failures and blocks', async () => {
    const failed = logLines.filter((l) => l.msg === 'auth: failed');
    expect(failed.find((l) => l.ip === '127.0.0.2' && l.user === 'nobody-1')).toMatchObject({ level: 40, interface: 'smtp', reason: 'unknown-user' });
    expect(failed.find((l) => l.user === OPS.user)).toMatchObject({ level: 40, reason: 'bad-password' });
    expect(rawLog.join('\n')).not.toContain(WRONG);
    expect(rawLog.join('\n')).not.toContain(OPS.pass);
    expect(await metric('kurir_auth_failures_total', 'interface="smtp",reason="unknown-user"')).toBe(9);
    expect(await metric('kurir_auth_failures_total', 'interface="smtp",reason="bad-password"')).toBe(4);
    expect(await metric('kurir_auth_blocked_total', 'interface="smtp",scope="connection"')).toBe(1);
    expect(await metric('kurir_auth_blocked_total', 'interface="smtp",scope="ip"')).toBe(2);
    expect(await metric('kurir_auth_blocked_total', 'interface="smtp",scope="user"')).toBeGreaterThanOrEqual(2);
  });
});

describe('HTTP API key brute force', () => {
  it('answers 401 after a growing delay, then 429 with Retry-After, counted over both gateways; a valid key is refused while blocked', async () => {
    const statuses: number[] = [];
    const took: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const res = await apiGet(i % 2 ? b : a, '127.0.0.10', `${WRONG_KEY}-${i}`);
      took.push(Date.now() - t0);
      statuses.push(res.status);
      expect(JSON.parse(res.body).error.code).toBe('AUTH_FAILED');
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    expect(took[4]).toBeGreaterThanOrEqual(145); // capped at maxDelayMs
    const sixth = await apiGet(b, '127.0.0.10', WRONG_KEY);
    expect(sixth.status).toBe(429);
    expect(sixth.headers['retry-after']).toBe('2');
    expect(JSON.parse(sixth.body).error).toMatchObject({ code: 'AUTH_BLOCKED' });

    const valid = await apiGet(a, '127.0.0.10', API_KEY);
    expect(valid.status).toBe(429);
    expect(Number(valid.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await apiGet(a, '127.0.0.11', API_KEY)).status).toBe(404); // another client: authenticated, no such message
    expect(rawLog.join('\n')).not.toContain(WRONG_KEY);
    expect(await metric('kurir_auth_failures_total', 'interface="http",reason="unknown-key"')).toBe(6);
  });

  it('documents 429 AUTH_BLOCKED on every authenticated route of the OpenAPI document', async () => {
    const doc = JSON.parse((await httpFrom('127.0.0.12', a.ports.http!, { path: '/docs/json' })).body);
    expect(doc.paths['/v1/messages/{id}'].get.responses['429'].description).toMatch(/AUTH_BLOCKED/);
    expect(doc.paths['/v1/messages'].post.responses['429'].description).toMatch(/AUTH_BLOCKED/);
  });
});
