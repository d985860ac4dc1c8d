/**
 * How the API reads a JSON body, on a real gateway (src/http/json-body.ts). Until 2 Dec 2026 fastify's default
 * parser decoded invalid UTF-8 into U+FFFD and accepted it (an applicant received "caf�"), accepted a body declared
 * `charset=iso-8859-1`, and answered a `__proto__` key and a gzip-encoded body alike with "body: not valid JSON".
 */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, API_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;

gatewayForFile({ overrides: { roles: ['api'] } }, (g) => {
  t = g;
});

/** A request with a body given as bytes; the submission route and the booking key unless said otherwise. */
async function send(body: Buffer | string, headers: Record<string, string> = {}, path = '/v1/messages', key = API_KEY, method = 'POST') {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const json = (subject: string): string => `{"from":"noreply@example.test","to":["alice@dest.test"],"subject":"${subject}","text":"Code 1"}`;

describe('UTF-8', () => {
  it('refuses invalid UTF-8 with 400 "body: not valid UTF-8", on submissions and admin routes', async () => {
    const latin1 = Buffer.from(json('caf\xe9'), 'latin1');
    const res = await send(latin1);
    expect(res).toEqual({ status: 400, body: { error: { code: 'VALIDATION', field: 'body', message: 'body: not valid UTF-8' } } });
    const admin = await send(Buffer.from('{"reason":"manual","note":"caf\xe9"}', 'latin1'), {}, '/v1/suppressions/x%40dest.test', ADMIN_KEY, 'PUT');
    expect(admin.body.error).toEqual({ code: 'VALIDATION', field: 'body', message: 'body: not valid UTF-8' });
  });

  it('accepts valid UTF-8, with or without a BOM, and charset=utf-8 or us-ascii', async () => {
    const ok = await send(Buffer.from(json('café'), 'utf8'), { 'content-type': 'application/json; charset="UTF-8"' });
    expect(ok.status).toBe(202);
    expect((await t.status(ok.body.id)).subject).toBe('café'); // decoded from the stored header (src/intake/subject-summary.ts)
    expect((await send(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json('bom'))]))).status).toBe(202);
    // US-ASCII is a subset of UTF-8.
    expect((await send(json('cafe'), { 'content-type': 'application/json; charset=us-ascii' })).status).toBe(202);
  });

  it('refuses another declared charset with 415 naming it', async () => {
    const res = await send(json('cafe'), { 'content-type': 'application/json; charset=iso-8859-1' });
    expect(res).toEqual({
      status: 415,
      body: {
        error: {
          code: 'UNSUPPORTED_MEDIA',
          field: 'Content-Type',
          message: 'Content-Type: charset iso-8859-1 is not supported; JSON must be UTF-8 (charset=utf-8, or none)',
        },
      },
    });
  });
});

describe('Content-Encoding', () => {
  it('refuses a gzip-encoded body with 415 naming Content-Encoding; identity is read as usual', async () => {
    const res = await send(gzipSync(json('zipped')), { 'content-encoding': 'gzip' });
    expect(res).toEqual({
      status: 415,
      body: { error: { code: 'UNSUPPORTED_MEDIA', field: 'Content-Encoding', message: 'Content-Encoding: gzip is not supported; send the body uncompressed' } },
    });
    const raw = await send(
      gzipSync('From: noreply@example.test\r\n\r\nx\r\n'),
      { 'content-type': 'message/rfc822', 'content-encoding': 'gzip' },
      '/v1/messages?to=a@dest.test',
    );
    expect(raw.status).toBe(415);
    expect((await send(json('plain'), { 'content-encoding': 'identity' })).status).toBe(202);
  });
});

describe('prototype-poisoning keys', () => {
  it('refuses a __proto__ key with 400 naming where it is', async () => {
    const body = `{"from":"noreply@example.test","to":["alice@dest.test"],"text":"x","metadata":{"__proto__":{"admin":"yes"}}}`;
    expect((await send(body)).body.error).toEqual({
      code: 'VALIDATION',
      field: 'metadata.__proto__',
      message: 'metadata.__proto__: a key named __proto__ is not allowed',
    });
    // Escaped in the JSON text, it is the same key.
    expect((await send('{"\\u005f_proto__":{},"from":"noreply@example.test"}')).body.error.field).toBe('__proto__');
  });

  it('refuses a constructor key holding a prototype, and accepts a plain constructor value', async () => {
    const body = `{"from":"noreply@example.test","to":["alice@dest.test"],"text":"x","attachments":[{"filename":"a","content":"","constructor":{"prototype":{}}}]}`;
    expect((await send(body)).body.error).toEqual({
      code: 'VALIDATION',
      field: 'attachments[0].constructor',
      message: 'attachments[0].constructor: a key named constructor (holding a prototype) is not allowed',
    });
    const plain = await send(`{"from":"noreply@example.test","to":["alice@dest.test"],"text":"x","metadata":{"constructor":"fine"}}`);
    expect(plain.status).toBe(202);
  });

  it('still answers malformed and empty JSON 400 "body: not valid JSON"', async () => {
    for (const body of ['{"from": "a@example.test", "to": [', '', '{"a":1}}']) {
      expect((await send(body)).body.error, JSON.stringify(body)).toEqual({ code: 'VALIDATION', field: 'body', message: 'body: not valid JSON' });
    }
  });
});
