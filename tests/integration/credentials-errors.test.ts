/**
 * The credential API's refusals against a test gateway: an id of the configuration file's form that names no
 * configured credential is 404, like any unknown id — not 409 "declared in the configuration file", which sends
 * the admin to look for it there. And a rotation without a body takes the documented default overlap, as a pause
 * without a body pauses until resumed. Sender domains are kept once each, in lower case.
 */
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, adminRequest, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;

gatewayForFile({ overrides: { roles: ['api', 'intake'] } }, (g) => {
  t = g;
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

// Found 2 Dec 2026: these were stored (priorities twice, "*" beside a domain, a secret with a line break) or
// silently dropped (an API key's username).
describe('credential input the API used to keep or drop', () => {
  const hook = { url: 'http://127.0.0.1:9/x', secret: 'sixteen-chars-secret' };
  it.each([
    [{ kind: 'api-key', name: 'dup-prio', priorities: ['bulk', 'bulk'] }, 'priorities[1]', 'priorities[1]: bulk is listed twice'],
    [{ kind: 'api-key', name: 'star-mix', domains: ['*', 'example.test'] }, 'domains', /^domains: "\*" \(every sender domain\) stands alone/],
    [{ kind: 'api-key', name: 'key-user', username: 'someone' }, 'username', /^username: only SMTP accounts have a user name/],
    [
      { kind: 'api-key', name: 'nl-secret', webhook: { ...hook, secret: 'sixteen-chars\nsecret' } },
      'webhook.secret',
      /^webhook\.secret: printable characters only/,
    ],
  ])('POST /v1/credentials %j is 400 naming %s', async (body, field, message) => {
    const r = await adminRequest(t.url, 'POST', '/v1/credentials', body);
    expect(r.status).toBe(400);
    expect(r.body.error.field).toBe(field);
    expect(r.body.error.message).toMatch(message);
  });

  it('PATCH refuses the same priorities and domains, and an SMTP account keeps its username', async () => {
    const { body } = await adminRequest(t.url, 'POST', '/v1/credentials', { kind: 'smtp-account', name: 'acct-user', username: 'acct-login' });
    expect(body.credential.username).toBe('acct-login');
    const id = body.credential.id;
    expect((await adminRequest(t.url, 'PATCH', `/v1/credentials/${id}`, { priorities: ['normal', 'normal'] })).body.error.field).toBe('priorities[1]');
    expect((await adminRequest(t.url, 'PATCH', `/v1/credentials/${id}`, { domains: ['example.test', '*'] })).body.error.field).toBe('domains');
  });
});
