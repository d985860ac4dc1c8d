/**
 * Smarthost mode: the smarthost refusing Kurir itself — relaying for it, its envelope sender or account, SMTP
 * authentication — is Kurir's configuration problem, not the recipient's. The message is deferred and retried (and
 * delivered once the smarthost takes it), its timeline says the smarthost refused Kurir, and the booking system hears
 * of no bounce. A refusal of one recipient relayed by the smarthost (550 5.1.1 user unknown) still bounces. Until
 * 2 Dec 2026 each of the first kind bounced every message. Real gateway, real Redis, smtp-server as the smarthost.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startReceiver, type Receiver, type Reply } from '../helpers/receiver.js';
import { ADMIN_KEY, adminRequest, API_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { closeAll } from '../helpers/close-all.js';

const message = { from: 'noreply@example.test', subject: 'Your code', text: 'Code: 123456', priority: 'verification' };
/** What the smarthost answers now: at MAIL FROM, and at RCPT TO per recipient (undefined: it accepts). */
let atMail: Reply | undefined;
let atRcpt: Record<string, Reply> = {};

let smarthost: Receiver;
let hooks: WebhookReceiver;
let t: TestGateway;

beforeAll(async () => {
  smarthost = await startReceiver({
    tls: false,
    hostname: 'smtp.relay.test',
    script: (ctx) => (ctx.stage === 'mail' ? atMail : ctx.stage === 'rcpt' ? atRcpt[ctx.address ?? ''] : undefined),
  });
  hooks = await startWebhookReceiver();
  t = await startTestGateway({
    overrides: {
      delivery: { smarthost: { host: '127.0.0.1', port: smarthost.port } },
      apiKeys: [
        { name: 'booking-dev', key: API_KEY, domains: ['example.test'], webhook: { url: hooks.url, secret: 'whsec-smarthost-0123456789' } },
        { name: 'admin-dev', key: ADMIN_KEY, domains: ['*'], admin: true },
      ],
    },
  });
});

beforeEach(() => {
  atMail = undefined;
  atRcpt = {};
});

afterAll(() => closeAll(t, smarthost, hooks));

/** Submits a message to `to` and waits for its first deferral or bounce. */
async function firstOutcome(to: string[]): Promise<{ id: string; status: any }> {
  const res = await t.submit({ ...message, to });
  expect(res.status).toBe(202);
  const status = await t.waitForStatus(res.body.id, (s) => s.events.some((e: any) => e.type === 'deferred' || e.type === 'bounced'));
  return { id: res.body.id, status };
}

const REFUSED_KURIR =
  /\[smarthost 127\.0\.0\.1:\d+ refused Kurir itself, not the recipient: check delivery\.smarthost and Kurir's account there; retried until the message expires\]$/;

it('defers "554 5.7.1 Relay access denied" at RCPT, says the smarthost refused Kurir, and delivers once the smarthost relays', async () => {
  atRcpt = { 'amy@dest.test': { code: 554, message: '5.7.1 <amy@dest.test>: Relay access denied' } };
  const { id, status } = await firstOutcome(['amy@dest.test']);
  expect(status.recipients['amy@dest.test']).toMatchObject({ status: 'deferred', category: 'policy' });
  const deferred = status.events.find((e: any) => e.type === 'deferred');
  expect(deferred.reply).toMatch(/^554 5\.7\.1 <amy@dest\.test>: Relay access denied \[smarthost/);
  expect(deferred.reply).toMatch(REFUSED_KURIR);
  expect(status.events.some((e: any) => e.type === 'bounced')).toBe(false);

  // The smarthost's configuration is fixed: the next retry (1 s) delivers.
  atRcpt = {};
  const done = await t.waitForStatus(id, (s) => s.status === 'delivered', 10_000);
  expect(done.recipients['amy@dest.test']).toMatchObject({ status: 'delivered' });
  await hooks.waitFor((b) => b.messageId === id && b.type === 'delivered');
  expect(hooks.matching((b) => b.messageId === id).map((r) => r.body.type)).toEqual(['deferred', 'delivered']);
  expect((await adminRequest(t.url, 'GET', '/v1/suppressions/amy%40dest.test')).status).toBe(404);
});

it('defers a MAIL FROM refusal: "553 5.7.1 Sender address rejected: not owned by user", and "530 5.7.0 Authentication required"', async () => {
  for (const reply of [
    { code: 553, message: '5.7.1 <b@bounce.example.test>: Sender address rejected: not owned by user kurir' },
    { code: 530, message: '5.7.0 Authentication required' },
  ]) {
    atMail = reply;
    const { id, status } = await firstOutcome(['bo@dest.test', 'cy@dest.test']);
    for (const r of ['bo@dest.test', 'cy@dest.test']) expect(status.recipients[r]).toMatchObject({ status: 'deferred', category: 'policy' });
    const deferred = status.events.find((e: any) => e.type === 'deferred');
    expect(deferred).toMatchObject({ recipients: ['bo@dest.test', 'cy@dest.test'], category: 'policy' });
    expect(deferred.reply.startsWith(`${reply.code} ${reply.message} [smarthost`)).toBe(true);
    expect(deferred.reply).toMatch(REFUSED_KURIR);
    atMail = undefined;
    await t.waitForStatus(id, (s) => s.status === 'delivered', 10_000);
  }
});

it('still bounces a recipient the smarthost refuses as unknown, and delivers to the other', async () => {
  atRcpt = { 'gone@dest.test': { code: 550, message: '5.1.1 <gone@dest.test>: Recipient address rejected: User unknown in relay recipient table' } };
  const { id } = await firstOutcome(['gone@dest.test', 'dee@dest.test']);
  const status = await t.waitForStatus(id, (s) => s.status === 'partially-delivered', 10_000);
  expect(status.recipients['gone@dest.test']).toMatchObject({ status: 'bounced', category: 'invalid-recipient' });
  expect(status.recipients['dee@dest.test']).toMatchObject({ status: 'delivered' });
  const bounced = status.events.find((e: any) => e.type === 'bounced');
  expect(bounced.reply).toBe('550 5.1.1 <gone@dest.test>: Recipient address rejected: User unknown in relay recipient table');
  await hooks.waitFor((b) => b.messageId === id && b.type === 'bounced');
});
