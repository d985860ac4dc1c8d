/**
 * Who may call what: every operation of the OpenAPI document (/docs/json) × every kind of credential,
 * against a real gateway over HTTP on loopback. The expected scope of each operation is written out in
 * ACCESS below, so a route added without an entry here (or registered in another scope than the
 * table says) fails this test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Scope } from '../../src/http/auth.js';
import { ADMIN_KEY, API_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

const METRICS_TOKEN = 'access-test-metrics-token-0001';

/** The scope every documented operation must be in. */
const ACCESS: Record<string, Scope> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'metrics',
  'POST /v1/feedback/ses': 'public',
  'POST /v1/feedback/mailgun': 'public',
  'POST /v1/messages': 'send',
  'GET /v1/messages/{id}': 'read',
  'GET /v1/messages': 'support',
  'GET /v1/webhooks': 'send',
  'POST /v1/messages/{id}/confirm': 'send',
  'POST /v1/confirmations/{token}': 'send',
  'POST /v1/confirmations': 'send',
  'GET /v1/placement': 'admin',
  'POST /v1/placement/probes': 'admin',
  'GET /v1/incidents': 'admin',
  'POST /v1/webhooks/enable': 'send',
  'GET /v1/webhooks/deliveries': 'send',
  'GET /v1/suppressions': 'admin',
  'GET /v1/suppressions/export': 'admin',
  'POST /v1/suppressions/import': 'admin',
  'GET /v1/suppressions/{address}': 'support',
  'PUT /v1/suppressions/{address}': 'admin',
  'DELETE /v1/suppressions/{address}': 'support',
  'GET /v1/domains': 'admin',
  'POST /v1/domains': 'admin',
  'GET /v1/domains/{domain}': 'admin',
  'DELETE /v1/domains/{domain}': 'admin',
  'PATCH /v1/domains/{domain}': 'admin',
  'POST /v1/domains/{domain}/verify': 'admin',
  'POST /v1/domains/{domain}/rotate': 'admin',
  'POST /v1/domains/{domain}/keys/{selector}/revoke': 'admin',
  'GET /v1/domains/{domain}/doctor': 'admin',
  'GET /v1/domains/{domain}/reports': 'admin',
  'POST /v1/reports': 'admin',
  'GET /v1/shaping': 'admin',
  'POST /v1/shaping/domains/{domain}/pause': 'admin',
  'POST /v1/shaping/domains/{domain}/resume': 'admin',
  'POST /v1/shaping/{provider}/pause': 'admin',
  'POST /v1/shaping/{provider}/resume': 'admin',
  'GET /v1/queue': 'admin',
  'POST /v1/messages/{id}/retry': 'admin',
  'POST /v1/messages/{id}/cancel': 'admin',
  'GET /v1/credentials': 'admin',
  'POST /v1/credentials': 'admin',
  'GET /v1/credentials/{id}': 'admin',
  'PATCH /v1/credentials/{id}': 'admin',
  'DELETE /v1/credentials/{id}': 'admin',
  'POST /v1/credentials/{id}/rotate': 'admin',
  'GET /v1/audit': 'admin',
  'GET /v1/audit/export': 'admin',
};

type Kind = 'none' | 'wrong key' | 'metrics token' | 'send key' | 'support key' | 'admin key';
const AUTHORIZATION: Record<Kind, string | undefined> = {
  none: undefined,
  'wrong key': 'Bearer not-a-key-of-this-gateway-0001',
  'metrics token': `Bearer ${METRICS_TOKEN}`,
  'send key': `Bearer ${API_KEY}`,
  // A runtime key of role support, created through the API in beforeAll.
  'support key': undefined,
  'admin key': `Bearer ${ADMIN_KEY}`,
};

/** What each kind of credential gets in each scope: allowed (the handler answers), 401 or 403. */
type Outcome = 'allowed' | 401 | 403;
const EXPECTED: Record<Scope, Record<Kind, Outcome>> = {
  public: { none: 'allowed', 'wrong key': 'allowed', 'metrics token': 'allowed', 'send key': 'allowed', 'support key': 'allowed', 'admin key': 'allowed' },
  metrics: { none: 401, 'wrong key': 401, 'metrics token': 'allowed', 'send key': 401, 'support key': 401, 'admin key': 401 },
  send: { none: 401, 'wrong key': 401, 'metrics token': 401, 'send key': 'allowed', 'support key': 403, 'admin key': 'allowed' },
  read: { none: 401, 'wrong key': 401, 'metrics token': 401, 'send key': 'allowed', 'support key': 'allowed', 'admin key': 'allowed' },
  support: { none: 401, 'wrong key': 401, 'metrics token': 401, 'send key': 403, 'support key': 'allowed', 'admin key': 'allowed' },
  admin: { none: 401, 'wrong key': 401, 'metrics token': 401, 'send key': 403, 'support key': 403, 'admin key': 'allowed' },
};

/** Values for path parameters, valid in form so that the route (not the not-found handler) answers. */
const PARAMS: Record<string, string> = {
  id: '0123456789abcdefghjkmn',
  address: 'someone@example.org',
  domain: 'example.org',
  provider: 'nosuchprovider',
  token: 'no-such-token',
  selector: 'nosuchselector',
};

let t: TestGateway;
let operations: Array<{ method: string; path: string }> = [];

gatewayForFile(
  {
    overrides: {
      roles: ['api'],
      smtp: { enabled: false },
      http: { docs: true },
      metrics: { token: METRICS_TOKEN },
      // Wrong keys are still throttled (delay, block); the block must not start within this walk.
      authLimits: { maxFailuresPerIp: 1000, delayStepMs: 0 },
      feedback: { ses: { topicArns: ['arn:aws:sns:eu-west-1:123456789012:kurir-access-test'] }, mailgun: { signingKey: 'access-test-mailgun-signing-key' } },
    },
  },
  async (g) => {
    t = g;
    const created = await fetch(`${t.url}/v1/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'api-key', name: 'office-support', role: 'support' }),
    });
    expect(created.status).toBe(201);
    AUTHORIZATION['support key'] = `Bearer ${((await created.json()) as { secret: string }).secret}`;
    const doc = (await (await fetch(`${t.url}/docs/json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => ['get', 'post', 'put', 'delete', 'patch'].includes(m))
        .map((m) => ({ method: m.toUpperCase(), path })),
    );
  },
);

async function call(method: string, path: string, kind: Kind): Promise<{ status: number; code?: string; message?: string }> {
  const url = t.url + path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(PARAMS[name] ?? name));
  const headers: Record<string, string> = {};
  const auth = AUTHORIZATION[kind];
  if (auth) headers.authorization = auth;
  const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
  if (withBody) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: withBody ? '{}' : undefined });
  const text = await res.text();
  let error: { code?: string; message?: string } = {};
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error ?? {};
  } catch {
    // not JSON (metrics exposition, CSV export)
  }
  return { status: res.status, code: error.code, message: error.message };
}

describe('access scopes', () => {
  it('documents exactly the operations of the expected table', () => {
    const documented = operations.map((o) => `${o.method} ${o.path}`).sort();
    expect(documented).toEqual(Object.keys(ACCESS).sort());
  });

  it('answers every operation × credential kind as its scope says', async () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const { method, path } of operations) {
      const scope = ACCESS[`${method} ${path}`];
      expect(scope, `${method} ${path} is not in the ACCESS table`).toBeDefined();
      for (const kind of Object.keys(AUTHORIZATION) as Kind[]) {
        const want = EXPECTED[scope][kind];
        const got = await call(method, path, kind);
        checked++;
        const ok =
          want === 'allowed'
            ? ![401, 403, 429].includes(got.status) && got.status < 500 && !(got.status === 404 && got.message?.startsWith('No route'))
            : got.status === want;
        if (!ok) wrong.push(`${method} ${path} with ${kind}: ${got.status} ${got.code ?? ''} ${got.message ?? ''} (expected ${want}, scope ${scope})`);
      }
    }
    expect(wrong).toEqual([]);
    expect(checked).toBe(Object.keys(ACCESS).length * Object.keys(AUTHORIZATION).length);
  }, 60_000);

  it('refuses a support key on admin and send routes with FORBIDDEN, and lets it read any message', async () => {
    expect(await call('POST', '/v1/credentials', 'support key')).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(await call('POST', '/v1/messages', 'support key')).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    const sent = await t.submit({ from: 'a@example.test', to: ['reader@example.org'], subject: 's', text: 't' });
    expect(sent.status).toBe(202);
    expect((await call('GET', `/v1/messages/${sent.body.id}`, 'support key')).status).toBe(200);
  });

  it('refuses a send key on an admin route with FORBIDDEN and a missing key with AUTH_REQUIRED', async () => {
    expect(await call('GET', '/v1/queue', 'send key')).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect(await call('GET', '/v1/queue', 'none')).toMatchObject({ status: 401, code: 'AUTH_REQUIRED' });
    expect(await call('GET', '/v1/queue', 'wrong key')).toMatchObject({ status: 401, code: 'AUTH_FAILED' });
  });

  it('hides only the web console from the document; the console has its own table test', async () => {
    // The console (src/http/console/) is HTML for browsers with its own session access, not part of the
    // API: its routes are hidden from the OpenAPI document, so the walk above does not see them.
    // tests/integration/console-access.test.ts checks every route of its CONSOLE_ACCESS table × visitor.
    const { CONSOLE_ACCESS } = await import('../../src/http/console/session.js');
    for (const route of Object.keys(CONSOLE_ACCESS)) expect(route).toMatch(/^(GET|POST) \/console(\/|$)/);
    expect(operations.filter((o) => o.path.startsWith('/console'))).toEqual([]);
    const login = await fetch(`${t.url}/console/login`);
    expect(login.status).toBe(200);
  });

  it('has no route that hides itself from the document, and no route-level authentication', () => {
    // The walk above only sees documented routes; authentication lives in the scopes (src/http/auth.ts).
    // Only src/http/*.ts is read: src/http/console/ hides its routes on purpose (the test above).
    for (const file of readdirSync('src/http').filter((f) => f.endsWith('.ts'))) {
      const source = readFileSync(`src/http/${file}`, 'utf8');
      expect(source, `${file} hides a route from the OpenAPI document`).not.toMatch(/hide:\s*true/);
      // metrics-server.ts is the separate /metrics listener (metrics.port), outside the fastify app.
      if (file !== 'auth.ts' && file !== 'metrics-server.ts')
        expect(source, `${file} authenticates on its own`).not.toMatch(/credentials\.(byApiKey|resolveApiKey)|bearerToken\(|metricsAuthorized\(/);
    }
  });
});
