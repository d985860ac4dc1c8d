/**
 * The credential API's refusals against a test gateway: an id of the configuration file's form that names no
 * configured credential is 404, like any unknown id — not 409 "declared in the configuration file", which sends
 * the admin to look for it there. And a rotation without a body takes the documented default overlap, as a pause
 * without a body pauses until resumed. Sender domains are kept once each, in lower case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, adminRequest, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

let t: TestGateway;

beforeAll(async () => {
  t = await startTestGateway({ overrides: { roles: ['api', 'intake'] } });
}, 30_000);

afterAll(async () => {
  await t?.close();
});

describe('credential ids of the configuration form', () => {
  it.each([
    ['GET', '', undefined],
    ['PATCH', '', { role: 'admin' }],
    ['POST', '/rotate', {}],
    ['DELETE', '', undefined],
  ])('%s of config:api-key:nobody is 404 naming id', async (method, suffix, body) => {
    const r = await adminRequest(t.url, method, `/v1/credentials/config:api-key:nobody${suffix}`, body);
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ code: 'NOT_FOUND', field: 'id', message: 'credential config:api-key:nobody not found' });
  });

  it('a configured one is shown, and a change to it is 409 pointing at the file', async () => {
    expect((await adminRequest(t.url, 'GET', '/v1/credentials/config:api-key:booking-dev')).body).toMatchObject({ name: 'booking-dev', source: 'config' });
    const r = await adminRequest(t.url, 'PATCH', '/v1/credentials/config:api-key:booking-dev', { role: 'admin' });
    expect(r.status).toBe(409);
    expect(r.body.error.message).toMatch(/declared in the configuration file/);
  });
});

describe('rotation without a body', () => {
  it('POST …/rotate with no body rotates with the default overlap of 3600 s', async () => {
    const { body: created } = await adminRequest(t.url, 'POST', '/v1/credentials', { kind: 'api-key', name: 'rotate-bare' });
    const res = await fetch(`${t.url}/v1/credentials/${created.credential.id}/rotate`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(res.status).toBe(200);
    const rotated = await res.json();
    expect(rotated.secret).toMatch(/^kurir_/);
    const [old, fresh] = rotated.credential.secrets;
    expect(Date.parse(old.notAfter) - Date.parse(fresh.createdAt)).toBe(3600_000);
    expect(fresh.notAfter).toBeNull();
  });
});

describe('sender domains of a credential', () => {
  it('are stored in lower case, each once, on create and on change', async () => {
    const { status, body } = await adminRequest(t.url, 'POST', '/v1/credentials', {
      kind: 'api-key',
      name: 'domains-once',
      domains: ['EXAMPLE.TEST', 'example.test'],
    });
    expect(status).toBe(201);
    expect(body.credential.domains).toEqual(['example.test']);
    const changed = await adminRequest(t.url, 'PATCH', `/v1/credentials/${body.credential.id}`, { domains: ['example.test', 'Example.Test'] });
    expect(changed.status).toBe(200);
    expect(changed.body.domains).toEqual(['example.test']);
  });
});
