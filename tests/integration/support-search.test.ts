/**
 * Support's search API beyond the recipient address: by booking reference (JSON metadata, an
 * X-Kurir-Reference header over SMTP), and the resend outlook of each address (suppression and the
 * per-recipient limit, read without consuming), against a real gateway on loopback with real Redis.
 */
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { MAX_REFERENCE_LENGTH } from '../../src/intake/reference.js';
import { newMessageId } from '../../src/lib/ids.js';
import { ConsoleClient } from '../helpers/console-client.js';
import { messageRecord } from '../helpers/message-record.js';
import { ADMIN_KEY, adminRequest, SMTP_USER, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;
const code = { from: 'noreply@example.test', subject: 'Your code', text: 'Code: 123456', priority: 'verification' };

function search(query: string): Promise<{ status: number; body: any }> {
  return adminRequest(t.url, 'GET', `/v1/messages?${query}`);
}

gatewayForFile({ overrides: { roles: ['intake', 'api'], limits: { recipient: { max: 2, windowSeconds: 600 } } } }, (g) => {
  t = g;
});

describe('search by booking reference', () => {
  it('finds messages by the metadata reference, case-insensitively, newest first, and indexes it with the retention', async () => {
    const first = await t.submit({ ...code, to: ['ref-one@example.org'], metadata: { reference: 'BK-2026-0042', office: 'north' } });
    const second = await t.submit({ ...code, priority: 'normal', to: ['ref-two@example.org'], metadata: { reference: 'BK-2026-0042' } });
    await t.submit({ ...code, to: ['ref-three@example.org'], metadata: { reference: 'BK-2026-0043' } });
    expect([first.status, second.status]).toEqual([202, 202]);
    const found = await search('reference=bk-2026-0042');
    expect(found.status).toBe(200);
    expect(found.body.items.map((m: { id: string }) => m.id)).toEqual([second.body.id, first.body.id]);
    expect(found.body.items[1]).toMatchObject({ reference: 'BK-2026-0042', to: ['ref-one@example.org'], subject: 'Your code' });
    expect(found.body.items[1].recipient).toBeUndefined();
    // The outlook of each recipient of the page.
    expect(found.body.resend.map((r: { address: string }) => r.address).sort()).toEqual(['ref-one@example.org', 'ref-two@example.org']);
    const ttl = await t.gateway.redis.ttl(`${t.config.redis.prefix}:ref-msgs:bk-2026-0042`);
    expect(ttl).toBeGreaterThan(t.config.retention.days * 86_400);
    expect((await search('reference=BK-nothing')).body).toMatchObject({ items: [], nextCursor: null, resend: [] });
  });

  it('takes the reference from an X-Kurir-Reference header over SMTP and shows it in the metadata', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.smtp, auth: SMTP_USER, tls: { rejectUnauthorized: false } });
    const info = await transport.sendMail({
      from: 'noreply@example.test',
      to: 'smtp-ref@example.org',
      subject: 'code',
      text: 'Code',
      headers: { 'X-Kurir-Reference': 'SMTP-77' },
    });
    transport.close();
    const id = /queued as (\S+)/.exec(info.response)?.[1];
    const found = await search('reference=smtp-77');
    expect(found.body.items.map((m: { id: string }) => m.id)).toEqual([id]);
    const view = await adminRequest(t.url, 'GET', `/v1/messages/${id}`);
    expect(view.body.metadata).toEqual({ reference: 'SMTP-77' });
    const tooLong = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.smtp, auth: SMTP_USER, tls: { rejectUnauthorized: false } });
    const refused = await tooLong
      .sendMail({ from: 'noreply@example.test', to: 'smtp-ref@example.org', text: 'Code', headers: { 'X-Kurir-Reference': 'r'.repeat(300) } })
      .catch((err: { response?: string }) => err.response);
    tooLong.close();
    expect(refused).toMatch(/^501 5\.5\.4 X-Kurir-Reference: a booking reference of 1 to 256/);
  });

  it('refuses a reference that is too long, and a search with neither or both of to and reference', async () => {
    const long = await t.submit({ ...code, to: ['long@example.org'], metadata: { reference: 'x'.repeat(MAX_REFERENCE_LENGTH + 1) } });
    expect(long.status).toBe(400);
    expect(long.body.error).toMatchObject({ code: 'VALIDATION', field: 'metadata.reference' });
    expect((await search('')).body.error).toMatchObject({ code: 'VALIDATION', field: 'to' });
    expect((await search('to=a%40example.org&reference=x')).status).toBe(400);
    expect((await search('reference=%20')).body.error).toMatchObject({ code: 'VALIDATION', field: 'reference' });
  });

  it('audits a reference search with the reference as target', async () => {
    await search('reference=AUDIT-1');
    const audit = await adminRequest(t.url, 'GET', '/v1/audit?limit=50');
    expect(audit.body.items.some((e: any) => e.action === 'GET /v1/messages' && e.target === 'reference:AUDIT-1')).toBe(true);
  });
});

describe('resend outlook', () => {
  it('says allowed under the per-recipient limit, refused with the next time once it is used up, and consumes nothing', async () => {
    const to = 'resend@example.org';
    const fresh = (await search(`to=${encodeURIComponent(to)}`)).body.resend;
    expect(fresh).toEqual([
      expect.objectContaining({
        address: to,
        allowed: true,
        reason: null,
        suppression: null,
        limit: { max: 2, windowSeconds: 600, priorities: ['verification'], used: 0 },
      }),
    ]);
    expect((await t.submit({ ...code, to: [to] })).status).toBe(202);
    const one = (await search(`to=${encodeURIComponent(to)}`)).body.resend[0];
    expect(one).toMatchObject({ allowed: true, limit: { used: 1 } });
    expect((await t.submit({ ...code, to: [to] })).status).toBe(202);
    const before = Date.now();
    const full = (await search(`to=${encodeURIComponent(to)}`)).body.resend[0];
    expect(full).toMatchObject({ allowed: false, reason: 'recipient-limit', limit: { used: 2 } });
    const next = Date.parse(full.nextAllowedAt);
    expect(next).toBeGreaterThan(before + 590_000);
    expect(next).toBeLessThanOrEqual(before + 601_000);
    // Reading did not consume: the same answer again, and intake agrees with the outlook.
    expect((await search(`to=${encodeURIComponent(to)}`)).body.resend[0].limit.used).toBe(2);
    const refused = await t.submit({ ...code, to: [to] });
    expect(refused.status).toBe(429);
    expect(refused.body.error.code).toBe('RECIPIENT_RATE_LIMITED');
    // A priority the limit does not count is still accepted: the outlook concerns the limited ones.
    expect((await t.submit({ ...code, priority: 'normal', to: [to] })).status).toBe(202);
  });

  it('says a suppressed address will be refused, with the suppression', async () => {
    const to = 'gone@example.org';
    expect((await adminRequest(t.url, 'PUT', `/v1/suppressions/${to}`, { reason: 'hard bounce' })).status).toBe(201);
    const hint = (await search(`to=${to}`)).body.resend[0];
    expect(hint).toMatchObject({ allowed: false, reason: 'suppressed', nextAllowedAt: null, suppression: { address: to, reason: 'hard bounce' } });
    expect((await t.submit({ ...code, to: [to] })).status).toBe(422);
  });
});

describe('a subject stored before 2 Dec 2026, undecoded', () => {
  it('is shown decoded in the message view, the search and the console; the record keeps it as it was', async () => {
    const to = 'old-subject@example.org';
    const id = newMessageId();
    // As intake stored it then: the Subject header as read, encoded words and all.
    const stored = '=?utf-8?Q?Ihr_Best=C3=A4tigungscode_=E2=98=83?=';
    expect(await t.gateway.messages.create(messageRecord(id, [to], { subject: stored }), Buffer.from(`Subject: ${stored}\r\n\r\nCode\r\n`))).toBe(true);
    const shown = 'Ihr Bestätigungscode ☃';
    const view = await adminRequest(t.url, 'GET', `/v1/messages/${id}`);
    expect(view.body, JSON.stringify(view.body)).toMatchObject({ subject: shown });
    expect((await search(`to=${encodeURIComponent(to)}`)).body.items[0]).toMatchObject({ id, subject: shown });
    const browser = new ConsoleClient(t.url);
    expect((await browser.login(ADMIN_KEY)).status).toBe(303);
    const page = await browser.get(`/console?q=${encodeURIComponent(to)}`);
    expect(page.body).toContain(`${shown}</h2>`);
    expect(page.body).not.toContain('=?utf-8?');
    expect((await t.gateway.messages.getRecord(id))?.subject).toBe(stored);
  });
});
