/**
 * What `kurir queue …` prints must be what the gateway answered, not what was asked: a cancel whose delivery
 * attempt is in the middle of its SMTP transaction (it cannot be stopped, so the mail may still arrive), a
 * retry that moved no job, a resume of a domain that was not paused. Real gateway, real Redis, a receiver on
 * loopback that holds its DATA reply; the CLI runs in-process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCommand } from '../../src/cli/main.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startHeldReceiver, type HeldReceiver } from '../helpers/held-receiver.js';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

let dns: DnsServer;
let held: HeldReceiver;
let t: TestGateway;

beforeAll(async () => {
  held = await startHeldReceiver('hold@held.test', { code: 250, message: '2.0.0 accepted' });
  dns = await startDnsServer({ 'mx.test': { A: ['127.0.0.1'] }, 'held.test': { MX: [{ exchange: 'mx.test', priority: 10 }] } });
  t = await startTestGateway({ dns, overrides: { delivery: { mxPort: held.receiver.port } } });
});

afterAll(async () => {
  held?.release();
  await t?.close();
  await held?.receiver.close();
  await dns?.close();
});

const kurir = async (...args: string[]): Promise<string> =>
  (await runCliCommand(args, { cwd: t.dataDir, env: { KURIR_URL: t.url, KURIR_ADMIN_KEY: ADMIN_KEY } })).output;

describe('kurir queue prints what the gateway did', () => {
  it('retry and cancel while the attempt is in its SMTP transaction: nothing moved, the attempt not stopped', async () => {
    const { body } = await t.submit({ from: 'noreply@example.test', to: ['hold@held.test'], subject: 'Code', text: 'Your code is 123456' });
    await until(async () => held.dataAttempts() === 1, 10_000, 'the attempt to reach DATA');

    const retried = await kurir('queue', 'retry', body.id);
    expect(retried).not.toMatch(/^retrying/);
    expect(retried).toBe(`nothing moved for ${body.id}\n  held.test: not moved (job active)`);

    const cancelled = await kurir('queue', 'cancel', body.id);
    expect(cancelled).toBe(
      `cancelled ${body.id}: 1 recipient(s) expired\n` +
        '  held.test: an attempt is in its SMTP transaction and cannot be stopped; the mail may still be delivered (see kurir messages show)',
    );
    held.release();
  });

  it('resume of a recipient domain that was not paused says so', async () => {
    expect(await kurir('queue', 'resume', 'never-paused.example')).toBe('never-paused.example was not paused; nothing to resume');
    expect(await kurir('queue', 'pause', 'paused.example')).toBe('paused paused.example until resumed');
    expect(await kurir('queue', 'resume', 'paused.example')).toBe('resumed paused.example (0 held job(s) released)');
  });
});
