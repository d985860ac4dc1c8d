/**
 * ESP notifications end to end: a real gateway (roles intake, api, worker) delivers to a local SMTP
 * receiver (DNS on loopback), then SES notifications arrive as SNS deliveries signed with a local key
 * whose certificate an HTTPS server on 127.0.0.1 serves (the allowed certificate host is overridden to
 * 127.0.0.1), and Mailgun webhooks arrive signed with the configured key. Real Redis, real sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import {
  MAILGUN_KEY,
  TEST_TOPIC,
  mailgunComplained,
  mailgunFailed,
  mailgunWebhook,
  sesBounce,
  sesComplaint,
  signSns,
  snsNotification,
  snsSubscriptionConfirmation,
  startSnsServer,
  type SnsFields,
  type SnsServer,
} from '../helpers/esp.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestGateway, type TestGateway, submitDelivered } from '../helpers/test-gateway.js';
import { closeAll } from '../helpers/close-all.js';

let dns: DnsServer;
let receiver: Receiver;
let sns: SnsServer;
let t: TestGateway;
let offsetMs = 0;
const clock = { now: () => Date.now() + offsetMs };

const base = { from: 'Passport office <noreply@example.test>', subject: 'Your booking', text: 'Booking confirmed.', priority: 'normal' };

beforeAll(async () => {
  receiver = await startReceiver({ hostname: 'mx.dest.test' });
  dns = await startDnsServer({
    'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
    'mx.dest.test': { A: ['127.0.0.1'] },
  });
  sns = await startSnsServer();
  t = await startTestGateway({
    dns,
    overrides: {
      roles: ['intake', 'api', 'worker'],
      delivery: { mxPort: receiver.port },
      feedback: {
        softBounceThreshold: 3,
        ses: { topicArns: [TEST_TOPIC], certHostPattern: '^127\\.0\\.0\\.1$', autoConfirm: true },
        mailgun: { signingKey: MAILGUN_KEY },
      },
    },
    gatewayOptions: { clock, espHttpGet: sns.httpGet },
  });
  t.publishDkim(dns);
});

afterAll(() => closeAll(t, sns, receiver, dns));

const delivered = (to: string) => submitDelivered(t, receiver, base, to);

async function post(path: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** POSTs as SNS does: JSON with Content-Type text/plain and the message type header. */
const postSns = (m: SnsFields, type = m.Type) => post('/v1/feedback/ses', m, { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': type });
const postMailgun = (body: unknown) => post('/v1/feedback/mailgun', body, { 'content-type': 'application/json' });

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await t.gateway.metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  return m.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}
const ignored = (reason: string) => metric('kurir_feedback_reports_ignored_total', { reason });
const types = async (id: string): Promise<string[]> => (await t.status(id)).events.map((e: any) => e.type);

describe('SES notifications via SNS', () => {
  it('applies a Permanent bounce (matched by the VERP in mail.source): bounced on the timeline, recipient suppressed', async () => {
    const m = await delivered('ses-gone@dest.test');
    const note = snsNotification(
      sns,
      sesBounce(
        { source: m.verp, to: 'ses-gone@dest.test' },
        {
          type: 'Permanent',
          subType: 'General',
          recipient: 'ses-gone@dest.test',
          status: '5.1.1',
          diagnosticCode: 'smtp; 550 5.1.1 <ses-gone@dest.test>: Recipient address rejected: User unknown',
        },
      ),
      { version: '1', subject: 'Amazon SES Email Event Notification' },
    );
    const res = await postSns(note);
    expect(res).toMatchObject({ status: 200, body: { result: 'applied', kind: 'bounce', messageId: m.id } });

    const s = await t.status(m.id);
    expect(s.status).toBe('bounced');
    expect(s.recipients['ses-gone@dest.test']).toMatchObject({ status: 'bounced', category: 'invalid-recipient' });
    expect(s.events.find((e: any) => e.type === 'bounced')).toMatchObject({
      async: true,
      category: 'invalid-recipient',
      bounceType: 'hard',
      status: '5.1.1',
      format: 'ses',
      recipients: ['ses-gone@dest.test'],
      reply: 'smtp; 550 5.1.1 <ses-gone@dest.test>: Recipient address rejected: User unknown',
    });
    expect(s.events.at(-1)).toMatchObject({ type: 'suppressed', reason: 'invalid-recipient', source: 'ses' });
    expect((await t.gateway.suppressions.check(['ses-gone@dest.test']))[0]).toMatchObject({ reason: 'invalid-recipient', source: 'ses', messageId: m.id });
    expect(await metric('kurir_feedback_bounces_total', { provider: 'other', category: 'invalid-recipient', type: 'hard' })).toBeGreaterThanOrEqual(1);
    expect((await t.submit({ ...base, to: ['ses-gone@dest.test'] })).status).toBe(422);

    // SNS delivers at least once: the same message again is acknowledged, not applied twice.
    const again = await postSns(note);
    expect(again).toMatchObject({ status: 200, body: { result: 'duplicate' } });
    expect((await t.status(m.id)).events.length).toBe(s.events.length);
  });

  it('matches by Message-ID when mail.source is not our VERP, and falls back to invalid-recipient for General without a diagnostic', async () => {
    const m = await delivered('ses-nodiag@dest.test');
    const res = await postSns(
      snsNotification(
        sns,
        sesBounce(
          { source: 'bounces@ses-rewritten.test', messageId: m.messageId, to: 'ses-nodiag@dest.test' },
          { type: 'Permanent', subType: 'General', recipient: 'ses-nodiag@dest.test' },
        ),
      ),
    );
    expect(res.body).toMatchObject({ result: 'applied', messageId: m.id });
    expect((await t.gateway.suppressions.check(['ses-nodiag@dest.test']))[0]).toMatchObject({ reason: 'invalid-recipient', source: 'ses' });
  });

  it('records a Transient MailboxFull bounce as soft mailbox-full without suppressing (below the threshold)', async () => {
    const m = await delivered('ses-full@dest.test');
    const res = await postSns(
      snsNotification(
        sns,
        sesBounce({ source: m.verp, to: 'ses-full@dest.test' }, { type: 'Transient', subType: 'MailboxFull', recipient: 'ses-full@dest.test' }),
      ),
    );
    expect(res.body).toMatchObject({ result: 'applied' });
    const s = await t.status(m.id);
    expect(s.events.find((e: any) => e.type === 'bounced')).toMatchObject({ category: 'mailbox-full', bounceType: 'soft', format: 'ses' });
    expect(await t.gateway.suppressions.check(['ses-full@dest.test'])).toEqual([]);
  });

  it('applies a complaint: complained on the timeline, recipient suppressed (reason complaint)', async () => {
    const m = await delivered('ses-angry@dest.test');
    const before = await metric('kurir_feedback_complaints_total', { provider: 'other' });
    const res = await postSns(snsNotification(sns, sesComplaint({ source: m.verp, to: 'ses-angry@dest.test' }, 'ses-angry@dest.test')));
    expect(res.body).toMatchObject({ result: 'applied', kind: 'complaint', messageId: m.id });
    const s = await t.status(m.id);
    expect(s.status).toBe('delivered');
    expect(s.events.find((e: any) => e.type === 'complained')).toMatchObject({
      recipients: ['ses-angry@dest.test'],
      feedbackType: 'abuse',
      userAgent: 'Yahoo!-Mail-Feedback/2.0',
    });
    expect(s.events.at(-1)).toMatchObject({ type: 'suppressed', reason: 'complaint', source: 'ses' });
    expect((await t.gateway.suppressions.check(['ses-angry@dest.test']))[0]).toMatchObject({ reason: 'complaint', source: 'ses', messageId: m.id });
    expect(await metric('kurir_feedback_complaints_total', { provider: 'other' })).toBe(before + 1);
  });

  it('refuses a forged signature with 403, counts it and changes nothing', async () => {
    const m = await delivered('ses-forged@dest.test');
    const before = await ignored('bad-signature');
    const genuine = snsNotification(
      sns,
      sesBounce({ source: m.verp, to: 'ses-forged@dest.test' }, { type: 'Permanent', subType: 'General', recipient: 'ses-forged@dest.test' }),
    );
    // The signature of another message, or one field changed after signing.
    const tampered = { ...genuine, Message: genuine.Message.replace('ses-forged@dest.test"', 'ses-forged@dest.test" ') };
    const res = await postSns(tampered);
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', details: { reason: 'bad-signature' } });
    const other = snsNotification(sns, { notificationType: 'Delivery' });
    expect((await postSns({ ...genuine, Signature: other.Signature })).status).toBe(403);
    expect(await ignored('bad-signature')).toBe(before + 2);
    expect(await types(m.id)).toEqual(['queued', 'attempt', 'delivered']);
    expect(await t.gateway.suppressions.check(['ses-forged@dest.test'])).toEqual([]);
  });

  it('refuses an unknown topic, a disallowed certificate host, a stale timestamp and a mismatched type header', async () => {
    const m = await delivered('ses-other@dest.test');
    const note = sesBounce({ source: m.verp, to: 'ses-other@dest.test' }, { type: 'Permanent', subType: 'General', recipient: 'ses-other@dest.test' });
    const topic = await postSns(snsNotification(sns, note, { topic: 'arn:aws:sns:eu-west-1:123456789012:someone-else' }));
    expect(topic.status).toBe(403);
    expect(topic.body.error.details.reason).toBe('unknown-topic');
    const host = await postSns(snsNotification(sns, note, { certUrl: sns.certUrl.replace('127.0.0.1', 'localhost') }));
    expect(host.body.error.details.reason).toBe('bad-cert-url');
    const stale = await postSns(snsNotification(sns, note, { timestamp: new Date(Date.now() - 3 * 86_400_000) }));
    expect(stale.status).toBe(403);
    expect(stale.body.error.details.reason).toBe('stale');
    const header = await postSns(snsNotification(sns, note), 'SubscriptionConfirmation');
    expect(header.status).toBe(400);
    const junk = await post('/v1/feedback/ses', 'not json', { 'content-type': 'text/plain', 'x-amz-sns-message-type': 'Notification' });
    expect(junk.status).toBe(400);
    expect(await ignored('unknown-topic')).toBeGreaterThanOrEqual(1);
    expect(await types(m.id)).toEqual(['queued', 'attempt', 'delivered']);
  });

  it('confirms a subscription by GET-ing its SubscribeURL on an allowed host, and only then', async () => {
    const before = sns.hits.filter((h) => h.startsWith('/?Action=ConfirmSubscription')).length;
    const res = await postSns(snsSubscriptionConfirmation(sns));
    expect(res).toMatchObject({ status: 200, body: { result: 'confirmed' } });
    expect(sns.hits.filter((h) => h.startsWith('/?Action=ConfirmSubscription')).length).toBe(before + 1);
    // A verified confirmation whose SubscribeURL points elsewhere is logged, not followed.
    const elsewhere = await postSns(snsSubscriptionConfirmation(sns, { subscribeBase: 'https://localhost:1' }));
    expect(elsewhere.body).toMatchObject({ result: 'logged' });
    expect(sns.hits.filter((h) => h.startsWith('/?Action=ConfirmSubscription')).length).toBe(before + 1);
  });

  it('acknowledges notifications that report no failure, and ones for unknown messages, without changes', async () => {
    const delivery = await postSns(snsNotification(sns, { notificationType: 'Delivery', mail: { source: 'x@y.test' } }));
    expect(delivery.body).toMatchObject({ result: 'ignored', reason: 'no-failure' });
    const unknown = await postSns(
      snsNotification(
        sns,
        sesBounce(
          { source: 'nobody@elsewhere.test', messageId: 'nope@nowhere.test', to: 'z@dest.test' },
          { type: 'Permanent', subType: 'General', recipient: 'z@dest.test' },
        ),
      ),
    );
    expect(unknown.body).toMatchObject({ result: 'ignored', reason: 'unknown-message' });
    expect(await t.gateway.suppressions.check(['z@dest.test'])).toEqual([]);
  });
});

describe('Mailgun webhooks', () => {
  it('applies failed/permanent: bounced and suppressed (source mailgun)', async () => {
    const m = await delivered('mg-gone@dest.test');
    const res = await postMailgun(mailgunWebhook(mailgunFailed({ recipient: 'mg-gone@dest.test', sender: m.verp, severity: 'permanent' })));
    expect(res).toMatchObject({ status: 200, body: { result: 'applied', kind: 'bounce', messageId: m.id } });
    const s = await t.status(m.id);
    expect(s.recipients['mg-gone@dest.test']).toMatchObject({ status: 'bounced', category: 'invalid-recipient' });
    expect(s.events.find((e: any) => e.type === 'bounced')).toMatchObject({
      format: 'mailgun',
      bounceType: 'hard',
      status: '5.1.1',
      remoteMta: 'mx.dest.test',
    });
    expect((await t.gateway.suppressions.check(['mg-gone@dest.test']))[0]).toMatchObject({ reason: 'invalid-recipient', source: 'mailgun', messageId: m.id });
  });

  it('records failed/temporary as delayed and a complaint as a complaint (matched by Message-ID)', async () => {
    const m = await delivered('mg-later@dest.test');
    await postMailgun(
      mailgunWebhook(
        mailgunFailed({
          recipient: 'mg-later@dest.test',
          sender: m.verp,
          severity: 'temporary',
          code: 452,
          message: '4.2.2 The email account that you tried to reach is over quota',
        }),
      ),
    );
    let s = await t.status(m.id);
    expect(s.recipients['mg-later@dest.test'].status).toBe('delivered');
    expect(s.events.at(-1)).toMatchObject({ type: 'delayed', category: 'mailbox-full', format: 'mailgun' });
    const res = await postMailgun(
      mailgunWebhook(mailgunComplained({ recipient: 'mg-later@dest.test', sender: 'someone@mailgun.test', messageId: m.messageId })),
    );
    expect(res.body).toMatchObject({ result: 'applied', kind: 'complaint' });
    s = await t.status(m.id);
    expect(s.events.at(-1)).toMatchObject({ type: 'suppressed', reason: 'complaint', source: 'mailgun' });
  });

  it('refuses a bad signature, a replayed token and a stale timestamp with 403', async () => {
    const m = await delivered('mg-safe@dest.test');
    const event = () => mailgunFailed({ recipient: 'mg-safe@dest.test', sender: m.verp, severity: 'permanent' });
    const before = { sig: await ignored('bad-signature'), replay: await ignored('replayed'), stale: await ignored('stale') };

    const wrongKey = await postMailgun(mailgunWebhook(event(), { signingKey: 'key-someone-else-00000000' }));
    expect(wrongKey.status).toBe(403);
    expect(wrongKey.body.error.details.reason).toBe('bad-signature');
    const signed = mailgunWebhook(event()) as { signature: Record<string, string> };
    const altered = await postMailgun({ ...signed, signature: { ...signed.signature, timestamp: String(Number(signed.signature.timestamp) + 1) } });
    expect(altered.status).toBe(403);

    const stale = await postMailgun(mailgunWebhook(event(), { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 }));
    expect(stale.status).toBe(403);
    expect(stale.body.error.details.reason).toBe('stale');

    // A delivered event (ignored) uses a token; the same signed body again is a replay.
    const once = mailgunWebhook({ event: 'delivered', recipient: 'mg-safe@dest.test' });
    expect((await postMailgun(once)).body).toMatchObject({ result: 'ignored', reason: 'no-failure' });
    const replay = await postMailgun(once);
    expect(replay.status).toBe(403);
    expect(replay.body.error.details.reason).toBe('replayed');

    expect(await ignored('bad-signature')).toBe(before.sig + 2);
    expect(await ignored('stale')).toBe(before.stale + 1);
    expect(await ignored('replayed')).toBe(before.replay + 1);
    expect(await types(m.id)).toEqual(['queued', 'attempt', 'delivered']);
    expect(await t.gateway.suppressions.check(['mg-safe@dest.test'])).toEqual([]);
  });

  it('uses the injected clock for the timestamp window', async () => {
    offsetMs = 10 * 60_000;
    try {
      const res = await postMailgun(mailgunWebhook({ event: 'delivered', recipient: 'x@dest.test' }));
      expect(res.body.error.details.reason).toBe('stale');
      const later = await postMailgun(mailgunWebhook({ event: 'delivered', recipient: 'x@dest.test' }, { timestamp: Math.floor(clock.now() / 1000) }));
      expect(later.body).toMatchObject({ result: 'ignored' });
    } finally {
      offsetMs = 0;
    }
  });
});

describe('ESP endpoints when not configured', () => {
  it('answer 404', async () => {
    const plain = await startTestGateway({ overrides: { roles: ['api'] } });
    try {
      const ses = await fetch(`${plain.url}/v1/feedback/ses`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', 'x-amz-sns-message-type': 'Notification' },
        body: JSON.stringify(signSns({ Type: 'Notification' }, sns.key)),
      });
      expect(ses.status).toBe(404);
      const mg = await fetch(`${plain.url}/v1/feedback/mailgun`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(mailgunWebhook({ event: 'failed' })),
      });
      expect(mg.status).toBe(404);
    } finally {
      await plain.close();
    }
  });
});
