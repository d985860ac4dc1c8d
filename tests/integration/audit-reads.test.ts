/**
 * Reads that return recipient addresses or message contents are in the audit log (src/http/audit-trail.ts):
 * the message view, the suppression list, its export and the audit log's export by admin and support keys,
 * the message search, and the console's search by an admin, each with actor, role, IP, target (message id, filter), rows and
 * status, never the addresses answered. Every documented GET is listed below as audited or not, so a new
 * read route fails here until it is classified. `kurir audit list` shows the entries; the log stays trimmed.
 * Real gateway, real Redis (its own prefix), HTTP on loopback.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { createKeys } from '../../src/store/keys.js';
import { ConsoleClient } from '../helpers/console-client.js';
import { ADMIN_KEY, API_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const MAX_ENTRIES = 100;
const READER = 'reader@audit-reads.example';
const LISTED = ['a@list.example', 'b@list.example', 'c@list.example'];

/** Every documented GET: whether an admin key's call to it is audited. */
const AUDITED_GETS: Record<string, boolean> = {
  'GET /healthz': false,
  'GET /readyz': false,
  'GET /metrics': false,
  'GET /v1/messages/{id}': true,
  'GET /v1/messages': true,
  'GET /v1/webhooks': false,
  'GET /v1/webhooks/deliveries': false,
  'GET /v1/placement': false,
  'GET /v1/incidents': false,
  'GET /v1/suppressions': true,
  'GET /v1/suppressions/export': true,
  'GET /v1/suppressions/{address}': true,
  'GET /v1/domains': false,
  'GET /v1/domains/{domain}': false,
  'GET /v1/domains/{domain}/doctor': false,
  'GET /v1/domains/{domain}/reports': false,
  'GET /v1/shaping': false,
  'GET /v1/queue': false,
  'GET /v1/credentials': false,
  'GET /v1/credentials/{id}': false,
  'GET /v1/audit': false,
  'GET /v1/audit/export': true,
};

let t: TestGateway;
let supportKey = '';
let messageId = '';

async function get(path: string, key = ADMIN_KEY): Promise<{ status: number; text: string }> {
  const res = await fetch(t.url + path, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, text: await res.text() };
}

/** The audit entries newest first (the newest 1000). */
async function entries(): Promise<Array<Record<string, any>>> {
  return JSON.parse((await get('/v1/audit?limit=1000')).text).items;
}

/**
 * Runs `calls`, then a read that is audited with a unique target, and answers the entries written in between
 * (oldest first): entries are written once each answer has gone out, so the marker is waited for.
 */
async function auditedDuring(calls: () => Promise<void>): Promise<Array<Record<string, any>>> {
  const start = (await entries())[0]?.id ?? '0-0';
  await calls();
  const marker = `reason=marker-${Math.random().toString(36).slice(2)}`;
  expect((await get(`/v1/suppressions?${marker}`)).status).toBe(200);
  let found: Array<Record<string, any>> = [];
  await expect
    .poll(
      async () => {
        found = (await entries()).filter((e) => e.id > start);
        return found.some((e) => e.target === marker);
      },
      { timeout: 5000 },
    )
    .toBe(true);
  return found.filter((e) => e.target !== marker).reverse();
}

beforeAll(async () => {
  t = await startTestGateway({
    overrides: { roles: ['api', 'intake'], http: { docs: true }, audit: { maxEntries: MAX_ENTRIES }, limits: { recipient: null } },
  });
  const created = await fetch(`${t.url}/v1/credentials`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'api-key', name: 'desk', role: 'support' }),
  });
  supportKey = ((await created.json()) as { secret: string }).secret;
  const sent = await t.submit({ from: 'noreply@example.test', to: [READER], subject: 'Your code', text: 'Your code is 123456' });
  expect(sent.status).toBe(202);
  messageId = sent.body.id;
  for (const address of LISTED) {
    const res = await fetch(`${t.url}/v1/suppressions/${address}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'hard bounce' }),
    });
    expect(res.status).toBe(201);
  }
}, 30_000);

afterAll(async () => {
  await t?.close();
});

describe('reads of personal data in the audit log', () => {
  it('the message view by an admin or support key: actor, role, IP, message id, status; a send key reading its own is not audited', async () => {
    const audited = await auditedDuring(async () => {
      expect((await get(`/v1/messages/${messageId}`)).status).toBe(200);
      expect((await get(`/v1/messages/${messageId}`, supportKey)).status).toBe(200);
      expect((await get('/v1/messages/0123456789abcdefghjkmn')).status).toBe(404);
      expect((await get(`/v1/messages/${messageId}`, API_KEY)).status).toBe(200);
    });
    expect(audited).toEqual([
      expect.objectContaining({ actor: 'api-key:admin-dev', role: 'admin', ip: '127.0.0.1', action: 'GET /v1/messages/:id', target: messageId, status: 200 }),
      expect.objectContaining({ actor: 'api-key:desk', role: 'support', action: 'GET /v1/messages/:id', target: messageId, status: 200 }),
      expect.objectContaining({ actor: 'api-key:admin-dev', action: 'GET /v1/messages/:id', target: '0123456789abcdefghjkmn', status: 404 }),
    ]);
    expect(JSON.stringify(audited)).not.toContain(READER);
  });

  it('a page of the suppression list: the filter and the rows, not the addresses (nor the cursor, which holds one)', async () => {
    let cursor = '';
    const audited = await auditedDuring(async () => {
      const page = await get('/v1/suppressions?domain=LIST.example&limit=2');
      expect(page.status).toBe(200);
      cursor = JSON.parse(page.text).nextCursor;
      expect((await get(`/v1/suppressions?domain=list.example&limit=2&cursor=${cursor}`)).status).toBe(200);
      expect((await get('/v1/suppressions?limit=0')).status).toBe(400);
    });
    expect(audited).toEqual([
      expect.objectContaining({ action: 'GET /v1/suppressions', target: 'domain=list.example', status: 200, after: { rows: 2, nextPage: true } }),
      expect.objectContaining({ action: 'GET /v1/suppressions', target: 'domain=list.example', status: 200, after: { rows: 1, nextPage: false } }),
      expect.objectContaining({ action: 'GET /v1/suppressions', target: 'all', status: 400 }),
    ]);
    const text = JSON.stringify(audited);
    for (const address of LISTED) expect(text).not.toContain(address);
    expect(text).not.toContain(cursor);
  });

  it('a message search: the address or reference as target and the messages answered as rows, never their contents', async () => {
    const searched = 'searched@audit-reads.example';
    for (const n of [1, 2]) {
      const sent = await t.submit({ from: 'noreply@example.test', to: [searched], subject: 'Code', text: `Code ${n}`, metadata: { reference: 'AUDIT-ROWS' } });
      expect(sent.status).toBe(202);
    }
    const to = encodeURIComponent(searched);
    const audited = await auditedDuring(async () => {
      expect((await get(`/v1/messages?to=${to}&limit=1`)).status).toBe(200);
      expect((await get(`/v1/messages?to=${to}&limit=1&cursor=1`, supportKey)).status).toBe(200);
      expect((await get('/v1/messages?reference=audit-rows')).status).toBe(200);
      expect((await get('/v1/messages?reference=NO-SUCH-REF')).status).toBe(200);
      expect((await get(`/v1/messages?to=${to}&limit=0`)).status).toBe(400);
    });
    expect(audited).toEqual([
      expect.objectContaining({ actor: 'api-key:admin-dev', action: 'GET /v1/messages', target: searched, status: 200, after: { rows: 1, nextPage: true } }),
      expect.objectContaining({ actor: 'api-key:desk', action: 'GET /v1/messages', target: searched, status: 200, after: { rows: 1, nextPage: false } }),
      expect.objectContaining({ action: 'GET /v1/messages', target: 'reference:audit-rows', status: 200, after: { rows: 2, nextPage: false } }),
      expect.objectContaining({ action: 'GET /v1/messages', target: 'reference:NO-SUCH-REF', status: 200, after: { rows: 0, nextPage: false } }),
      expect.objectContaining({ action: 'GET /v1/messages', target: searched, status: 400 }),
    ]);
    expect(audited[4].after).toBeUndefined();
    expect(JSON.stringify(audited)).not.toContain('Code 1');
  });

  it('an export: an entry before its first byte, then its rows once it has gone out', async () => {
    let csv = '';
    const audited = await auditedDuring(async () => {
      const res = await get('/v1/suppressions/export?domain=list.example&reason=hard%20bounce');
      expect(res.status).toBe(200);
      csv = res.text;
      expect((await get('/v1/suppressions/export')).status).toBe(200);
    });
    expect(csv.trim().split('\r\n')).toHaveLength(LISTED.length + 1);
    const target = 'domain=list.example&reason=hard+bounce';
    expect(audited).toEqual([
      expect.objectContaining({
        actor: 'api-key:admin-dev',
        role: 'admin',
        action: 'GET /v1/suppressions/export',
        target,
        status: 200,
        after: { export: 'started' },
      }),
      expect.objectContaining({ action: 'GET /v1/suppressions/export', target, status: 200, after: { rows: LISTED.length, complete: true } }),
      expect.objectContaining({ action: 'GET /v1/suppressions/export', target: 'all', after: { export: 'started' } }),
      expect.objectContaining({ action: 'GET /v1/suppressions/export', target: 'all', after: { rows: LISTED.length, complete: true } }),
    ]);
    for (const address of LISTED) expect(JSON.stringify(audited)).not.toContain(address);
  });

  it("the audit log's export is audited (its own first entry among the rows); paging the log is not", async () => {
    let lines = 0;
    const audited = await auditedDuring(async () => {
      expect((await get('/v1/audit?limit=5')).status).toBe(200);
      const res = await get('/v1/audit/export?format=csv');
      expect(res.status).toBe(200);
      lines = res.text.trim().split('\r\n').length - 1;
    });
    expect(audited).toEqual([
      expect.objectContaining({ action: 'GET /v1/audit/export', target: 'format=csv', after: { export: 'started' } }),
      expect.objectContaining({ action: 'GET /v1/audit/export', target: 'format=csv', status: 200, after: { rows: lines, complete: true } }),
    ]);
  });

  it('every documented GET is classified: the audited ones leave entries, the others none', async () => {
    const doc = JSON.parse((await get('/docs/json')).text) as { paths: Record<string, Record<string, unknown>> };
    const gets = Object.entries(doc.paths)
      .filter(([, ops]) => 'get' in ops)
      .map(([path]) => path);
    expect(gets.map((p) => `GET ${p}`).sort()).toEqual(Object.keys(AUDITED_GETS).sort());
    const params: Record<string, string> = { id: messageId, address: LISTED[0], domain: 'example.org' };
    const query: Record<string, string> = { '/v1/messages': `?to=${encodeURIComponent(READER)}` };
    const audited = await auditedDuring(async () => {
      for (const path of gets) {
        const url = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name])) + (query[path] ?? '');
        expect((await get(url)).status, url).toBeLessThan(500);
      }
    });
    const actions = new Set(audited.map((e) => e.action.replace(/:(\w+)/g, '{$1}')));
    const expected = Object.entries(AUDITED_GETS)
      .filter(([, yes]) => yes)
      .map(([op]) => op);
    expect([...actions].sort()).toEqual(expected.sort());
  });

  it("the console: an admin's search and removal page are audited, the admin's other pages are not", async () => {
    const c = new ConsoleClient(t.url);
    expect((await c.login(ADMIN_KEY)).status).toBe(303);
    const audited = await auditedDuring(async () => {
      const found = await c.get(`/console?q=${encodeURIComponent(READER)}`);
      expect(found.status).toBe(200);
      expect(found.body).toContain(messageId);
      expect((await c.get(`/console/suppressions/remove?address=${encodeURIComponent(LISTED[0])}`)).status).toBe(200);
      for (const page of ['/console', '/console/incidents', '/console/domains', '/console/providers', '/console/credentials']) {
        expect((await c.get(page)).status, page).toBe(200);
      }
    });
    expect(audited).toEqual([
      expect.objectContaining({
        actor: 'api-key:admin-dev',
        role: 'admin',
        ip: '127.0.0.1',
        action: 'GET /console',
        target: READER,
        status: 200,
        after: { rows: 1, nextPage: false },
      }),
      expect.objectContaining({ actor: 'api-key:admin-dev', action: 'GET /console/suppressions/remove', target: LISTED[0], status: 200 }),
    ]);
  });

  it('kurir audit list shows the audited reads', async () => {
    expect((await get(`/v1/messages/${messageId}`)).status).toBe(200);
    const list = async (): Promise<string> =>
      runCli(['audit', 'list', '--limit', '20'], { cwd: process.cwd(), env: { KURIR_URL: t.url, KURIR_ADMIN_KEY: ADMIN_KEY } });
    await expect
      .poll(list, { timeout: 5000 })
      .toMatch(new RegExp(`api-key:admin-dev\\s+admin\\s+127\\.0\\.0\\.1\\s+GET /v1/messages/:id\\s+${messageId}\\s+200`));
    expect(await list()).toMatch(/GET \/v1\/suppressions\/export\s+all\s+200/);
  });

  it('stays trimmed to about audit.maxEntries however many reads there are', async () => {
    for (let i = 0; i < 3 * MAX_ENTRIES; i++) expect((await get(`/v1/messages/${messageId}`)).status).toBe(200);
    const redis = new Redis('redis://127.0.0.1:6379');
    try {
      const key = createKeys(t.config.redis.prefix).auditLog();
      // XADD … MAXLEN ~ trims whole stream nodes (100 entries each by default), so it may keep up to one node more.
      await expect.poll(() => redis.xlen(key), { timeout: 5000 }).toBeGreaterThanOrEqual(MAX_ENTRIES);
      expect(await redis.xlen(key)).toBeLessThanOrEqual(2 * MAX_ENTRIES);
    } finally {
      redis.disconnect();
    }
  });
});
