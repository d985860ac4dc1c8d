/**
 * Which reports the bounce MX trusts (docs/feedback-trust.md), end to end: a real gateway on loopback with
 * a registered feedback-loop source (`feedback.fblSources.dkimDomains`), DNS on loopback publishing the
 * source's DKIM key, and ARF reports and DSNs sent with nodemailer to fbl@<bounce domain>.
 */
import { generateKeyPairSync } from 'node:crypto';
import { dkimSignOnce } from '../helpers/mailauth-sign.js';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { loadFixture } from '../helpers/feedback-fixtures.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestGateway, submitDelivered, type TestGateway } from '../helpers/test-gateway.js';
import { closeAll } from '../helpers/close-all.js';

let dns: DnsServer;
let receiver: Receiver;
let t: TestGateway;
const FBL = 'fbl@bounce.example.test';
const base = { from: 'Passport office <noreply@example.test>', subject: 'Your booking', text: 'Booking confirmed.', priority: 'normal' };

const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privateKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicKey = keys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

beforeAll(async () => {
  receiver = await startReceiver({ hostname: 'mx.dest.test' });
  dns = await startDnsServer({
    'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
    'mx.dest.test': { A: ['127.0.0.1'] },
    // The registered feedback loop's key, and one of a domain that is not registered.
    's1._domainkey.fbl.example.net': { TXT: [`v=DKIM1; k=rsa; p=${publicKey}`] },
    's1._domainkey.reports.example.org': { TXT: [`v=DKIM1; k=rsa; p=${publicKey}`] },
    // The same key under a second selector whose DNS fails until the test lets it answer.
    's2._domainkey.fbl.example.net': { TXT: [`v=DKIM1; k=rsa; p=${publicKey}`], servfail: true },
  });
  t = await startTestGateway({
    dns,
    overrides: {
      roles: ['intake', 'api', 'worker', 'feedback'],
      delivery: { mxPort: receiver.port },
      feedback: { port: 0, fblSources: { dkimDomains: ['fbl.example.net'] } },
    },
  });
  t.publishDkim(dns);
});

afterAll(() => closeAll(t, receiver, dns));

const delivered = (to: string) => submitDelivered(t, receiver, base, to);

/** A report DKIM-signed by `domain` with the test key. */
async function signed(raw: string, domain: string, selector = 's1'): Promise<string> {
  const r = await dkimSignOnce(raw, {
    signatureData: [{ signingDomain: domain, selector, privateKey, algorithm: 'rsa-sha256', canonicalization: 'relaxed/relaxed' }],
  });
  if (r.errors.length) throw r.errors[0].err;
  return r.signatures + raw;
}

/** Sends a report to the bounce MX; resolves with the server's reply text. */
async function report(raw: string, to = FBL, from = 'feedback@arf.mail.yahoo.com'): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.feedback, secure: false, tls: { rejectUnauthorized: false } });
  try {
    return (await transport.sendMail({ envelope: { from, to: [to] }, raw })).response;
  } finally {
    transport.close();
  }
}

async function ignored(reason: string): Promise<number> {
  const m = (await t.gateway.metrics.registry.getSingleMetric('kurir_feedback_reports_ignored_total')?.get())?.values ?? [];
  return m.find((v) => v.labels.reason === reason)?.value ?? 0;
}

/** The message's timeline and the suppression list are as delivery left them. */
async function unchanged(id: string, ...addresses: string[]): Promise<void> {
  expect((await t.status(id)).events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'delivered']);
  expect(await t.gateway.suppressions.check(addresses)).toEqual([]);
}

describe('feedback trust', () => {
  it('suppresses nothing for a crafted complaint naming an address that is not a recipient of the message (signed VERP or not)', async () => {
    const m = await delivered('alice@dest.test');
    const before = await ignored('unknown-recipient');
    // The original's Return-Path is the message's real, signed VERP; the complaint names someone else.
    const reply = await report(loadFixture('arf-yahoo.eml', { verp: m.verp, rcpt: 'victim@other.test', messageId: m.messageId }));
    expect(reply).toMatch(/not used \(unknown-recipient\)/);
    expect(await ignored('unknown-recipient')).toBe(before + 1);
    await unchanged(m.id, 'alice@dest.test', 'victim@other.test');
  });

  it('suppresses the complainer of an ARF report whose original carries the signed VERP', async () => {
    const m = await delivered('bob@dest.test');
    const reply = await report(loadFixture('arf-yahoo.eml', { verp: m.verp, rcpt: 'bob@dest.test', messageId: m.messageId }));
    expect(reply).toMatch(/Report applied/);
    const s = await t.status(m.id);
    expect(s.events.find((e: any) => e.type === 'complained')).toMatchObject({ recipients: ['bob@dest.test'], feedbackType: 'abuse' });
    expect((await t.gateway.suppressions.check(['bob@dest.test']))[0]).toMatchObject({ reason: 'complaint', source: 'arf', messageId: m.id });
  });

  it('ignores and counts a complaint whose VERP token is forged', async () => {
    const m = await delivered('carol@dest.test');
    const forged = m.verp.replace(/\.([0-9a-f]+)@/, (_all, tok: string) => `.${tok.split('').reverse().join('')}@`);
    expect(forged).not.toBe(m.verp);
    const before = await ignored('forged-verp');
    const reply = await report(loadFixture('arf-yahoo.eml', { verp: forged, rcpt: 'carol@dest.test', messageId: m.messageId }));
    expect(reply).toMatch(/not used \(forged-verp\)/);
    expect(await ignored('forged-verp')).toBe(before + 1);
    await unchanged(m.id, 'carol@dest.test');
  });

  it('ignores and counts a complaint without a VERP from an unregistered source, even with the right Message-ID', async () => {
    const m = await delivered('dave@dest.test');
    const raw = loadFixture('arf-yahoo.eml', { verp: 'nobody@elsewhere.test', rcpt: 'dave@dest.test', messageId: m.messageId });
    const before = await ignored('unverified-complaint');
    expect(await report(raw)).toMatch(/not used \(unverified-complaint\)/);
    // Signed, but by a domain that is not registered.
    expect(await report(await signed(raw, 'reports.example.org'))).toMatch(/not used \(unverified-complaint\)/);
    // Signed by the registered domain, then altered: the signature fails.
    const tampered = (await signed(raw, 'fbl.example.net')).replace('Feedback-Type: abuse', 'Feedback-Type: fraud');
    expect(await report(tampered)).toMatch(/not used \(unverified-complaint\)/);
    expect(await ignored('unverified-complaint')).toBe(before + 3);
    await unchanged(m.id, 'dave@dest.test');
  });

  it('uses a complaint without a VERP when the registered feedback loop signed it (DKIM pass)', async () => {
    const m = await delivered('erin@dest.test');
    const raw = loadFixture('arf-yahoo.eml', { verp: 'nobody@elsewhere.test', rcpt: 'erin@dest.test', messageId: m.messageId });
    expect(await report(await signed(raw, 'fbl.example.net'))).toMatch(/Report applied/);
    expect((await t.gateway.suppressions.check(['erin@dest.test']))[0]).toMatchObject({ reason: 'complaint', source: 'arf' });
    // Even a registered source is held to the recipient it names.
    const other = await delivered('frank@dest.test');
    const crafted = loadFixture('arf-yahoo.eml', { verp: 'nobody@elsewhere.test', rcpt: 'victim@other.test', messageId: other.messageId });
    expect(await report(await signed(crafted, 'fbl.example.net'))).toMatch(/not used \(unknown-recipient\)/);
    await unchanged(other.id, 'frank@dest.test', 'victim@other.test');
  });

  it('answers 451 while the registered source’s DKIM key cannot be looked up, and applies the report once it can', async () => {
    const m = await delivered('grace@dest.test');
    const raw = await signed(
      loadFixture('arf-yahoo.eml', { verp: 'nobody@elsewhere.test', rcpt: 'grace@dest.test', messageId: m.messageId }),
      'fbl.example.net',
      's2',
    );
    const before = await ignored('unverified-complaint');
    const refused = await report(raw).then(
      () => null,
      (err: { responseCode?: number; response?: string }) => err,
    );
    expect(refused).toMatchObject({ responseCode: 451, response: expect.stringMatching(/^451 4\.3\.0 /) });
    expect(await ignored('unverified-complaint')).toBe(before);
    await unchanged(m.id, 'grace@dest.test');
    // DNS answers again: the sender's retry is applied.
    dns.servfail('s2._domainkey.fbl.example.net', false);
    expect(await report(raw)).toMatch(/Report applied/);
    expect((await t.gateway.suppressions.check(['grace@dest.test']))[0]).toMatchObject({ reason: 'complaint', source: 'arf' });
  });

  it('ignores and counts a bounce to the fbl address that names its message only by Message-ID', async () => {
    const m = await delivered('gina@dest.test');
    const before = await ignored('unverified-bounce');
    const reply = await report(loadFixture('rfc3464-failed.eml', { verp: 'nobody@elsewhere.test', rcpt: 'gina@dest.test', messageId: m.messageId }), FBL, '');
    expect(reply).toMatch(/not used \(unverified-bounce\)/);
    expect(await ignored('unverified-bounce')).toBe(before + 1);
    await unchanged(m.id, 'gina@dest.test');
  });
});
