/**
 * SNS signature verification against messages signed with a locally generated RSA key and its
 * self-signed certificate, served (for the fetcher tests) by an HTTPS server on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalString,
  checkSnsUrl,
  createCertFetcher,
  parseSnsMessage,
  verifySnsMessage,
  type CertFetcher,
  type SnsMessage,
} from '../../../src/esp/sns-signature.js';
import { snsNotification, snsStringToSign, snsSubscriptionConfirmation, startSnsServer, type SnsServer } from '../../helpers/esp.js';

const LOCAL = /^127\.0\.0\.1$/;
const AWS = /^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$/;

let sns: SnsServer;
let fetchCert: CertFetcher & { calls: string[] };

beforeAll(async () => {
  sns = await startSnsServer();
  const calls: string[] = [];
  fetchCert = Object.assign(
    async (url: string) => {
      calls.push(url);
      return sns.cert;
    },
    { calls },
  );
});
afterAll(async () => {
  await sns?.close();
});

function message(fields: Record<string, string>): SnsMessage {
  const parsed = parseSnsMessage(fields);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed.message;
}

const verify = (m: SnsMessage, opts: { certHost?: RegExp; now?: number; fetch?: CertFetcher } = {}) =>
  verifySnsMessage(m, { fetchCert: opts.fetch ?? fetchCert, certHost: opts.certHost ?? LOCAL, now: opts.now ?? Date.now() });

describe('SNS canonical string', () => {
  it('lists the signed fields of a Notification in order, Subject only when present', () => {
    const base = {
      Type: 'Notification',
      MessageId: 'id-1',
      TopicArn: 'arn:t',
      Message: 'hello',
      Timestamp: '2024-01-01T00:00:00.000Z',
      SignatureVersion: '1',
      Signature: 'x',
      SigningCertURL: 'https://h/c.pem',
    };
    expect(canonicalString(message(base))).toBe('Message\nhello\nMessageId\nid-1\nTimestamp\n2024-01-01T00:00:00.000Z\nTopicArn\narn:t\nType\nNotification\n');
    expect(canonicalString(message({ ...base, Subject: 'subj' }))).toBe(
      'Message\nhello\nMessageId\nid-1\nSubject\nsubj\nTimestamp\n2024-01-01T00:00:00.000Z\nTopicArn\narn:t\nType\nNotification\n',
    );
  });

  it('agrees with the independently written test helper for every message type', () => {
    const n = snsNotification(sns, { a: 1 }, { subject: 'Amazon SES Email Event Notification' });
    expect(canonicalString(message(n))).toBe(snsStringToSign(n));
    const c = snsSubscriptionConfirmation(sns);
    expect(canonicalString(message(c))).toBe(snsStringToSign(c));
    expect(canonicalString(message(c))).toMatch(
      /^Message\n[\s\S]*\nMessageId\n[^\n]+\nSubscribeURL\n[^\n]+\nTimestamp\n[^\n]+\nToken\n[^\n]+\nTopicArn\n[^\n]+\nType\nSubscriptionConfirmation\n$/,
    );
  });

  it('refuses envelopes without the signed fields', () => {
    expect(parseSnsMessage({ Type: 'Notification' })).toHaveProperty('error');
    expect(parseSnsMessage('text')).toHaveProperty('error');
    const c = snsSubscriptionConfirmation(sns);
    const { Token: _t, ...noToken } = c;
    expect(parseSnsMessage(noToken)).toHaveProperty('error');
    expect(parseSnsMessage({ ...snsNotification(sns, 'x'), Type: 'Other' })).toHaveProperty('error');
  });
});

describe('SNS signature verification', () => {
  it('accepts SignatureVersion 1 (SHA1withRSA) and 2 (SHA256withRSA)', async () => {
    expect(await verify(message(snsNotification(sns, { hello: 'v1' }, { version: '1' })))).toEqual({ ok: true });
    expect(await verify(message(snsNotification(sns, { hello: 'v2' }, { version: '2', subject: 'with subject' })))).toEqual({ ok: true });
    expect(await verify(message(snsSubscriptionConfirmation(sns)))).toEqual({ ok: true });
  });

  it('fails when any signed field is changed', async () => {
    const signed = snsNotification(sns, { notificationType: 'Bounce' }, { subject: 's' });
    for (const [field, value] of [
      ['Message', '{"notificationType":"Complaint"}'],
      ['MessageId', 'other-id'],
      ['Subject', 't'],
      ['Timestamp', new Date(Date.now() + 1000).toISOString()],
      ['TopicArn', 'arn:aws:sns:eu-west-1:123456789012:other'],
    ] as const) {
      expect(await verify(message({ ...signed, [field]: value })), field).toMatchObject({ ok: false, reason: 'bad-signature' });
    }
    const { Subject: _s, ...withoutSubject } = signed;
    expect(await verify(message(withoutSubject))).toMatchObject({ ok: false, reason: 'bad-signature' });
    // A v1 signature claimed as v2 (and vice versa) does not verify either.
    expect(await verify(message({ ...signed, SignatureVersion: '1' }))).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(await verify(message({ ...signed, Signature: 'AAAA' }))).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a signing certificate URL whose host is not allowed, or that is not https, without fetching it', async () => {
    fetchCert.calls.length = 0;
    const elsewhere = snsNotification(sns, { x: 1 }, { certUrl: sns.certUrl.replace('127.0.0.1', 'localhost') });
    expect(await verify(message(elsewhere))).toMatchObject({ ok: false, reason: 'bad-cert-url' });
    const plain = snsNotification(sns, { x: 1 }, { certUrl: sns.certUrl.replace('https:', 'http:') });
    expect(await verify(message(plain))).toMatchObject({ ok: false, reason: 'bad-cert-url' });
    // With the production pattern, a loopback URL is refused even though the signature is fine.
    expect(await verify(message(snsNotification(sns, { x: 1 })), { certHost: AWS })).toMatchObject({ ok: false, reason: 'bad-cert-url' });
    expect(fetchCert.calls).toEqual([]);

    expect(checkSnsUrl('https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem', AWS, { pem: true })).toBeNull();
    expect(checkSnsUrl('https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem', AWS, { pem: true })).toBeNull();
    expect(checkSnsUrl('https://sns.eu-west-1.amazonaws.com.evil.test/x.pem', AWS, { pem: true })).toMatch(/not an allowed SNS host/);
    expect(checkSnsUrl('https://evil.test/sns.eu-west-1.amazonaws.com/x.pem', AWS, { pem: true })).toMatch(/not an allowed SNS host/);
    expect(checkSnsUrl('https://user@sns.eu-west-1.amazonaws.com/x.pem', AWS, { pem: true })).toMatch(/credentials/);
    expect(checkSnsUrl('https://sns.eu-west-1.amazonaws.com/?Action=x', AWS, { pem: true })).toMatch(/\.pem/);
    expect(checkSnsUrl('not a url', AWS)).toMatch(/not a URL/);
  });

  it('refuses unknown signature versions and certificates outside their validity period', async () => {
    const m = message(snsNotification(sns, { x: 1 }));
    expect(await verify({ ...m, SignatureVersion: '3' })).toMatchObject({ ok: false, reason: 'unsupported-version' });
    expect(await verify(m, { now: Date.now() + 30 * 86_400_000 })).toMatchObject({ ok: false, reason: 'cert-expired' });
  });

  it('fetches the certificate over HTTPS once and serves it from the in-process cache', async () => {
    const fetcher = createCertFetcher(sns.httpGet);
    const before = sns.hits.filter((h) => h.endsWith('.pem')).length;
    for (let i = 0; i < 3; i++) expect(await verify(message(snsNotification(sns, { n: i })), { fetch: fetcher })).toEqual({ ok: true });
    expect(sns.hits.filter((h) => h.endsWith('.pem')).length - before).toBe(1);
  });

  it('reports an unreachable or non-PEM certificate as cert-unavailable, and does not cache the failure', async () => {
    const fetcher = createCertFetcher(sns.httpGet);
    const missing = snsNotification(sns, { x: 1 }, { certUrl: `${sns.base}/missing.pem` });
    expect(await verify(message(missing), { fetch: fetcher })).toMatchObject({ ok: false, reason: 'cert-unavailable' });
    const hits = sns.hits.length;
    expect(await verify(message(missing), { fetch: fetcher })).toMatchObject({ ok: false, reason: 'cert-unavailable' });
    expect(sns.hits.length).toBe(hits + 1);
    const notPem = createCertFetcher(async () => ({ status: 200, body: '<html>' }));
    expect(await verify(message(snsNotification(sns, { x: 1 })), { fetch: notPem })).toMatchObject({ ok: false, reason: 'cert-unavailable' });
  });
});
