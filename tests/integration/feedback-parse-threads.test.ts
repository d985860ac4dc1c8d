/**
 * DSNs and ARF reports parsed off the event loop (src/feedback/ingest/parse-pool.ts): a real gateway (roles
 * intake, api, worker, feedback) on loopback, one parse thread and no queue. A 1.9 MB DSN of 500 HTML parts —
 * which held the event loop for 1.5–2.5 s when mailparser ran on it — leaves the loop responsive (max delay
 * measured with perf_hooks.monitorEventLoopDelay) and is applied; a report arriving while the thread is taken
 * is answered 451 4.3.2 and applied when sent again; a normal DSN is applied as before.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendToBounceMx } from '../helpers/bounce-mx-client.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { loadFixture, manyPartReport } from '../helpers/feedback-fixtures.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestGateway, submitDelivered, type TestGateway } from '../helpers/test-gateway.js';
import { closeAll } from '../helpers/close-all.js';

let dns: DnsServer;
let receiver: Receiver;
let t: TestGateway;

const base = { from: 'Passport office <noreply@example.test>', subject: 'Your booking', text: 'Booking confirmed.', priority: 'normal' };
/** Far under the 1.5–2.5 s the parse held the loop for; far over a responsive loop's few milliseconds. */
const MAX_LOOP_DELAY_MS = 300;

beforeAll(async () => {
  receiver = await startReceiver({ hostname: 'mx.dest.test' });
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
  t = await startTestGateway({
    dns,
    overrides: {
      roles: ['intake', 'api', 'worker', 'feedback'],
      delivery: { mxPort: receiver.port },
      feedback: { port: 0, parseThreads: 1, maxQueuedReports: 0 },
    },
  });
  t.publishDkim(dns);
});

afterAll(() => closeAll(t, receiver, dns));

async function delivered(to: string): Promise<{ id: string; verp: string; values: { verp: string; rcpt: string; messageId: string } }> {
  const m = await submitDelivered(t, receiver, base, to);
  return { id: m.id, verp: m.verp, values: { verp: m.verp, rcpt: to, messageId: m.messageId } };
}

async function bounced(id: string, rcpt: string): Promise<void> {
  const s = await t.status(id);
  expect(s.recipients[rcpt]).toMatchObject({ status: 'bounced', category: 'invalid-recipient' });
  expect(s.events.find((e: any) => e.type === 'bounced')).toMatchObject({ async: true, status: '5.1.1', format: 'rfc3464', recipients: [rcpt] });
}

describe('DSN parsing in threads at the bounce MX', () => {
  it('applies a normal DSN (and starts the parse thread)', async () => {
    const m = await delivered('plain@dest.test');
    const sent = await sendToBounceMx(t.gateway.ports.feedback, m.verp, loadFixture('postfix-dsn.eml', m.values));
    expect(sent.response).toMatch(/^250 2\.0\.0 Report applied/);
    const s = await t.status(m.id);
    expect(s.recipients['plain@dest.test']).toMatchObject({ status: 'bounced', category: 'invalid-recipient' });
    expect(s.events.at(-1)).toMatchObject({ type: 'suppressed', reason: 'invalid-recipient', source: 'dsn' });
  });

  it('keeps the event loop responsive while a 1.9 MB report of 500 HTML parts is parsed, and applies it', async () => {
    const m = await delivered('many-parts@dest.test');
    const raw = manyPartReport(m.values);
    expect(raw.length).toBeGreaterThan(1_800_000);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const sent = await sendToBounceMx(t.gateway.ports.feedback, m.verp, raw);
    // The reply crossed the loopback socket, so every tick the parse could have held back has run.
    delay.disable();
    expect(sent.response).toMatch(/^250 2\.0\.0 Report applied/);
    expect(delay.max / 1e6).toBeLessThan(MAX_LOOP_DELAY_MS);
    await bounced(m.id, 'many-parts@dest.test');
  });

  it('answers 451 4.3.2 to a report arriving while the parse thread is taken; sent again, it is applied', async () => {
    const a = await delivered('first@dest.test');
    const b = await delivered('second@dest.test');
    const answers = await Promise.all([
      sendToBounceMx(t.gateway.ports.feedback, a.verp, manyPartReport(a.values)),
      sendToBounceMx(t.gateway.ports.feedback, b.verp, manyPartReport(b.values)),
    ]);
    const busy = answers.filter((x) => !x.ok);
    expect(busy).toHaveLength(1);
    expect(busy[0]).toMatchObject({ code: 451 });
    expect(busy[0].response).toMatch(/^451 4\.3\.2 Report not read now \(busy\): .*feedback\.maxQueuedReports/);
    // Counted, so a bounce MX that keeps deferring shows on a dashboard, not only in the log.
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/^kurir_feedback_reports_deferred_total 1$/m);
    const [retried, first] = answers[0].ok ? [b, a] : [a, b];
    await bounced(first.id, first.values.rcpt);
    expect((await t.status(retried.id)).events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'delivered']);
    const again = await sendToBounceMx(t.gateway.ports.feedback, retried.verp, manyPartReport(retried.values));
    expect(again.response).toMatch(/^250 2\.0\.0 Report applied/);
    await bounced(retried.id, retried.values.rcpt);
  });
});
