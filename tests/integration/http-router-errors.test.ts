/**
 * Errors fastify's router raises before any route runs come in the API's one error shape
 * (`{ error: { code, message, field } }`, src/http/errors.ts), not fastify's own. Until 1 Dec 2026 a path with
 * broken percent-encoding answered `{ statusCode: 400, code: "FST_ERR_BAD_URL", … }`.
 */
import { expect, it } from 'vitest';
import { ADMIN_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;

gatewayForFile({ overrides: { roles: ['api'] } }, (g) => {
  t = g;
});

const get = async (path: string): Promise<{ status: number; body: any }> => {
  const res = await fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return { status: res.status, body: await res.json() };
};

it('answers a path with broken percent-encoding 400 VALIDATION naming the path', async () => {
  const got = await get('/v1/suppressions/bad%E0%A4%A@example.test');
  expect(got.status).toBe(400);
  expect(got.body).toEqual({ error: { code: 'VALIDATION', message: 'path: not a valid URL (bad percent-encoding)', field: 'path' } });
});

it('answers a path parameter over the router’s limit 400 VALIDATION naming the path', async () => {
  const got = await get(`/v1/suppressions/${'a'.repeat(3000)}@example.test`);
  expect(got.status).toBe(400);
  expect(got.body).toEqual({ error: { code: 'VALIDATION', message: 'path: a path parameter is too long', field: 'path' } });
});
