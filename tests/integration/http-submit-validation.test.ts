/**
 * Fields of a JSON submission whose refusal was wrong or missing until 2 Dec 2026, on a real gateway: the recipient
 * limit answered two different errors (51 in `to` was a schema error, 30 + 11 + 10 TOO_MANY_RECIPIENTS); an attachment's
 * contentType was not checked (`multipart/mixed` was delivered as an invalid MIME leaf, `garbage` accepted); an empty
 * metadata reference was taken; the OpenAPI document had no TTL maximum and a 403 that named only the sender domain;
 * a suppressed cc or bcc recipient was refused with `field: "to"`, and in a raw submission (`?to=`, `X-Kurir-To`) every
 * suppressed or malformed recipient was named `to` or `to[i]` whichever parameter it came in.
 */
import { describe, expect, it } from 'vitest';
import { API_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;

gatewayForFile({ overrides: { roles: ['api'] } }, (g) => {
  t = g;
});

const message = (over: Record<string, unknown> = {}) => ({ from: 'noreply@example.test', to: ['alice@dest.test'], subject: 'Code', text: 'Code 1', ...over });
const addresses = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `${tag}${i}@dest.test`);

describe('a suppressed recipient', () => {
  it('is refused naming the field and index it was given in: to, cc or bcc (until 2 Dec 2026 always `to`)', async () => {
    await t.gateway.suppressions.add({ address: 'gone@dest.test', reason: 'hard-bounce', source: 'test', at: Date.now() });
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ to: ['alice@dest.test', 'Gone@dest.test'] }, 'to[1]'],
      [{ cc: ['gone@dest.test'] }, 'cc[0]'],
      [{ bcc: ['bob@dest.test', 'carol@dest.test', 'gone@dest.test'] }, 'bcc[2]'],
      // Listed twice: the first place it appears.
      [{ cc: ['gone@dest.test'], bcc: ['gone@dest.test'] }, 'cc[0]'],
    ];
    for (const [over, field] of cases) {
      const res = await t.submit(message(over));
      expect({ status: res.status, code: res.body.error?.code, field: res.body.error?.field }, JSON.stringify(over)).toEqual({
        status: 422,
        code: 'SUPPRESSED',
        field,
      });
      expect(res.body.error.message).toBe('gone@dest.test is suppressed (hard-bounce)');
    }
  });
});

describe('a recipient of a raw submission', () => {
  const raw = 'From: noreply@example.test\r\nSubject: code\r\n\r\nCode 1\r\n';
  async function postRaw(query: string, headers: Record<string, string> = {}) {
    const res = await fetch(`${t.url}/v1/messages${query}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'message/rfc822', ...headers },
      body: raw,
    });
    const body = (await res.json()) as any;
    return { status: res.status, code: body.error?.code, field: body.error?.field };
  }

  it('when suppressed, is refused naming the parameter and its place in the list (until 2 Dec 2026 `to`)', async () => {
    await t.gateway.suppressions.add({ address: 'gone@dest.test', reason: 'hard-bounce', source: 'test', at: Date.now() });
    const cases: Array<[string, Record<string, string>, string]> = [
      ['?to=alice@dest.test&to=Gone@dest.test', {}, 'to[1]'],
      ['?to=alice@dest.test,bob@dest.test&to=gone@dest.test', {}, 'to[2]'], // a comma-separated list counts as its addresses
      ['?to=gone@dest.test&to=gone@dest.test', {}, 'to[0]'], // given twice: the first place
      ['', { 'X-Kurir-To': 'alice@dest.test, gone@dest.test' }, 'X-Kurir-To[1]'],
    ];
    for (const [query, headers, field] of cases) {
      expect(await postRaw(query, headers), `${query} ${JSON.stringify(headers)}`).toEqual({ status: 422, code: 'SUPPRESSED', field });
    }
  });

  it('when no address, is refused naming the parameter and its place (until 2 Dec 2026 `to[i]` for X-Kurir-To too)', async () => {
    expect(await postRaw('?to=alice@dest.test&to=not-an-address')).toEqual({ status: 400, code: 'BAD_ADDRESS', field: 'to[1]' });
    expect(await postRaw('', { 'X-Kurir-To': 'alice@dest.test,not-an-address' })).toEqual({ status: 400, code: 'BAD_ADDRESS', field: 'X-Kurir-To[1]' });
    expect((await postRaw('?to=alice@dest.test&to=bob@dest.test')).status).toBe(202);
  });
});

describe('the recipient limit (smtp.maxRecipients, 50)', () => {
  it('answers TOO_MANY_RECIPIENTS however the recipients are spread over to, cc and bcc', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['51 in to', { to: addresses(51, 'to') }],
      ['51 in cc', { cc: addresses(51, 'cc') }],
      ['30 + 11 + 10', { to: addresses(30, 'to'), cc: addresses(11, 'cc'), bcc: addresses(10, 'bcc') }],
      ['5,000 in to', { to: addresses(5000, 'to') }],
    ];
    for (const [name, over] of cases) {
      const res = await t.submit(message(over));
      expect({ status: res.status, code: res.body.error?.code }, name).toEqual({ status: 400, code: 'TOO_MANY_RECIPIENTS' });
      expect(res.body.error.message, name).toMatch(/at most 50 recipients per message/);
    }
  });

  it('accepts 50, and duplicates count once', async () => {
    expect((await t.submit(message({ to: addresses(30, 'to'), cc: addresses(10, 'cc'), bcc: addresses(10, 'bcc') }))).status).toBe(202);
    expect((await t.submit(message({ to: addresses(50, 'to'), cc: addresses(20, 'to') }))).status).toBe(202);
  });

  it('the OpenAPI document states the limit on to, cc and bcc', async () => {
    const doc = await (await fetch(`${t.url}/docs/json`, { headers: { authorization: `Bearer ${API_KEY}` } })).json();
    const props = doc.paths['/v1/messages'].post.requestBody.content['application/json'].schema.properties;
    for (const f of ['to', 'cc', 'bcc']) expect(props[f].description, f).toContain('at most 50 different recipients');
  });
});

describe('attachments[i].contentType', () => {
  const attach = (contentType: string) =>
    message({
      attachments: [
        { filename: 'a.txt', content: 'eA==' },
        { filename: 'b', content: 'eA==', contentType },
      ],
    });

  it('is refused 400 naming the field when it is no MIME type, multipart/*, or message/* other than a whole message', async () => {
    const cases: Array<[string, string]> = [
      ['garbage', 'must be a MIME type, type/subtype'],
      ['text/pl ain', 'must be a MIME type, type/subtype'],
      ['application/pdf;', 'must be a MIME type, type/subtype'],
      ['multipart/mixed', 'multipart/mixed is not allowed: an attachment is a single part'],
      ['Multipart/Alternative; boundary=x', 'multipart/alternative is not allowed'],
      ['message/partial', 'message/partial is not allowed (of message/*, only message/rfc822 and message/global)'],
    ];
    for (const [contentType, rule] of cases) {
      const res = await t.submit(attach(contentType));
      expect({ status: res.status, code: res.body.error?.code, field: res.body.error?.field }, contentType).toEqual({
        status: 400,
        code: 'VALIDATION',
        field: 'attachments[1].contentType',
      });
      expect(res.body.error.message).toContain(`attachments[1].contentType: ${rule}`);
    }
  });

  it('is accepted as type/subtype with parameters, and as message/rfc822', async () => {
    for (const contentType of ['application/pdf', 'text/csv; charset="utf-8"', 'image/svg+xml', 'message/rfc822']) {
      expect((await t.submit(attach(contentType))).status, contentType).toBe(202);
    }
  });
});

describe('small rules', () => {
  it('an empty metadata reference is 400 (the rule is 1 to 256 printable characters)', async () => {
    for (const reference of ['', '   ']) {
      const res = await t.submit(message({ metadata: { reference } }));
      expect({ status: res.status, error: res.body.error }, JSON.stringify(reference)).toEqual({
        status: 400,
        error: { code: 'VALIDATION', field: 'metadata.reference', message: 'metadata.reference: a booking reference of 1 to 256 printable characters' },
      });
    }
    expect((await t.submit(message({ metadata: { reference: 'BK-1', note: '' } }))).status).toBe(202);
  });

  it('a header not allowed is refused with the whole list of allowed ones, List-Unsubscribe-Post included', async () => {
    const res = await t.submit(message({ headers: { Received: 'from evil' } }));
    expect(res.body.error.message).toBe(
      'headers.Received: header not allowed (X-*, List-Unsubscribe, List-Unsubscribe-Post, List-Id, In-Reply-To, References, Auto-Submitted, Feedback-ID)',
    );
    const post = await t.submit(
      message({ headers: { 'List-Unsubscribe': '<https://example.test/u>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } }),
    );
    expect(post.status).toBe(202);
  });

  it('ttl has its maximum (delivery.maxTtlSeconds) in the OpenAPI document and is refused above it', async () => {
    const doc = await (await fetch(`${t.url}/docs/json`)).json();
    const post = doc.paths['/v1/messages'].post;
    expect(post.requestBody.content['application/json'].schema.properties.ttl).toMatchObject({ minimum: 1, maximum: 604800 });
    const res = await t.submit(message({ ttl: 604801 }));
    expect({ status: res.status, field: res.body.error.field }).toEqual({ status: 400, field: 'ttl' });
    expect((await t.submit(message({ ttl: 604800 }))).status).toBe(202);
  });

  it('every TTL refusal has one wording, naming the field and the range (three wordings until 2 Dec 2026)', async () => {
    const rule = (field: string) => ({ code: 'VALIDATION', field, message: `${field}: must be a whole number of seconds from 1 to 604800` });
    const raw = (ownTtl?: string) => `From: noreply@example.test\r\nSubject: code\r\n${ownTtl ? `X-Kurir-Ttl: ${ownTtl}\r\n` : ''}\r\nCode 1\r\n`;
    const post = async (query: string, body: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${t.url}/v1/messages?to=alice@dest.test${query}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'message/rfc822', ...headers },
        body,
      });
      return { status: res.status, error: ((await res.json()) as any).error };
    };
    for (const ttl of [0, 604801, 1.5, '60', -1]) {
      const res = await t.submit(message({ ttl }));
      expect({ status: res.status, error: res.body.error }, `JSON ttl ${JSON.stringify(ttl)}`).toEqual({ status: 400, error: rule('ttl') });
    }
    for (const ttl of ['0', '604801', 'abc', '', '1e3']) {
      expect(await post(`&ttl=${ttl}`, raw()), `?ttl=${ttl}`).toEqual({ status: 400, error: rule('ttl') });
      expect(await post('', raw(), { 'X-Kurir-Ttl': ttl }), `request header ${ttl}`).toEqual({ status: 400, error: rule('X-Kurir-Ttl') });
      if (ttl) expect(await post('', raw(ttl)), `message header ${ttl}`).toEqual({ status: 400, error: rule('X-Kurir-Ttl') });
    }
    expect((await post('&ttl=604800', raw())).status).toBe(202);
    expect((await post('', raw(), { 'X-Kurir-Ttl': '1' })).status).toBe(202);
  });

  it("the OpenAPI 403 of POST /v1/messages names FORBIDDEN's cases besides the sender domain", async () => {
    const doc = await (await fetch(`${t.url}/docs/json`)).json();
    const description: string = doc.paths['/v1/messages'].post.responses['403'].description;
    for (const part of ['SENDER_NOT_ALLOWED', 'FORBIDDEN', 'X-Kurir-Override-Suppression', 'priority']) expect(description).toContain(part);
    const forbidden = await t.submit(message(), { 'x-kurir-override-suppression': 'true' });
    expect(forbidden.body.error.code).toBe('FORBIDDEN');
  });
});
