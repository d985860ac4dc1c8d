/**
 * Intake limits end to end: two gateways sharing one Redis prefix respect one per-recipient limit
 * together; refusals over HTTP (429 + Retry-After) and SMTP (450 4.2.1 at RCPT, 451 4.7.1 at MAIL FROM)
 * queue nothing.
 */
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTP_USER, dropPrefix, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const prefix = `kurir-test-limits-${Math.random().toString(36).slice(2, 8)}`;
const intakeOnly = { roles: ['intake', 'api'] };
let a: TestGateway;
let b: TestGateway;
let capped: TestGateway;

const code = { from: 'noreply@example.test', subject: 'Your code', text: 'Code: 123456', priority: 'verification' };

async function smtpSend(t: TestGateway, to: string, extra: Record<string, unknown> = {}): Promise<{ ok: boolean; code?: number; response: string }> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.smtp, auth: SMTP_USER, tls: { rejectUnauthorized: false } });
  try {
    const info = await transport.sendMail({
      from: 'noreply@example.test',
      to,
      subject: 'code',
      text: 'Code',
      headers: { 'X-Kurir-Priority': 'verification' },
      ...extra,
    });
    return { ok: true, response: info.response };
  } catch (err) {
    const e = err as { responseCode?: number; response?: string };
    return { ok: false, code: e.responseCode, response: e.response ?? '' };
  } finally {
    transport.close();
  }
}

async function queued(t: TestGateway): Promise<number> {
  return (await t.gateway.redis.keys(`${t.config.redis.prefix}:msg:*`)).length;
}

beforeAll(async () => {
  const overrides = { ...intakeOnly, limits: { recipient: { max: 3, windowSeconds: 600 } } };
  [a, b] = await Promise.all([startTestGateway({ prefix, overrides }), startTestGateway({ prefix, overrides })]);
  capped = await startTestGateway({
    overrides: {
      ...intakeOnly,
      limits: {
        credential: { perDay: 2 },
        domains: { 'example.test': { warmup: { start: new Date(Date.now() - 86_400_000).toISOString().slice(0, 10), schedule: [1, 4] } } },
      },
    },
  });
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close(), capped?.close()]);
  await dropPrefix(prefix);
});

describe('per-recipient limit shared by two gateways', () => {
  it('accepts 3 verification messages to one address over both gateways, then answers 429 with Retry-After', async () => {
    for (const t of [a, b, a]) expect((await t.submit({ ...code, to: ['Applicant@dest.test'] })).status).toBe(202);
    const before = await queued(a);
    for (const t of [b, a]) {
      const res = await fetch(`${t.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer dev-api-key-change-me-0001' },
        body: JSON.stringify({ ...code, to: ['applicant@dest.test'] }),
      });
      expect(res.status).toBe(429);
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(500);
      expect(retryAfter).toBeLessThanOrEqual(600);
      const body = await res.json();
      expect(body.error).toMatchObject({ code: 'RECIPIENT_RATE_LIMITED', field: 'to', details: { limit: 'recipient', recipients: ['applicant@dest.test'] } });
    }
    expect(await queued(a)).toBe(before); // nothing stored or queued
    // normal-priority mail and other recipients are not affected
    expect((await a.submit({ ...code, priority: 'normal', to: ['applicant@dest.test'] })).status).toBe(202);
    expect((await b.submit({ ...code, to: ['other@dest.test'] })).status).toBe(202);
  });

  it('lets exactly 3 of 12 concurrent submissions through, whichever gateway they reach', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).submit({ ...code, to: ['storm@dest.test'] })));
    expect(results.filter((r) => r.status === 202)).toHaveLength(3);
    expect(results.filter((r) => r.status === 429)).toHaveLength(9);
  });

  it('refuses the recipient at RCPT TO over SMTP with 450 4.2.1', async () => {
    const res = await smtpSend(b, 'applicant@dest.test');
    expect(res.ok).toBe(false);
    expect(res.code).toBe(450);
    expect(res.response).toMatch(/^450 4\.2\.1 applicant@dest\.test: at most 3 verification messages per 600 s/);
    const ok = await smtpSend(b, 'fresh@dest.test');
    expect(ok.response).toMatch(/^250 2\.0\.0 Ok: queued as/);
  });

  it('names the suppression, not the used-up budget, for a recipient that is both (550 5.1.1 at RCPT TO), and counts no rate refusal for it', async () => {
    const refusals = async (): Promise<number> =>
      Number(/kurir_shaping_refusals_total\{limit="recipient"\} (\d+)/.exec(await b.gateway.metrics.render())?.[1] ?? 0);
    const before = await refusals();
    await b.gateway.suppressions.add({ address: 'applicant@dest.test', reason: 'complaint', source: 'test', at: Date.now() });
    try {
      const res = await smtpSend(b, 'applicant@dest.test');
      expect(res.ok).toBe(false);
      expect(res.code).toBe(550);
      expect(res.response).toMatch(/^550 5\.1\.1 applicant@dest\.test is suppressed \(complaint\)/);
      expect(await refusals()).toBe(before);
    } finally {
      await b.gateway.suppressions.remove('applicant@dest.test');
    }
    expect((await smtpSend(b, 'applicant@dest.test')).code).toBe(450);
    expect(await refusals()).toBe(before + 1);
  });

  it('counts refusals in kurir_shaping_refusals_total{limit="recipient"}', async () => {
    const text = await a.gateway.metrics.render();
    expect(text).toMatch(/kurir_shaping_refusals_total\{limit="recipient"\} [1-9]/);
  });
});

describe('credential and sender-domain caps', () => {
  it('caps a credential per day: 429 over HTTP, 451 4.7.1 at MAIL FROM over SMTP', async () => {
    expect((await capped.submit({ ...code, priority: 'normal', to: ['one@dest.test'] })).status).toBe(202);
    expect((await capped.submit({ ...code, priority: 'normal', to: ['two@dest.test'] })).status).toBe(202);
    const res = await fetch(`${capped.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer dev-api-key-change-me-0001' },
      body: JSON.stringify({ ...code, priority: 'normal', to: ['three@dest.test'] }),
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await res.json()).error).toMatchObject({ code: 'RATE_LIMITED', details: { limit: 'credential-daily' } });

    // The SMTP account has its own budget: one more fits the warm-up cap (day 2: 4 recipients, 2 used)...
    expect((await smtpSend(capped, 'smtp1@dest.test')).ok).toBe(true);
    // ...the next exceeds the sender domain's warm-up cap at DATA (451 4.7.1, nothing queued)...
    const over = await smtpSend(capped, 'smtp2@dest.test', { cc: 'smtp3@dest.test' });
    expect(over).toMatchObject({ ok: false, code: 451 });
    expect(over.response).toMatch(/^451 4\.7\.1 example\.test daily cap of 4 recipients \(warm-up day 2\) reached/);
    // ...and once the account's own day budget is used up, MAIL FROM is refused before any upload.
    expect((await smtpSend(capped, 'smtp4@dest.test')).ok).toBe(true);
    const mail = await smtpSend(capped, 'smtp5@dest.test');
    expect(mail).toMatchObject({ ok: false, code: 451 });
    expect(mail.response).toMatch(/^451 4\.7\.1 booking-dev: at most 2 messages per day/);
    expect(await queued(capped)).toBe(4);
  });
});
