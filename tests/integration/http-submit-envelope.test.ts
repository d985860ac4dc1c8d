/**
 * The envelope of `POST /v1/messages` outside the body, on a real gateway: the raw-only query parameters and
 * `X-Kurir-*` headers are refused on a JSON submission (until 2 Dec 2026 they were silently ignored: `?to=` added
 * no recipient, `X-Kurir-Priority: bulk` left the message normal), and a raw message's own `X-Kurir-Priority` header
 * sets its priority as over SMTP (until 2 Dec 2026 HTTP ignored it).
 */
import { describe, expect, it } from 'vitest';
import { API_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;

gatewayForFile({ overrides: { roles: ['api'] } }, (g) => {
  t = g;
});

type Post = { json?: unknown; raw?: string; headers?: Record<string, string> };

/** POST /v1/messages{query} with the booking key. */
async function post(query: string, opts: Post): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}/v1/messages${query}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${API_KEY}`,
      'content-type': opts.raw !== undefined ? 'message/rfc822' : 'application/json',
      ...opts.headers,
    },
    body: opts.raw ?? JSON.stringify(opts.json),
  });
  return { status: res.status, body: await res.json() };
}

const message = { from: 'noreply@example.test', to: ['alice@dest.test'], subject: 'Your code', text: 'Code: 123456' };

describe('a JSON submission with a raw-only parameter', () => {
  it('is refused 400 naming the query parameter and the body field to use', async () => {
    const cases: Array<[string, string]> = [
      ['?to=evil@example.org', 'the body fields to, cc and bcc'],
      ['?from=bounces@example.test', 'the body field from'],
      ['?priority=bulk', 'the body field priority'],
      ['?ttl=100', 'the body field ttl'],
    ];
    for (const [query, instead] of cases) {
      const name = query.slice(1, query.indexOf('='));
      const res = await post(query, { json: message });
      expect({ status: res.status, error: res.body.error }, query).toEqual({
        status: 400,
        error: {
          code: 'VALIDATION',
          field: name,
          message: `${name}: the query parameter ?${name}= is for raw (message/rfc822) submissions only; a JSON submission uses ${instead}`,
        },
      });
    }
  });

  it('is refused 400 naming the X-Kurir-* header', async () => {
    const cases: Array<[string, string, string]> = [
      ['X-Kurir-To', 'evil@example.org', 'the body fields to, cc and bcc'],
      ['X-Kurir-From', 'bounces@example.test', 'the body field from'],
      ['X-Kurir-Priority', 'bulk', 'the body field priority'],
      ['X-Kurir-Ttl', '100', 'the body field ttl'],
    ];
    for (const [name, value, instead] of cases) {
      const res = await post('', { json: message, headers: { [name]: value } });
      expect({ status: res.status, error: res.body.error }, name).toEqual({
        status: 400,
        error: {
          code: 'VALIDATION',
          field: name,
          message: `${name}: the header is for raw (message/rfc822) submissions only; a JSON submission uses ${instead}`,
        },
      });
    }
  });

  it('is refused for the parameter even when the body has other faults', async () => {
    const res = await post('?priority=bulk', { json: { ...message, bogus: true } });
    expect(res.body.error).toMatchObject({ code: 'VALIDATION', field: 'priority' });
  });

  it('is accepted without them, with the body fields; raw submissions keep them', async () => {
    const json = await post('', { json: { ...message, priority: 'bulk', ttl: 100 } });
    expect(json.status).toBe(202);
    const s = await t.status(json.body.id);
    expect(s.priority).toBe('bulk');
    expect(Date.parse(s.expiresAt) - Date.parse(s.createdAt)).toBe(100_000);
    const raw = await post('?to=carol@dest.test&priority=bulk', { raw: 'From: noreply@example.test\r\nSubject: raw\r\n\r\nCode 1\r\n' });
    expect(raw.status).toBe(202);
  });

  it('the OpenAPI document marks them raw (message/rfc822) only', async () => {
    const doc = await (await fetch(`${t.url}/docs/json`)).json();
    const params = doc.paths['/v1/messages'].post.parameters as Array<{ name: string; in: string; description?: string }>;
    for (const [name, where] of [
      ['to', 'query'],
      ['from', 'query'],
      ['priority', 'query'],
      ['ttl', 'query'],
      ['x-kurir-to', 'header'],
      ['x-kurir-from', 'header'],
      ['x-kurir-priority', 'header'],
      ['x-kurir-ttl', 'header'],
    ]) {
      const p = params.find((x) => x.name === name && x.in === where);
      expect(p?.description, `${where} ${name}`).toMatch(/^Raw \(message\/rfc822\) only: a JSON submission with it is 400/);
    }
  });
});

describe("a raw submission's own X-Kurir-Priority header", () => {
  const raw = (priority: string) => `From: noreply@example.test\r\nSubject: code\r\nX-Kurir-Priority: ${priority}\r\n\r\nCode 1\r\n`;

  it('sets the priority, as over SMTP, when neither ?priority= nor the X-Kurir-Priority request header does', async () => {
    const res = await post('?to=carol@dest.test', { raw: raw('verification') });
    expect(res.status).toBe(202);
    expect((await t.status(res.body.id)).priority).toBe('verification');
  });

  it('yields to ?priority= and to the request header', async () => {
    const query = await post('?to=carol@dest.test&priority=bulk', { raw: raw('verification') });
    expect((await t.status(query.body.id)).priority).toBe('bulk');
    const header = await post('?to=carol@dest.test', { raw: raw('verification'), headers: { 'X-Kurir-Priority': 'normal' } });
    expect((await t.status(header.body.id)).priority).toBe('normal');
  });

  it('is refused 400 when it names no priority', async () => {
    const res = await post('?to=carol@dest.test', { raw: raw('urgent') });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'VALIDATION', field: 'X-Kurir-Priority' });
  });
});

describe("a raw submission's own X-Kurir-Ttl header", () => {
  const raw = (ttl: string) => `From: noreply@example.test\r\nSubject: code\r\nX-Kurir-Ttl: ${ttl}\r\n\r\nCode 1\r\n`;
  const lifetime = async (id: string): Promise<number> => {
    const s = await t.status(id);
    return (Date.parse(s.expiresAt) - Date.parse(s.createdAt)) / 1000;
  };

  it('sets the lifetime, as over SMTP (until 2 Dec 2026 HTTP ignored it), and yields to ?ttl= and the request header', async () => {
    const own = await post('?to=carol@dest.test', { raw: raw('600') });
    expect(own.status).toBe(202);
    expect(await lifetime(own.body.id)).toBe(600);
    const query = await post('?to=carol@dest.test&ttl=900', { raw: raw('600') });
    expect(await lifetime(query.body.id)).toBe(900);
    const header = await post('?to=carol@dest.test', { raw: raw('600'), headers: { 'X-Kurir-Ttl': '1200' } });
    expect(await lifetime(header.body.id)).toBe(1200);
  });

  it('is refused 400 naming it when it is no whole number of seconds within delivery.maxTtlSeconds', async () => {
    for (const bad of ['abc', '0', '99999999']) {
      const res = await post('?to=carol@dest.test', { raw: raw(bad) });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'VALIDATION', field: 'X-Kurir-Ttl' });
    }
  });
});

describe('the envelope sender of a raw submission', () => {
  const raw = 'From: noreply@example.test\r\nSubject: code\r\n\r\nCode 1\r\n';

  it('when it is no address, is refused naming the parameter it came in (until 2 Dec 2026 "from (envelope sender)")', async () => {
    const query = await post('?to=carol@dest.test&from=bad', { raw });
    expect({ status: query.status, code: query.body.error.code, field: query.body.error.field }).toEqual({ status: 400, code: 'BAD_ADDRESS', field: 'from' });
    expect(query.body.error.message).toMatch(/^from: /);
    const header = await post('?to=carol@dest.test', { raw, headers: { 'X-Kurir-From': 'bad' } });
    expect(header.body.error).toMatchObject({ code: 'BAD_ADDRESS', field: 'X-Kurir-From' });
    expect(header.body.error.message).toMatch(/^X-Kurir-From: /);
  });

  it("outside the key's domains, is 403 on the same field", async () => {
    const res = await post('?to=carol@dest.test&from=bounces@elsewhere.test', { raw });
    expect(res.body.error).toMatchObject({ code: 'SENDER_NOT_ALLOWED', field: 'from' });
  });
});
