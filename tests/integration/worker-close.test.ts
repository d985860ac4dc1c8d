/**
 * A delivery run that outlasts its gateway's close: the receiver holds the DATA reply past
 * delivery.shutdownGraceSeconds, the gateway closes (its Redis clients too), then the reply comes. The run's record and
 * its report to the queue find the clients closed; the runner sends nothing more (one warn line says the job is left to
 * its lease), where until 2 Dec 2026 the report was retried every second against the closed client for as long as the
 * process lived. Real gateway, shared Redis (own prefix), smtp-server as the MX.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startHeldReceiver, type HeldReceiver } from '../helpers/held-receiver.js';
import { dropPrefix, startTestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

let dns: DnsServer;
let held: HeldReceiver;
const prefix = `kurir-test-wclose-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  held = await startHeldReceiver('late@dest.test', { code: 250, message: '2.0.0 Ok: stored' });
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
});
afterAll(async () => {
  held.release();
  await held?.receiver.close();
  await dns?.close();
  await dropPrefix(prefix);
});

it('a run that ends after its gateway closed is logged once as not reported, and nothing retries against the closed Redis', async () => {
  const lines: Array<Record<string, any>> = [];
  const log = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, any>);
      done();
    },
  });
  const t = await startTestGateway({
    dns,
    prefix,
    overrides: { limits: { enabled: false }, delivery: { mxPort: held.receiver.port, shutdownGraceSeconds: 1, jobLockSeconds: 4 } },
    logger: pino({ level: 'warn' }, log),
  });
  let closed = false;
  try {
    const res = await t.submit({ from: 'noreply@example.test', to: ['late@dest.test'], subject: 'code', text: 'Code 1234', priority: 'verification' });
    expect(res.status).toBe(202);
    await until(() => held.dataAttempts() === 1, 10_000);
    await t.close();
    closed = true;
    const closedAt = lines.length;
    held.release();
    // The run's record fails on the closed client (docs/reliability.md: the recipient gets another copy later) and the
    // run ends; then three seconds in which the old code retried its report every second.
    await until(() => lines.some((l) => l.msg?.startsWith('delivered but not recorded')), 5000, 'the run to end');
    await new Promise((r) => setTimeout(r, 3000));
    const after = lines.slice(closedAt);
    expect(after.filter((l) => l.msg?.startsWith('delivery queue step failed'))).toEqual([]);
    expect(after.filter((l) => l.msg?.includes('not reported to the queue'))).toEqual([
      expect.objectContaining({ level: 40, jobs: [{ id: expect.stringMatching(/_dest\.test$/), result: 'failed' }], count: 1 }),
    ]);
  } finally {
    if (!closed) await t.close();
  }
}, 30_000);
