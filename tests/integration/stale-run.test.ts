/**
 * A delivery run that lost its job's lease while its SMTP transaction was still going (the worker could not
 * renew it: here its event loop is blocked for longer than the lease), so that another run took the job and
 * delivered the message. When the first run's transaction then ends with a permanent refusal, that late
 * outcome must not turn the delivered recipient into a bounced one, nor suppress the address, nor reach the
 * booking system's webhook, nor count in GET /v1/incidents: the run that holds the lease decides. Until 1 Dec 2026 it
 * did all four. Real gateway, real Redis, a real SMTP receiver on
 * loopback that holds the first run's DATA reply until the test lets it go.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { supportPage } from '../../src/http/console/support-page.js';
import { DeliveryQueue } from '../../src/queue/delivery-queue.js';
import { createKeys } from '../../src/store/keys.js';
import { MessageStore } from '../../src/store/message-store.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startHeldReceiver, type HeldReceiver } from '../helpers/held-receiver.js';
import { ADMIN_KEY, adminRequest, API_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { until } from '../helpers/until.js';

const RCPT = 'applicant@lease.test';
let dns: DnsServer;
let held: HeldReceiver;
let t: TestGateway;
let hooks: WebhookReceiver;

beforeAll(async () => {
  // The first run's DATA reply waits, then is a hard bounce; the second run's is accepted.
  held = await startHeldReceiver(RCPT, { code: 550, message: '5.1.1 user unknown' });
  dns = await startDnsServer({ 'mx.test': { A: ['127.0.0.1'] }, 'lease.test': { MX: [{ exchange: 'mx.test', priority: 10 }] } });
  hooks = await startWebhookReceiver();
  // A one-second lease, renewed every half second: a blocked event loop loses it quickly.
  t = await startTestGateway({
    dns,
    overrides: {
      delivery: { mxPort: held.receiver.port, jobLockSeconds: 1 },
      apiKeys: [
        { name: 'booking-dev', key: API_KEY, domains: ['example.test'], webhook: { url: hooks.url, secret: 'whsec-stale-run-0123456789' } },
        { name: 'admin-dev', key: ADMIN_KEY, domains: ['*'], admin: true },
      ],
    },
  });
});

afterAll(async () => {
  held?.release();
  await t?.close();
  await held?.receiver.close();
  await hooks?.close();
  await dns?.close();
});

/** Blocks this process's event loop (and so the gateway's lease renewals) for `ms`. */
function blockEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

it('keeps the delivery of the run holding the lease when a run that lost it ends later with a 5xx', async () => {
  const { body } = await t.submit({ from: 'noreply@example.test', to: [RCPT], subject: 'Code', text: 'Your code is 123456' });
  await until(async () => held.dataAttempts() === 1, 10_000, 'the first run to reach DATA');

  // Let the lease run out, then put the job back as a recovery pass of another worker would. The first run's
  // renewal, due as soon as the loop is free, may still win that race: then try again.
  const queue = new DeliveryQueue(t.gateway.redis, createKeys(t.config.redis.prefix));
  for (let i = 0; i < 5 && held.dataAttempts() < 2; i++) {
    blockEventLoop(1500);
    await queue.recover(10);
    await until(async () => held.dataAttempts() === 2, 3000, 'a second run').catch(() => undefined);
  }
  expect(held.dataAttempts()).toBe(2);
  await t.waitForStatus(body.id, (s) => s.status === 'delivered', 10_000);

  // The first run's transaction now ends with a hard bounce: its events are kept, its state is not.
  held.release();
  const s = await t.waitForStatus(body.id, (x) => x.events.some((e: any) => e.type === 'bounced'), 10_000);
  expect(s.events.find((e: any) => e.type === 'bounced')).toMatchObject({ recipients: [RCPT], superseded: true });
  expect(s.status).toBe('delivered');
  expect(s.recipients[RCPT]).toMatchObject({ status: 'delivered' });
  expect(s.events.filter((e: any) => e.type === 'suppressed')).toEqual([]);
  expect((await adminRequest(t.url, 'GET', `/v1/suppressions/${encodeURIComponent(RCPT)}`)).status).toBe(404);
  // Counted, so a lease problem that discarded outcomes shows on a dashboard.
  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  expect(metrics).toMatch(/^kurir_delivery_superseded_total\{reason="lease-lost"\} 1$/m);
  expect(metrics).toMatch(/^kurir_delivery_superseded_total\{reason="settled"\} 0$/m);
  // The 5xx did happen, so the attempt metric keeps it (docs/metrics.md); the incident view counts recipients'
  // outcomes, and this one changed nothing: one delivered recipient, no bounce (until 1 Dec 2026 it showed both).
  expect(metrics).toMatch(/^kurir_delivery_attempts_total\{provider="other",result="bounced",category="invalid-recipient"\} 1$/m);
  const incidents = await adminRequest(t.url, 'GET', '/v1/incidents');
  expect(incidents.status).toBe(200);
  const other = incidents.body.providers.find((p: any) => p.provider === 'other');
  expect(other.facts).toMatchObject({ delivered: 1, bounced: 0, bouncedByCategory: {} });
  expect(held.dataAttempts()).toBe(2);
  // Support reads the late 5xx for what it is.
  const view = await new MessageStore(t.gateway.redis, createKeys(t.config.redis.prefix), 3600).get(body.id);
  const result = { query: RCPT, kind: 'address' as const, address: RCPT, provider: 'other', placement: null, resend: null, now: Date.now() };
  const page = supportPage({ ...result, messages: view ? [view] : [] }, 'csrf').toString();
  expect(page).toContain(
    'bounced (invalid-recipient): 550 5.1.1 user unknown — a late outcome, after the recipient was settled (cancelled, or delivered by another run); it changed nothing',
  );

  // The booking system hears of the delivery, and of nothing else.
  await hooks.waitFor((b) => b.messageId === body.id && b.type === 'delivered');
  await new Promise((r) => setTimeout(r, 500));
  expect(hooks.matching((b) => b.messageId === body.id).map((r) => r.body.type)).toEqual(['delivered']);
});
