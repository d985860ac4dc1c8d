/**
 * Cancelling a message while its delivery attempt is still in the receiver's DATA phase: the attempt cannot be
 * stopped, and when it then ends with a 4xx the recipient must stay cancelled (expired), not become deferred
 * again (until 30 Nov 2026 it did, and the job's next run, finding the body gone, marked it expired once more),
 * its late deferral is marked superseded (not sent to webhooks), and nothing may be sent to it later. Real
 * gateway, real Redis, a real SMTP receiver on loopback that holds its DATA reply until the test has cancelled.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DeliveryQueue, deliveryJobId } from '../../src/queue/delivery-queue.js';
import { createKeys } from '../../src/store/keys.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startHeldReceiver, type HeldReceiver } from '../helpers/held-receiver.js';
import { adminRequest, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

let dns: DnsServer;
let held: HeldReceiver;
let t: TestGateway;

beforeAll(async () => {
  held = await startHeldReceiver('hold@held.test', { code: 451, message: '4.3.0 try again later' });
  dns = await startDnsServer({ 'mx.test': { A: ['127.0.0.1'] }, 'held.test': { MX: [{ exchange: 'mx.test', priority: 10 }] } });
  // A deferral is retried after 1 s, so a wrongly reopened recipient would be sent again within the test.
  t = await startTestGateway({ dns, overrides: { delivery: { mxPort: held.receiver.port, retrySchedule: [1], retryJitter: 0 } } });
});

afterAll(async () => {
  held?.release();
  await t?.close();
  await held?.receiver.close();
  await dns?.close();
});

it('keeps a recipient cancelled when the attempt in flight at the cancel is then deferred, and never sends it again', async () => {
  const { body } = await t.submit({ from: 'noreply@example.test', to: ['hold@held.test'], subject: 'Code', text: 'Your code is 123456' });
  await until(async () => held.dataAttempts() === 1, 10_000, 'the attempt to reach DATA');

  const cancelled = await adminRequest(t.url, 'POST', `/v1/messages/${body.id}/cancel`);
  expect(cancelled).toMatchObject({ status: 200, body: { cancelled: ['hold@held.test'], inFlight: ['held.test'] } });
  held.release();

  // The attempt's outcome is on the timeline: it happened.
  const s = await t.waitForStatus(body.id, (x) => x.events.some((e: any) => e.type === 'deferred'), 10_000);
  // Marked as an outcome that changed nothing, so webhooks do not tell the booking system "deferred" after "expired".
  expect(s.events.find((e: any) => e.type === 'deferred')).toMatchObject({ recipients: ['hold@held.test'], superseded: true });
  expect(await (await fetch(`${t.url}/metrics`)).text()).toMatch(/^kurir_delivery_superseded_total\{reason="settled"\} 1$/m);
  expect(s.status).toBe('expired');
  expect(s.recipients['hold@held.test']).toMatchObject({ status: 'expired', reply: 'cancelled by admin-dev' });

  // The deferral put the job back for 1 s later; that run finds nothing to send and the job goes.
  const queue = new DeliveryQueue(t.gateway.redis, createKeys(t.config.redis.prefix));
  try {
    await until(async () => (await queue.getState(deliveryJobId(body.id, 'held.test'))) === 'missing', 10_000, 'the job to finish');
  } finally {
    await queue.close();
  }
  expect(held.dataAttempts()).toBe(1);
  expect(held.receiver.messages.some((m) => m.rcptTo.includes('hold@held.test'))).toBe(false);
  expect((await t.status(body.id)).status).toBe('expired');
});
