/**
 * The web console's access over real HTTP (no browser): every route of CONSOLE_ACCESS × no session, a
 * support session and an admin session; login with the API's key registry and throttle; the session
 * cookie's flags and Redis idle timeout; CSRF on every POST; revocation ending a session. Console routes
 * are hidden from the OpenAPI document, so tests/integration/http-access.test.ts does not walk them: this
 * file does.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_ACCESS, type ConsoleAccess } from '../../src/http/console/session.js';
import { createKeys } from '../../src/store/keys.js';
import { ConsoleClient } from '../helpers/console-client.js';
import { ADMIN_KEY, adminRequest, API_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;
let supportKey = '';
let supportId = '';

function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return adminRequest(t.url, method, path, body);
}

gatewayForFile({ overrides: { roles: ['api'], smtp: { enabled: false }, authLimits: { maxFailuresPerIp: 1000, delayStepMs: 0 } } }, async (g) => {
  t = g;
  const created = await api('POST', '/v1/credentials', { kind: 'api-key', name: 'office-support', role: 'support' });
  expect(created.status).toBe(201);
  supportKey = created.body.secret;
  supportId = created.body.credential.id;
});

/** A form for each POST route, with a field valid in form (the handler may still answer 404 for it). */
const FORMS: Record<string, Record<string, string>> = {
  'POST /console/logout': {},
  'POST /console/suppressions/remove': { address: 'nobody@example.org', confirm: 'yes' },
  'POST /console/domains/verify': { domain: 'example.org' },
  'POST /console/domains/rotate': { domain: 'example.org' },
  'POST /console/providers/pause': { provider: 'nosuchprovider' },
  'POST /console/providers/resume': { provider: 'nosuchprovider' },
  'POST /console/credentials/rotate': { id: 'cred_nosuchcredential' },
  // Allowed for admin only: creates one key (answer 200); support and nobody are refused before the handler.
  'POST /console/credentials/create': { kind: 'api-key', name: 'access-walk', role: 'send', domains: '*' },
  'POST /console/credentials/revoke': { id: 'cred_nosuchcredential', confirm: 'yes' },
};

type Who = 'nobody' | 'support' | 'admin';
/** What each kind of visitor gets: allowed (the handler answers), a redirect to the login page, 401 or 403. */
const EXPECTED: Record<ConsoleAccess, Record<Who, 'allowed' | 'login' | 401 | 403>> = {
  open: { nobody: 'allowed', support: 'allowed', admin: 'allowed' },
  session: { nobody: 'login', support: 'allowed', admin: 'allowed' },
  admin: { nobody: 'login', support: 403, admin: 'allowed' },
};

async function client(who: Who): Promise<ConsoleClient> {
  const c = new ConsoleClient(t.url);
  if (who !== 'nobody') expect((await c.login(who === 'admin' ? ADMIN_KEY : supportKey)).status).toBe(303);
  return c;
}

describe('console access', () => {
  it('answers every console route × visitor as CONSOLE_ACCESS says', async () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const who of ['nobody', 'support', 'admin'] as Who[]) {
      for (const [route, access] of Object.entries(CONSOLE_ACCESS)) {
        if (route === 'POST /console/logout') continue; // ends the session: checked on its own below
        const c = await client(who);
        const [method, path] = route.split(' ');
        const form = FORMS[route];
        const res =
          route === 'POST /console/login'
            ? await c.login('kurir_not-a-key') // the handler's answer: 401 for an unknown key
            : method === 'GET'
              ? await c.get(path)
              : await c.post(path, { ...form, csrf: who === 'nobody' ? 'x' : await c.csrf() });
        const want = EXPECTED[access][who];
        const gotLogin = res.status === 303 && res.location === '/console/login';
        const ok =
          route === 'POST /console/login'
            ? res.status === 401 && res.body.includes('Unknown API key')
            : want === 'allowed'
              ? ![401, 403, 429].includes(res.status) && res.status < 500 && !gotLogin
              : want === 'login'
                ? method === 'GET'
                  ? gotLogin
                  : res.status === 401
                : res.status === want;
        checked++;
        if (!ok) wrong.push(`${route} as ${who}: ${res.status} ${res.location ?? ''} (expected ${want})`);
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe((Object.keys(CONSOLE_ACCESS).length - 1) * 3);
  }, 60_000);

  it('logs in with support and admin keys only, and out again', async () => {
    const send = new ConsoleClient(t.url);
    const refused = await send.login(API_KEY);
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('the console needs a support or admin key');
    const forged = await new ConsoleClient(t.url).post('/console/login', { key: ADMIN_KEY, login: 'forged' });
    expect(forged.status).toBe(403); // login CSRF: the form's token must match its cookie
    expect(forged.setCookie.some((s) => s.startsWith('kurir_console='))).toBe(false);
    const wrong = await new ConsoleClient(t.url).login('kurir_not-a-key');
    expect(wrong.status).toBe(401);
    expect(wrong.body).toContain('Unknown API key');

    const c = await client('support');
    expect((await c.get('/console')).status).toBe(200);
    const out = await c.post('/console/logout', { csrf: await c.csrf() });
    expect(out).toMatchObject({ status: 303, location: '/console/login' });
    expect((await c.get('/console')).location).toBe('/console/login');
  });

  it('sets the session cookie HttpOnly, SameSite=Strict, on /console, and idles it out in Redis', async () => {
    const c = new ConsoleClient(t.url);
    const res = await c.login(supportKey);
    const cookie = res.setCookie.find((s) => s.startsWith('kurir_console='))!;
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; SameSite=Strict/);
    expect(cookie).toMatch(/; Path=\/console/);
    expect(cookie).not.toMatch(/Secure/); // plain HTTP on loopback; Secure over TLS (next test)
    const redis = new Redis('redis://127.0.0.1:6379');
    const { createHash } = await import('node:crypto');
    const key = createKeys(t.config.redis.prefix).consoleSession(createHash('sha256').update(c.jar.get('kurir_console')!).digest('hex'));
    const ttl = await redis.ttl(key);
    const stored = await redis.get(key);
    await redis.quit();
    expect(ttl).toBeGreaterThan(850);
    expect(ttl).toBeLessThanOrEqual(900);
    expect(stored).not.toContain(supportKey);
  });

  it('marks the cookie Secure when the request came over TLS', async () => {
    const { cookieHeader } = await import('../../src/http/console/session.js');
    expect(cookieHeader({ protocol: 'https' } as never, 'kurir_console', 'v', null)).toBe('kurir_console=v; Path=/console; HttpOnly; SameSite=Strict; Secure');
  });

  it('refuses a POST without the CSRF token (403) and changes nothing', async () => {
    expect((await api('PUT', '/v1/suppressions/csrf%40example.org', { reason: 'test' })).status).toBe(201);
    const c = await client('support');
    const none = await c.post('/console/suppressions/remove', { address: 'csrf@example.org' });
    expect(none.status).toBe(403);
    expect(none.body).toContain('security token (CSRF)');
    const wrong = await c.post('/console/suppressions/remove', { address: 'csrf@example.org', csrf: 'A'.repeat(43) });
    expect(wrong.status).toBe(403);
    expect((await api('GET', '/v1/suppressions/csrf%40example.org')).status).toBe(200);
    // Without the confirmation page's field it is refused (400 naming it), and nothing changes either.
    const unconfirmed = await c.post('/console/suppressions/remove', { address: 'csrf@example.org', csrf: await c.csrf() });
    expect(unconfirmed.status).toBe(400);
    expect(unconfirmed.body).toContain('confirm: remove from the confirmation page');
    expect((await api('GET', '/v1/suppressions/csrf%40example.org')).status).toBe(200);
    const ok = await c.post('/console/suppressions/remove', { address: 'csrf@example.org', confirm: 'yes', csrf: await c.csrf() });
    expect(ok.status).toBe(303);
    expect((await api('GET', '/v1/suppressions/csrf%40example.org')).status).toBe(404);
    const audit = await api('GET', '/v1/audit?limit=20');
    expect(audit.body.items.find((e: any) => e.action === 'POST /console/suppressions/remove' && e.status === 303)).toMatchObject({
      actor: 'api-key:office-support',
      target: 'csrf@example.org',
    });
  });

  it('refuses a support session on admin pages and actions with 403', async () => {
    const c = await client('support');
    for (const path of ['/console/incidents', '/console/domains', '/console/providers']) expect((await c.get(path)).status).toBe(403);
    expect((await c.post('/console/providers/pause', { provider: 'gmail', csrf: await c.csrf() })).status).toBe(403);
    expect((await c.get('/console')).body).not.toContain('/console/incidents');
  });

  it('ends the sessions of a revoked key at the next request', async () => {
    const made = await api('POST', '/v1/credentials', { kind: 'api-key', name: 'temp-support', role: 'support' });
    const c = new ConsoleClient(t.url);
    expect((await c.login(made.body.secret)).status).toBe(303);
    expect((await c.get('/console')).status).toBe(200);
    expect((await api('DELETE', `/v1/credentials/${made.body.credential.id}`)).status).toBeLessThan(300);
    expect((await c.get('/console')).location).toBe('/console/login');
    expect(supportId).toMatch(/^cred_/);
  });
});

describe('console credentials: create and revoke', () => {
  it('lets an admin create a key (secret shown once) and revoke it after the confirmation page, audited like the API', async () => {
    const c = await client('admin');
    const csrf = await c.csrf('/console/credentials');
    expect((await c.post('/console/credentials/create', { kind: 'api-key', name: 'made-in-console', role: 'support', domains: '*' })).status).toBe(403);
    const form = { csrf, kind: 'api-key', name: 'made-in-console', role: 'support', domains: '*' };
    // Without its one-time token (a page from before it had one) the form is refused, creating nothing.
    expect((await c.post('/console/credentials/create', form)).status).toBe(400);
    const [createToken] = await c.formTokens('/console/credentials');
    const made = await c.post('/console/credentials/create', { ...form, form: createToken });
    expect(made.status).toBe(200);
    const secret = /id="secret" type="text" readonly value="([^"]+)"/.exec(made.body)?.[1] ?? '';
    expect(secret).toMatch(/^kurir_[A-Za-z0-9_-]{43}$/);
    // A reload of the answer page re-posts the same form: 409, and still one credential of that name.
    const again = await c.post('/console/credentials/create', { ...form, form: createToken });
    expect(again.status).toBe(409);
    expect(again.body).toContain('already submitted');
    expect((await api('GET', '/v1/credentials')).body.items.filter((x: any) => x.name === 'made-in-console')).toHaveLength(1);
    expect((await fetch(`${t.url}/v1/messages?to=x%40example.org`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);
    const listed = (await api('GET', '/v1/credentials')).body.items.find((x: any) => x.name === 'made-in-console');
    expect(listed).toMatchObject({ role: 'support', createdBy: 'api-key:admin-dev' });
    expect((await c.get('/console/credentials')).body).not.toContain(secret);

    const confirm = await c.get(`/console/credentials/revoke?id=${listed.id}`);
    expect(confirm.status).toBe(200);
    expect(confirm.body).toContain('Revoke made-in-console now');
    // Without the confirmation field, or without the CSRF token, nothing is revoked.
    expect((await c.post('/console/credentials/revoke', { csrf, id: listed.id })).status).toBe(400);
    expect((await c.post('/console/credentials/revoke', { id: listed.id, confirm: 'yes' })).status).toBe(403);
    expect((await api('GET', `/v1/credentials/${listed.id}`)).status).toBe(200);
    const revoked = await c.post('/console/credentials/revoke', { csrf, id: listed.id, confirm: 'yes' });
    expect(revoked).toMatchObject({ status: 303, location: '/console/credentials?done=revoked' });
    expect((await api('GET', `/v1/credentials/${listed.id}`)).status).toBe(404);
    expect((await fetch(`${t.url}/v1/messages?to=x%40example.org`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(401);

    const audit = (await api('GET', '/v1/audit?limit=50')).body.items;
    const created = audit.find((e: any) => e.action === 'POST /console/credentials/create' && e.target === listed.id);
    expect(created).toMatchObject({ actor: 'api-key:admin-dev', status: 200, after: { name: 'made-in-console', role: 'support' } });
    expect(JSON.stringify(audit)).not.toContain(secret);
    expect(audit.find((e: any) => e.action === 'POST /console/credentials/revoke' && e.status === 303)).toMatchObject({
      target: listed.id,
      before: { name: 'made-in-console' },
    });
  });

  it('rotates once per form: a re-post changes nothing and the secret shown keeps working; a failed submit can be repeated', async () => {
    const created = await api('POST', '/v1/credentials', { kind: 'api-key', name: 'rotate-once', role: 'support' });
    expect(created.status).toBe(201);
    const { id } = created.body.credential;
    const c = await client('admin');
    const csrf = await c.csrf('/console/credentials');
    const page = (await c.get('/console/credentials')).body;
    const token = new RegExp(`name="id" value="${id}"><input type="hidden" name="form" value="([^"]+)"`).exec(page)?.[1] ?? '';
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // An action that fails (no such credential) gives the token back: the same form can then be submitted.
    expect((await c.post('/console/credentials/rotate', { csrf, id: 'cred_nosuchcredential', overlapSeconds: '0', form: token })).status).toBe(404);
    const rotated = await c.post('/console/credentials/rotate', { csrf, id, overlapSeconds: '0', form: token });
    expect(rotated.status).toBe(200);
    const secret = /id="secret" type="text" readonly value="([^"]+)"/.exec(rotated.body)?.[1] ?? '';
    expect(secret).toMatch(/^kurir_/);
    const again = await c.post('/console/credentials/rotate', { csrf, id, overlapSeconds: '0', form: token });
    expect(again.status).toBe(409);
    // Rotated once: the secret shown works, the one before it (overlap 0) does not.
    const search = (key: string) => fetch(`${t.url}/v1/messages?to=x%40example.org`, { headers: { authorization: `Bearer ${key}` } });
    expect((await search(secret)).status).toBe(200);
    expect((await search(created.body.secret)).status).toBe(401);
    expect((await api('DELETE', `/v1/credentials/${id}`)).status).toBeLessThan(300);
  });

  it('refuses a support session both actions and the confirmation page (403), creating nothing', async () => {
    const c = await client('support');
    const csrf = await c.csrf();
    expect((await c.post('/console/credentials/create', { csrf, kind: 'api-key', name: 'support-made', role: 'admin' })).status).toBe(403);
    expect((await c.get(`/console/credentials/revoke?id=${supportId}`)).status).toBe(403);
    expect((await c.post('/console/credentials/revoke', { csrf, id: supportId, confirm: 'yes' })).status).toBe(403);
    const names = (await api('GET', '/v1/credentials')).body.items.map((x: any) => x.name);
    expect(names).not.toContain('support-made');
    expect(names).toContain('office-support');
  });
});

describe('console login throttle', () => {
  let g: TestGateway;
  beforeAll(async () => {
    g = await startTestGateway({
      overrides: { roles: ['api'], smtp: { enabled: false }, authLimits: { maxFailuresPerIp: 3, delayStepMs: 0, blockSeconds: 60 } },
    });
  }, 30_000);
  afterAll(async () => {
    await g?.close();
  });

  it('throttles wrong keys with the API throttle: blocked at the 3rd failure, then even the right key and the API get 429', async () => {
    const c = new ConsoleClient(g.url);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await c.login(`kurir_wrong-${i}`)).status);
    expect(statuses).toEqual([401, 401, 429, 429]);
    const right = await c.login(ADMIN_KEY);
    expect(right.status).toBe(429);
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
    const viaApi = await fetch(`${g.url}/v1/queue`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(viaApi.status).toBe(429);
  });
});
