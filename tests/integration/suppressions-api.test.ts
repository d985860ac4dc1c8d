/**
 * The suppression list admin API against a real gateway and Redis: add, look up, list (paging, domain
 * and reason filters), remove, CSV export and all-or-nothing import, admin-only access, and the admin
 * override header on POST /v1/messages.
 */
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, API_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;

async function call(
  method: string,
  path: string,
  opts: { key?: string | null; json?: unknown; csv?: string } = {},
): Promise<{ status: number; body: any; text: string; headers: Headers }> {
  const headers: Record<string, string> = {};
  const key = opts.key === undefined ? ADMIN_KEY : opts.key;
  if (key) headers.authorization = `Bearer ${key}`;
  let body: string | undefined;
  if (opts.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  if (opts.csv !== undefined) {
    headers['content-type'] = 'text/csv';
    body = opts.csv;
  }
  const res = await fetch(`${t.url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: any = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = null;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

const enc = encodeURIComponent;

async function listAll(query: string, limit: number): Promise<{ addresses: string[]; pages: number }> {
  const addresses: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res = await call('GET', `/v1/suppressions?limit=${limit}${query}${cursor ? `&cursor=${enc(cursor)}` : ''}`);
    expect(res.status).toBe(200);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    addresses.push(...res.body.items.map((e: any) => e.address));
    cursor = res.body.nextCursor;
    pages++;
  } while (cursor);
  return { addresses, pages };
}

gatewayForFile({ overrides: { roles: ['intake', 'api'] } }, (g) => {
  t = g;
});

describe('suppression admin API', () => {
  it('adds, looks up, replaces and removes an address', async () => {
    const put = await call('PUT', `/v1/suppressions/${enc('Jane.Doe@Alpha.test')}`, { json: { reason: 'manual', messageId: 'm-1' } });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ address: 'Jane.Doe@alpha.test', reason: 'manual', source: 'api:admin-dev', messageId: 'm-1' });
    expect(new Date(put.body.at).toISOString()).toBe(put.body.at);
    const again = await call('PUT', `/v1/suppressions/${enc('jane.doe@alpha.test')}`, { json: { reason: 'complaint' } });
    expect(again.status).toBe(200);
    const got = await call('GET', `/v1/suppressions/${enc('JANE.DOE@alpha.test')}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ reason: 'complaint' });
    expect((await call('DELETE', `/v1/suppressions/${enc('jane.doe@alpha.test')}`)).status).toBe(204);
    expect((await call('GET', `/v1/suppressions/${enc('jane.doe@alpha.test')}`)).status).toBe(404);
    expect((await call('DELETE', `/v1/suppressions/${enc('jane.doe@alpha.test')}`)).status).toBe(404);
  });

  it('validates addresses and bodies', async () => {
    const bad = await call('PUT', `/v1/suppressions/not-an-address`, { json: { reason: 'manual' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'BAD_ADDRESS', field: 'address' });
    expect((await call('PUT', `/v1/suppressions/${enc('x@alpha.test')}`, { json: {} })).body.error).toMatchObject({ code: 'VALIDATION', field: 'reason' });
    expect((await call('PUT', `/v1/suppressions/${enc('x@alpha.test')}`, { json: { reason: 'a', extra: 1 } })).status).toBe(400);
    expect((await call('GET', '/v1/suppressions?limit=0')).status).toBe(400);
    expect((await call('GET', '/v1/suppressions?domain=not_a_domain')).body.error.code).toBe('BAD_ADDRESS');
  });

  it('lists in pages, by domain and by reason', async () => {
    const entries = [
      ['a1@list-a.test', 'hard-bounce'],
      ['a2@list-a.test', 'complaint'],
      ['a3@list-a.test', 'hard-bounce'],
      ['a4@list-a.test', 'complaint'],
      ['a5@list-a.test', 'hard-bounce'],
      ['b1@list-b.test', 'hard-bounce'],
      ['b2@list-b.test', 'complaint'],
    ];
    for (const [address, reason] of entries) expect((await call('PUT', `/v1/suppressions/${enc(address)}`, { json: { reason } })).status).toBe(201);

    const all = await listAll('', 3);
    expect(all.addresses).toEqual(entries.map((e) => e[0]).sort());
    expect(all.pages).toBeGreaterThanOrEqual(3);

    const a = await listAll('&domain=LIST-A.test', 2);
    expect(a.addresses).toEqual(['a1@list-a.test', 'a2@list-a.test', 'a3@list-a.test', 'a4@list-a.test', 'a5@list-a.test']);
    expect(a.pages).toBe(3);

    expect((await listAll('&reason=complaint', 10)).addresses).toEqual(['a2@list-a.test', 'a4@list-a.test', 'b2@list-b.test']);
    expect((await listAll('&domain=list-b.test&reason=hard-bounce', 1)).addresses).toEqual(['b1@list-b.test']);
    expect((await listAll('&domain=nothing.test', 5)).addresses).toEqual([]);

    // A page cursor stays valid when entries change between pages: nothing skipped, nothing repeated.
    const p1 = await call('GET', '/v1/suppressions?limit=2&domain=list-a.test');
    expect(p1.body.items.map((e: any) => e.address)).toEqual(['a1@list-a.test', 'a2@list-a.test']);
    await call('DELETE', `/v1/suppressions/${enc('a1@list-a.test')}`);
    await call('PUT', `/v1/suppressions/${enc('a0@list-a.test')}`, { json: { reason: 'manual' } });
    const p2 = await call('GET', `/v1/suppressions?limit=2&domain=list-a.test&cursor=${enc(p1.body.nextCursor)}`);
    expect(p2.body.items.map((e: any) => e.address)).toEqual(['a3@list-a.test', 'a4@list-a.test']);
  });

  it('exports CSV and imports it all or nothing', async () => {
    const exp = await call('GET', '/v1/suppressions/export?domain=list-b.test');
    expect(exp.status).toBe(200);
    expect(exp.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = exp.text.trim().split('\r\n');
    expect(lines[0]).toBe('address,reason,source,at,messageId');
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(['b1@list-b.test', 'b2@list-b.test']);
    expect(lines[1]).toMatch(/^b1@list-b\.test,hard-bounce,api:admin-dev,\d{4}-\d\d-\d\dT[\d:.]+Z,$/);

    const bad = [
      'address,reason,source,at,messageId',
      'ok1@import.test,hard-bounce,legacy-esp,2024-05-01T10:00:00Z,abc',
      'not-an-address,hard-bounce,,,',
      '"ok2@import.test","complaint, via FBL",,1714557600000,',
      'ok3@import.test,,,,',
      'ok4@import.test,manual,,yesterday,',
      'ok1@import.test,manual,,,',
    ].join('\n');
    const refused = await call('POST', '/v1/suppressions/import', { csv: bad });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('VALIDATION');
    expect(refused.body.error.message).toMatch(/nothing was imported/);
    expect(refused.body.error.details.errorCount).toBe(4);
    expect(refused.body.error.details.errors.map((e: any) => [e.line, e.field])).toEqual([
      [3, 'address'],
      [5, 'reason'],
      [6, 'at'],
      [7, 'address'],
    ]);
    expect((await call('GET', '/v1/suppressions?domain=import.test')).body.items).toEqual([]);

    const good = [bad.split('\n')[0], bad.split('\n')[1], bad.split('\n')[3], 'plus+tag@import.test,manual,,,', ''].join('\r\n');
    const ok = await call('POST', '/v1/suppressions/import', { csv: good });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ imported: 3, added: 3 });
    const listed = (await call('GET', '/v1/suppressions?domain=import.test')).body.items;
    expect(listed).toEqual([
      { address: 'ok1@import.test', reason: 'hard-bounce', source: 'legacy-esp', at: '2024-05-01T10:00:00.000Z', messageId: 'abc' },
      { address: 'ok2@import.test', reason: 'complaint, via FBL', source: 'import:admin-dev', at: new Date(1714557600000).toISOString() },
      { address: 'plus+tag@import.test', reason: 'manual', source: 'import:admin-dev', at: expect.any(String) },
    ]);

    // Round trip: the export of what was imported imports again unchanged (replacing, nothing new).
    const again = await call('GET', '/v1/suppressions/export?domain=import.test');
    expect(again.text).toContain('ok2@import.test,"complaint, via FBL",import:admin-dev,');
    const re = await call('POST', '/v1/suppressions/import', { csv: again.text });
    expect(re.body).toEqual({ imported: 3, added: 0 });

    // A formula in a reason is exported as text ('=…) and imports back as it was (found 2 Dec 2026: exported verbatim).
    const formula = '=HYPERLINK("http://x.test","click")';
    await call('PUT', `/v1/suppressions/${enc('f@formula.test')}`, { json: { reason: formula } });
    await call('PUT', `/v1/suppressions/${enc('g@formula.test')}`, { json: { reason: '@SUM(1+1)' } });
    const withFormula = await call('GET', '/v1/suppressions/export?domain=formula.test');
    expect(withFormula.text).toContain(`f@formula.test,"'=HYPERLINK(""http://x.test"",""click"")",`);
    expect(withFormula.text).toContain("g@formula.test,'@SUM(1+1),");
    expect(withFormula.text).not.toMatch(/(^|,)"?[=@]/m);
    expect((await call('POST', '/v1/suppressions/import', { csv: withFormula.text })).body).toEqual({ imported: 2, added: 0 });
    expect((await call('GET', `/v1/suppressions/${enc('f@formula.test')}`)).body.reason).toBe(formula);

    expect((await call('POST', '/v1/suppressions/import', { json: { a: 1 } })).status).toBe(415);
    expect((await call('POST', '/v1/suppressions/import', { csv: '"unterminated,manual' })).body.error.details.errors[0]).toMatchObject({ line: 1 });
  });

  it('refuses what its own import would refuse, so an export always imports again', async () => {
    const a = enc('ctl@roundtrip.test');
    const ctl = await call('PUT', `/v1/suppressions/${a}`, { json: { reason: 'manual', messageId: 'abc\r\nX-Injected: 1' } });
    expect(ctl.status).toBe(400);
    expect(ctl.body.error).toMatchObject({
      code: 'VALIDATION',
      field: 'messageId',
      message: 'messageId: must be printable characters (no line breaks or other control characters)',
    });
    expect((await call('GET', `/v1/suppressions/${a}`)).status).toBe(404);
    expect((await call('PUT', `/v1/suppressions/${a}`, { json: { reason: 'manual', messageId: '<x,"y"@z.test>' } })).status).toBe(201);
    const exported = await call('GET', '/v1/suppressions/export?domain=roundtrip.test');
    const again = await call('POST', '/v1/suppressions/import', { csv: exported.text });
    expect(again).toMatchObject({ status: 200, body: { imported: 1, added: 0 } });
  });

  it('adds, looks up and removes an address longer than 100 characters (the router’s default parameter cap)', async () => {
    const long = `${'l'.repeat(64)}@${'d'.repeat(60)}.long-address.test`;
    expect(long.length).toBeGreaterThan(120);
    const put = await call('PUT', `/v1/suppressions/${enc(long)}`, { json: { reason: 'hard-bounce' } });
    expect(put.status).toBe(201);
    expect((await call('GET', `/v1/suppressions/${enc(long)}`)).body).toMatchObject({ address: long, reason: 'hard-bounce' });
    expect((await call('DELETE', `/v1/suppressions/${enc(long)}`)).status).toBe(204);
  });

  it('is for admin keys only', async () => {
    const asBooking = { key: API_KEY };
    const checks = [
      call('GET', '/v1/suppressions', asBooking),
      call('GET', `/v1/suppressions/${enc('b1@list-b.test')}`, asBooking),
      call('PUT', `/v1/suppressions/${enc('z@list-b.test')}`, { ...asBooking, json: { reason: 'manual' } }),
      call('DELETE', `/v1/suppressions/${enc('b1@list-b.test')}`, asBooking),
      call('GET', '/v1/suppressions/export', asBooking),
      call('POST', '/v1/suppressions/import', { ...asBooking, csv: 'y@list-b.test,manual' }),
    ];
    for (const res of await Promise.all(checks)) {
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
    }
    expect((await call('GET', '/v1/suppressions', { key: null })).status).toBe(401);
    expect((await call('GET', `/v1/suppressions/${enc('z@list-b.test')}`)).status).toBe(404);
    expect((await call('GET', `/v1/suppressions/${enc('b1@list-b.test')}`)).status).toBe(200);
  });
});

describe('suppression override on intake', () => {
  const msg = { from: 'Passport office <noreply@example.test>', to: ['b1@list-b.test'], subject: 'Code', text: 'Code: 1' };

  it('refuses a suppressed recipient with 422 naming the address and reason', async () => {
    const res = await t.submit(msg);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('SUPPRESSED');
    expect(res.body.error.message).toContain('b1@list-b.test');
    expect(res.body.error.message).toContain('hard-bounce');
  });

  it('is 403 for a non-admin key', async () => {
    const res = await t.submit(msg, { 'x-kurir-override-suppression': 'true' });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', field: 'X-Kurir-Override-Suppression' });
  });

  it('lets an admin key send to a suppressed address', async () => {
    const res = await t.submit(msg, { authorization: `Bearer ${ADMIN_KEY}`, 'x-kurir-override-suppression': 'true' });
    expect(res.status).toBe(202);
    const view = await fetch(`${t.url}/v1/messages/${res.body.id}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect((await view.json()).to).toEqual(['b1@list-b.test']);
    // Without the header, admins are refused like everyone else; other values are invalid.
    expect((await t.submit(msg, { authorization: `Bearer ${ADMIN_KEY}` })).status).toBe(422);
    expect((await t.submit(msg, { authorization: `Bearer ${ADMIN_KEY}`, 'x-kurir-override-suppression': 'yes' })).status).toBe(400);
  });
});
