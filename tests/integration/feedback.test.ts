/**
 * The feedback loop end to end: a real gateway (roles intake, api, worker, feedback) on loopback, DNS on
 * loopback, an SMTP receiver as the recipients' MX, and reports sent with nodemailer to the bounce MX
 * (`gateway.ports.feedback`). The gateway's clock is injected so DSNs can arrive "hours later".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verpAddress } from '../../src/lib/verp.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { dsnReturningOriginal, loadFixture } from '../helpers/feedback-fixtures.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestGateway, type TestGateway, submitDelivered } from '../helpers/test-gateway.js';
import { sendToBounceMx, type BounceMxAnswer } from '../helpers/bounce-mx-client.js';
import { closeAll } from '../helpers/close-all.js';

let dns: DnsServer;
let receiver: Receiver;
let t: TestGateway;
let offsetMs = 0;
const clock = { now: () => Date.now() + offsetMs };
const HOUR = 3_600_000;

const base = { from: 'Passport office <noreply@example.test>', subject: 'Your booking', text: 'Booking confirmed.', priority: 'normal' };

beforeAll(async () => {
  receiver = await startReceiver({
    hostname: 'mx.dest.test',
    rules: {
      'gone@dest.test': { code: 550, message: '5.1.1 The email account that you tried to reach does not exist' },
      'gone-too@dest.test': { code: 550, message: '5.1.1 The email account that you tried to reach does not exist' },
    },
  });
  dns = await startDnsServer({
    'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
    'mx.dest.test': { A: ['127.0.0.1'] },
    // A company domain hosted at Google (served by the loopback DNS only): its deliveries count as gmail.
    'corp.test': { MX: [{ exchange: 'aspmx.l.google.com', priority: 1 }] },
    'aspmx.l.google.com': { A: ['127.0.0.1'] },
  });
  t = await startTestGateway({
    dns,
    overrides: {
      roles: ['intake', 'api', 'worker', 'feedback'],
      delivery: { mxPort: receiver.port },
      feedback: { port: 0, maxMessageBytes: 64 * 1024, maxAcceptedBytes: 256 * 1024, softBounceThreshold: 3 },
    },
    gatewayOptions: { clock },
  });
  t.publishDkim(dns);
});

afterAll(() => closeAll(t, receiver, dns));

const delivered = (to: string) => submitDelivered(t, receiver, base, to);

/** Sends a report to the bounce MX as a remote MTA would (null sender for DSNs). */
async function report(to: string, raw: string, from = ''): Promise<BounceMxAnswer> {
  return sendToBounceMx(t.gateway.ports.feedback, to, raw, from);
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = (await t.gateway.metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  const hit = m.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return hit?.value ?? 0;
}

describe('feedback loop', () => {
  it('exposes the bounce MX port', () => {
    expect(t.gateway.ports.feedback).toBeGreaterThan(0);
  });

  it('suppresses a recipient refused with 550 5.1.1, and refuses the next submission to it with 422', async () => {
    const res = await t.submit({ ...base, to: ['gone@dest.test'] });
    const s = await t.waitForStatus(res.body.id, (x) => x.status === 'bounced');
    expect(s.recipients['gone@dest.test'].reply).toMatch(/^550 5\.1\.1/);
    expect(s.events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'bounced', 'suppressed']);
    expect(s.events.at(-1)).toMatchObject({ reason: 'invalid-recipient', source: 'smtp', recipients: ['gone@dest.test'] });
    const [entry] = await t.gateway.suppressions.check(['gone@dest.test']);
    expect(entry).toMatchObject({ address: 'gone@dest.test', reason: 'invalid-recipient', source: 'smtp', messageId: res.body.id });

    const again = await t.submit({ ...base, to: ['gone@dest.test'] });
    expect(again.status).toBe(422);
    expect(again.body.error.code).toBe('SUPPRESSED');
    expect(again.body.error.message).toContain('gone@dest.test');
  });

  it("gives the attempt event the transaction's 250 when one recipient is refused and another takes the message", async () => {
    const res = await t.submit({ ...base, to: ['gone-too@dest.test', 'mixed-ok@dest.test'] });
    const s = await t.waitForStatus(
      res.body.id,
      (x) => x.recipients['mixed-ok@dest.test']?.status === 'delivered' && x.recipients['gone-too@dest.test']?.status === 'bounced',
    );
    const attempt = s.events.find((e: any) => e.type === 'attempt');
    expect(attempt.reply).toMatch(/^250/);
    expect(s.events.find((e: any) => e.type === 'bounced')).toMatchObject({ recipients: ['gone-too@dest.test'], reply: expect.stringMatching(/^550 5\.1\.1/) });
  });

  it('records a DSN that arrives hours later on the timeline, bounces and suppresses the recipient', async () => {
    const m = await delivered('alice@dest.test');
    offsetMs = 5 * HOUR;
    try {
      const sent = await report(m.verp, loadFixture('postfix-dsn.eml', { verp: m.verp, rcpt: 'alice@dest.test', messageId: m.messageId }));
      expect(sent).toMatchObject({ ok: true });
      expect(sent.response).toMatch(/^250 2\.0\.0 Report applied/);
      const s = await t.status(m.id);
      expect(s.status).toBe('bounced');
      expect(s.recipients['alice@dest.test']).toMatchObject({ status: 'bounced', category: 'invalid-recipient' });
      const bounce = s.events.find((e: any) => e.type === 'bounced');
      expect(bounce).toMatchObject({
        async: true,
        category: 'invalid-recipient',
        bounceType: 'hard',
        status: '5.1.1',
        remoteMta: 'mx.example.net',
        format: 'rfc3464',
        recipients: ['alice@dest.test'],
      });
      expect(bounce.reply).toMatch(/^550 5\.1\.1 <alice@dest\.test>: Recipient address rejected/);
      const delivery = s.events.find((e: any) => e.type === 'delivered');
      expect(Date.parse(bounce.at) - Date.parse(delivery.at)).toBeGreaterThanOrEqual(5 * HOUR - 60_000);
      expect(s.events.at(-1)).toMatchObject({ type: 'suppressed', reason: 'invalid-recipient', source: 'dsn' });
      expect((await t.gateway.suppressions.check(['alice@dest.test']))[0]).toMatchObject({ reason: 'invalid-recipient', source: 'dsn', messageId: m.id });
      expect(await metric('kurir_feedback_bounces_total', { provider: 'other', category: 'invalid-recipient', type: 'hard' })).toBeGreaterThanOrEqual(1);
      expect((await t.submit({ ...base, to: ['alice@dest.test'] })).status).toBe(422);
    } finally {
      offsetMs = 0;
    }
  });

  it('counts a DSN and a complaint for a company domain hosted at Google as gmail, the provider its delivery was counted under', async () => {
    const bounced = await delivered('frank@corp.test');
    const complained = await delivered('gina@corp.test');
    const delivery = { provider: 'gmail', result: 'delivered', category: 'none' };
    expect(await metric('kurir_delivery_attempts_total', delivery)).toBeGreaterThanOrEqual(2);
    const hard = { category: 'invalid-recipient', type: 'hard' };
    const before = {
      gmailBounces: await metric('kurir_feedback_bounces_total', { provider: 'gmail', ...hard }),
      otherBounces: await metric('kurir_feedback_bounces_total', { provider: 'other', ...hard }),
      gmailComplaints: await metric('kurir_feedback_complaints_total', { provider: 'gmail' }),
      otherComplaints: await metric('kurir_feedback_complaints_total', { provider: 'other' }),
    };
    const values = { verp: bounced.verp, rcpt: 'frank@corp.test', messageId: bounced.messageId };
    expect(await report(bounced.verp, loadFixture('postfix-dsn.eml', values))).toMatchObject({ ok: true });
    const arf = loadFixture('arf-outlook-jmrp.eml', { verp: complained.verp, rcpt: 'gina@corp.test', messageId: complained.messageId });
    expect(await report('fbl@bounce.example.test', arf, 'staff@hotmail.com')).toMatchObject({ ok: true });
    expect((await t.status(bounced.id)).recipients['frank@corp.test']).toMatchObject({ status: 'bounced', category: 'invalid-recipient' });
    expect({
      gmailBounces: await metric('kurir_feedback_bounces_total', { provider: 'gmail', ...hard }),
      otherBounces: await metric('kurir_feedback_bounces_total', { provider: 'other', ...hard }),
      gmailComplaints: await metric('kurir_feedback_complaints_total', { provider: 'gmail' }),
      otherComplaints: await metric('kurir_feedback_complaints_total', { provider: 'other' }),
    }).toEqual({ ...before, gmailBounces: before.gmailBounces + 1, gmailComplaints: before.gmailComplaints + 1 });
  });

  it('records an ARF complaint and suppresses the complainer (reason complaint)', async () => {
    const m = await delivered('carol@dest.test');
    const before = await metric('kurir_feedback_complaints_total', { provider: 'other' });
    const sent = await report(
      'fbl@bounce.example.test',
      loadFixture('arf-outlook-jmrp.eml', { verp: m.verp, rcpt: 'carol@dest.test', messageId: m.messageId }),
      'staff@hotmail.com',
    );
    expect(sent).toMatchObject({ ok: true });
    const s = await t.status(m.id);
    expect(s.status).toBe('delivered');
    expect(s.events.find((e: any) => e.type === 'complained')).toMatchObject({
      recipients: ['carol@dest.test'],
      feedbackType: 'abuse',
      userAgent: 'Hotmail FBL',
    });
    expect(s.events.at(-1)).toMatchObject({ type: 'suppressed', reason: 'complaint', source: 'arf' });
    expect((await t.gateway.suppressions.check(['carol@dest.test']))[0]).toMatchObject({ reason: 'complaint', source: 'arf', messageId: m.id });
    expect(await metric('kurir_feedback_complaints_total', { provider: 'other' })).toBe(before + 1);
    expect(await metric('kurir_suppressions_added_total', { reason: 'complaint' })).toBeGreaterThanOrEqual(1);
  });

  it('matches a Yahoo complaint by the signed VERP in its Original-Mail-From (tests/integration/feedback-trust.test.ts: reports without one)', async () => {
    const m = await delivered('dave@dest.test');
    const sent = await report(
      'fbl@bounce.example.test',
      loadFixture('arf-yahoo.eml', { verp: m.verp, rcpt: 'dave@dest.test', messageId: m.messageId }),
      'feedback@arf.mail.yahoo.com',
    );
    expect(sent).toMatchObject({ ok: true });
    const s = await t.status(m.id);
    expect(s.events.find((e: any) => e.type === 'complained')).toMatchObject({ recipients: ['dave@dest.test'], feedbackType: 'abuse' });
    expect((await t.gateway.suppressions.check(['dave@dest.test']))[0]).toMatchObject({ reason: 'complaint' });
  });

  it('refuses a forged VERP address at RCPT with 550 and suppresses nothing', async () => {
    const m = await delivered('erin@dest.test');
    const forged = m.verp.replace(/\.([0-9a-f]+)@/, (_all, tok: string) => `.${tok.split('').reverse().join('')}@`);
    expect(forged).not.toBe(m.verp);
    const before = await metric('kurir_feedback_reports_ignored_total', { reason: 'forged-verp' });
    const sent = await report(forged, loadFixture('rfc3464-failed.eml', { verp: forged, rcpt: 'erin@dest.test', messageId: m.messageId }));
    expect(sent).toMatchObject({ ok: false, code: 550 });
    expect(await metric('kurir_feedback_reports_ignored_total', { reason: 'forged-verp' })).toBe(before + 1);
    expect(await t.gateway.suppressions.check(['erin@dest.test'])).toEqual([]);
    expect((await t.status(m.id)).events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'delivered']);
  });

  it('refuses relaying to another domain and unknown local parts with 550', async () => {
    const relay = await report('someone@elsewhere.test', 'Subject: relay?\r\n\r\nhello\r\n', 'spammer@elsewhere.test');
    expect(relay).toMatchObject({ ok: false, code: 550 });
    expect(relay.response).toMatch(/^550 5\.7\.1/);
    const unknown = await report('postmaster-x@bounce.example.test', 'Subject: hi\r\n\r\nhello\r\n');
    expect(unknown).toMatchObject({ ok: false, code: 550 });
    expect(unknown.response).toMatch(/^550 5\.1\.1/);
  });

  it('answers 250 for unusable reports (truncated, unknown message, auto-reply) and changes nothing', async () => {
    const m = await delivered('frank@dest.test');
    const values = { verp: m.verp, rcpt: 'frank@dest.test', messageId: m.messageId };
    const truncated = await report(m.verp, loadFixture('rfc3464-truncated.eml', values));
    expect(truncated).toMatchObject({ ok: true });
    expect(truncated.response).toMatch(/not used \(truncated\)/);
    const auto = await report(m.verp, loadFixture('auto-reply.eml', values));
    expect(auto.response).toMatch(/not used \(auto-reply\)/);
    const malformed = await report(m.verp, loadFixture('malformed-mime.eml', values));
    expect(malformed).toMatchObject({ ok: true });

    // A VERP that verifies, for a message that is not (or no longer) stored.
    const secret = (await t.gateway.redis.get(`${t.config.redis.prefix}:verp-secret`))!;
    const ghost = verpAddress('01hzzzzzzzzzzzzzzzzzzzzzzz', t.config.bounce.domain, secret);
    const unknown = await report(ghost, loadFixture('rfc3464-failed.eml', { ...values, verp: ghost }));
    expect(unknown.response).toMatch(/not used \(unknown-message\)/);

    expect(await t.gateway.suppressions.check(['frank@dest.test'])).toEqual([]);
    expect((await t.status(m.id)).events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'delivered']);
    expect(await metric('kurir_feedback_reports_ignored_total', { reason: 'truncated' })).toBeGreaterThanOrEqual(1);
    expect(await metric('kurir_feedback_reports_ignored_total', { reason: 'unknown-message' })).toBeGreaterThanOrEqual(1);
  });

  it('reads a DSN over maxMessageBytes (a whole original returned) from its first part and applies it; 552 over maxAcceptedBytes', async () => {
    // Until 1 Dec 2026 any report over feedback.maxMessageBytes was refused with 552 and the bounce was lost.
    const m = await delivered('gina@dest.test');
    const values = { verp: m.verp, rcpt: 'gina@dest.test', messageId: m.messageId };
    const large = dsnReturningOriginal(values, 150 * 1024);
    expect(large.length).toBeGreaterThan(t.config.feedback.maxMessageBytes);
    const sent = await report(m.verp, large);
    expect(sent.response).toMatch(/^250 2\.0\.0 Report applied/);
    expect((await t.status(m.id)).recipients['gina@dest.test']).toMatchObject({ status: 'bounced', category: 'invalid-recipient' });
    expect((await t.gateway.suppressions.check(['gina@dest.test']))[0]).toMatchObject({ reason: 'invalid-recipient', source: 'dsn' });

    const n = await delivered('gus@dest.test');
    const huge = dsnReturningOriginal({ ...values, verp: n.verp, rcpt: 'gus@dest.test' }, 300 * 1024);
    expect(huge.length).toBeGreaterThan(t.config.feedback.maxAcceptedBytes);
    expect(await report(n.verp, huge)).toMatchObject({ ok: false, code: 552 });
    expect(await t.gateway.suppressions.check(['gus@dest.test'])).toEqual([]);
  });

  it('refuses a DMARC report over maxMessageBytes with 552 5.3.4 (a cut attachment cannot be read)', async () => {
    const raw = `From: reports@reporter.test\r\nTo: dmarc@${t.config.bounce.domain}\r\nSubject: Report\r\n\r\n${'QUJD'.repeat(19).concat('\r\n').repeat(1200)}`;
    const sent = await report(`dmarc@${t.config.bounce.domain}`, raw, 'reports@reporter.test');
    expect(sent).toMatchObject({ ok: false, code: 552 });
    expect(sent.response).toMatch(/5\.3\.4 Message too big: at most 65536 bytes/);
  });

  it('never suppresses for a sender-side failure (DMARC policy), but counts it', async () => {
    const m = await delivered('hank@dest.test');
    const before = await metric('kurir_feedback_bounces_total', { provider: 'other', category: 'auth-failure', type: 'hard' });
    const authBefore = await metric('kurir_delivery_auth_failures_total', { provider: 'other', cause: 'dmarc' });
    const sent = await report(m.verp, loadFixture('rfc3464-dmarc-policy.eml', { verp: m.verp, rcpt: 'hank@dest.test', messageId: m.messageId }));
    expect(sent).toMatchObject({ ok: true });
    const s = await t.status(m.id);
    expect(s.events.find((e: any) => e.type === 'bounced')).toMatchObject({ async: true, category: 'auth-failure', cause: 'dmarc', status: '5.7.26' });
    expect(s.events.some((e: any) => e.type === 'suppressed')).toBe(false);
    expect(await t.gateway.suppressions.check(['hank@dest.test'])).toEqual([]);
    expect(await metric('kurir_feedback_bounces_total', { provider: 'other', category: 'auth-failure', type: 'hard' })).toBe(before + 1);
    expect(await metric('kurir_delivery_auth_failures_total', { provider: 'other', cause: 'dmarc' })).toBe(authBefore + 1);
  });

  it('bounces and suppresses on a plain-text 550 5.1.1 whose returned copy of the message says "has not yet been delivered"', async () => {
    // Until 1 Dec 2026 the booking text in the copy made the bounce a warning: `delayed`, nothing suppressed.
    const m = await delivered('nobody@dest.test');
    const exim = loadFixture('exim-failed.eml', { verp: m.verp, rcpt: 'nobody@dest.test', messageId: m.messageId });
    const sent = await report(m.verp, `${exim.trimEnd()}\r\nIf your passport has not yet been delivered by Friday, call us.\r\n`);
    expect(sent.response).toMatch(/^250 2\.0\.0 Report applied/);
    const s = await t.status(m.id);
    expect(s.recipients['nobody@dest.test']).toMatchObject({ status: 'bounced', category: 'invalid-recipient' });
    expect(s.events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'delivered', 'bounced', 'suppressed']);
    expect((await t.gateway.suppressions.check(['nobody@dest.test']))[0]).toMatchObject({ reason: 'invalid-recipient', source: 'dsn', messageId: m.id });
  });

  it("does not lend one recipient's 550 5.1.1 from the text part to another recipient's entry without Diagnostic-Code", async () => {
    // Until 1 Dec 2026 liam@ (failed 4.0.0, no Diagnostic-Code) got kate@'s reply and was suppressed at once.
    const res = await t.submit({ ...base, to: ['kate@dest.test', 'liam@dest.test'] });
    const state = await t.waitForStatus(res.body.id, (x) => x.status === 'delivered');
    const verp = receiver.messages.find((x) => x.rcptTo.includes('liam@dest.test'))!.mailFrom;
    const raw = [
      'From: MAILER-DAEMON@mx.dest.test',
      `To: ${verp}`,
      'Subject: Undelivered Mail Returned to Sender',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'This is the mail system at host mx.dest.test.',
      '',
      '<kate@dest.test>: host mx2.dest.test[192.0.2.7] said: 550 5.1.1 <kate@dest.test>: User unknown (in reply to RCPT TO command)',
      '',
      '--b1',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.dest.test',
      '',
      'Final-Recipient: rfc822; kate@dest.test',
      'Action: failed',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 <kate@dest.test>: User unknown',
      '',
      'Final-Recipient: rfc822; liam@dest.test',
      'Action: failed',
      'Status: 4.0.0',
      '',
      '--b1',
      'Content-Type: text/rfc822-headers',
      '',
      `Return-Path: <${verp}>`,
      `Message-ID: ${state.messageId}`,
      '',
      '--b1--',
      '',
    ].join('\r\n');
    expect((await report(verp, raw)).response).toMatch(/^250 2\.0\.0 Report applied/);
    const s = await t.status(res.body.id);
    const bounced = (address: string) => s.events.find((e: any) => e.type === 'bounced' && e.recipients.includes(address));
    expect(bounced('kate@dest.test')).toMatchObject({ category: 'invalid-recipient', bounceType: 'hard' });
    expect(bounced('liam@dest.test')).toMatchObject({ bounceType: 'soft', status: '4.0.0', reply: 'Status: 4.0.0' });
    expect((await t.gateway.suppressions.check(['kate@dest.test']))[0]).toMatchObject({ reason: 'invalid-recipient', source: 'dsn' });
    expect(await t.gateway.suppressions.check(['liam@dest.test'])).toEqual([]);
  });

  it('records a delayed DSN without changing the recipient state', async () => {
    const m = await delivered('ivy@dest.test');
    await report(m.verp, loadFixture('rfc3464-delayed.eml', { verp: m.verp, rcpt: 'ivy@dest.test', messageId: m.messageId }));
    const s = await t.status(m.id);
    expect(s.recipients['ivy@dest.test'].status).toBe('delivered');
    expect(s.events.at(-1)).toMatchObject({ type: 'delayed', status: '4.4.1', recipients: ['ivy@dest.test'] });
  });

  it('suppresses after softBounceThreshold soft bounces of different messages, not before', async () => {
    const fixture = (m: { verp: string; messageId: string }) =>
      loadFixture('postfix-plain.eml', { verp: m.verp, rcpt: 'full@dest.test', messageId: m.messageId });
    for (let i = 1; i <= 3; i++) {
      const m = await delivered('full@dest.test');
      receiver.messages.splice(0, receiver.messages.length, ...receiver.messages.filter((x) => !x.rcptTo.includes('full@dest.test')));
      await report(m.verp, fixture(m));
      await report(m.verp, fixture(m)); // the same report twice counts once
      const s = await t.status(m.id);
      expect(s.events.find((e: any) => e.type === 'bounced')).toMatchObject({ category: 'mailbox-full', bounceType: 'soft' });
      const hits = await t.gateway.suppressions.check(['full@dest.test']);
      if (i < 3) expect(hits, `after ${i} soft bounce(s)`).toEqual([]);
      else expect(hits[0]).toMatchObject({ reason: 'mailbox-full', source: 'dsn' });
    }
  });
});
