/**
 * What the API's routes that read a request body take, read from the OpenAPI document (/docs/json) and checked on a
 * real gateway: every JSON body is a schema that refuses unknown fields with 400 naming them, also on the routes that
 * take no fields at all (until 2 Dec 2026 `POST /v1/domains/:domain/verify`, `rotate` and five more admin routes
 * ignored any body); a body in a media type a route does not read is 415 naming the ones it does (until then
 * `text/plain` reached the JSON routes and was answered 400 "body: must be object", and every other type was told
 * "application/json or message/rfc822", what only the submission route reads).
 */
import { describe, expect, it } from 'vitest';
import { REPORT_MEDIA_TYPES } from '../../src/http/reports-routes.js';
import { ADMIN_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

interface Operation {
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Record<string, unknown> }> };
  responses: Record<string, unknown>;
}

/** What a route's 415 must name; every route not listed reads JSON only. */
const MEDIA_TYPES: Record<string, string> = {
  'POST /v1/messages': 'application/json or message/rfc822',
  'POST /v1/suppressions/import': 'text/csv',
  'POST /v1/reports': `${REPORT_MEDIA_TYPES.slice(0, -1).join(', ')} or ${REPORT_MEDIA_TYPES.at(-1)}`,
};

/** Operations whose body is not JSON fields: a DMARC/TLS report as bytes, a CSV import. */
const NOT_JSON = new Set(['POST /v1/reports', 'POST /v1/suppressions/import']);
/**
 * The send scope's body-less routes, called by booking systems: whatever body they send today is still ignored
 * (changing that could break a client that works; the admin audit of 2 Dec 2026 left them as they were).
 */
const SEND_SCOPE_BODYLESS = new Set(['POST /v1/messages/{id}/confirm', 'POST /v1/confirmations/{token}', 'POST /v1/webhooks/enable']);

/** Path parameters valid in form, so that the route (not the not-found handler) answers. */
const PARAMS: Record<string, string> = {
  id: '0123456789abcdefghjkmn',
  domain: 'example.org',
  provider: 'nosuchprovider',
  selector: 'nosuchselector',
  address: 'someone@example.org',
  token: 'no-such-token',
};

let t: TestGateway;
const operations = new Map<string, Operation>();

gatewayForFile({ overrides: { roles: ['api'], smtp: { enabled: false }, http: { docs: true } } }, async (g) => {
  t = g;
  const doc = (await (await fetch(`${t.url}/docs/json`)).json()) as { paths: Record<string, Record<string, Operation>> };
  for (const [path, ops] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(ops)) if (['post', 'put', 'patch'].includes(method)) operations.set(`${method.toUpperCase()} ${path}`, op);
});

/** The JSON body schema of an operation, if it has one. */
const jsonSchema = (op: Operation) => op.requestBody?.content?.['application/json']?.schema;

/** Calls an operation (`POST /v1/domains/{domain}/verify`) with the admin key and a body given as text. */
async function call(operation: string, body?: string, contentType = 'application/json') {
  const [method, path] = operation.split(' ');
  const url = t.url + path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(PARAMS[name]));
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': contentType }) };
  const res = await fetch(url, { method, headers, body });
  return { status: res.status, error: ((await res.json()) as { error?: { code: string; field?: string; message: string } }).error };
}

describe('request bodies', () => {
  it('every POST, PUT and PATCH that reads JSON documents a body schema refusing unknown fields', () => {
    const open = [...operations]
      .filter(([name]) => !NOT_JSON.has(name) && !SEND_SCOPE_BODYLESS.has(name))
      .filter(([, op]) => jsonSchema(op)?.additionalProperties !== false)
      .map(([name]) => name);
    expect(open).toEqual([]);
    for (const name of [...NOT_JSON, ...SEND_SCOPE_BODYLESS]) expect(operations.has(name), name).toBe(true);
  });

  it('the routes without fields answer a field with 400 naming it, and run without a body, with null or {}', async () => {
    const fieldless = [...operations].filter(([, op]) => {
      const schema = jsonSchema(op);
      return schema !== undefined && Object.keys((schema.properties as object | undefined) ?? {}).length === 0;
    });
    const names = fieldless.map(([name]) => name);
    expect(names).toEqual(expect.arrayContaining(['POST /v1/domains/{domain}/verify', 'POST /v1/domains/{domain}/rotate']));
    for (const [name, op] of fieldless) {
      expect(await call(name, '{"note":"why"}'), name).toEqual({
        status: 400,
        error: { code: 'VALIDATION', field: 'note', message: 'note: is not a known field' },
      });
      for (const body of [undefined, 'null', '{}']) expect((await call(name, body)).status, `${name} with ${body}`).not.toBe(400);
      // Called without a body (curl -XPOST …/verify): the document must not say one is required.
      expect(op.requestBody?.required, name).toBe(false);
    }
  });

  it('a body in a media type the route does not read is 415 naming the ones it reads, text/plain too', async () => {
    const wrong: string[] = [];
    for (const name of operations.keys()) {
      const want = `Content-Type must be ${MEDIA_TYPES[name] ?? 'application/json'}`;
      for (const type of ['text/plain', 'image/png']) {
        const got = await call(name, '{"name":"x.test"}', type);
        if (got.status !== 415 || got.error?.field !== 'Content-Type' || got.error?.message !== want)
          wrong.push(`${name} as ${type}: ${got.status} ${got.error?.message} (want 415 ${want})`);
      }
    }
    expect(wrong).toEqual([]);
    expect(operations.size).toBeGreaterThan(20);
  });

  it('the document lists 415 among the answers of every POST, PUT and PATCH', () => {
    const without = [...operations].filter(([, op]) => op.responses['415'] === undefined).map(([name]) => name);
    expect(without).toEqual([]);
  });
});
