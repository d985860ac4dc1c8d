/**
 * The admin lists' cursors against a test gateway: a cursor that is not one a page answered is a 400 naming
 * `cursor` — not a 500, and not the first page again, which a script following `nextCursor` would read as more
 * entries (and loop on).
 */
import { describe, expect, it } from 'vitest';
import { adminRequest, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;

gatewayForFile({ overrides: { roles: ['api', 'intake'] } }, async (g) => {
  t = g;
  for (const a of ['a@cursor.test', 'b@cursor.test', 'c@cursor.test']) await adminRequest(t.url, 'PUT', `/v1/suppressions/${a}`, { reason: 'manual' });
});

describe('suppression list cursor', () => {
  it('pages follow nextCursor without a repeat', async () => {
    const first = await adminRequest(t.url, 'GET', '/v1/suppressions?limit=2');
    const second = await adminRequest(t.url, 'GET', `/v1/suppressions?limit=2&cursor=${first.body.nextCursor}`);
    expect([...first.body.items, ...second.body.items].map((e: { address: string }) => e.address)).toEqual(['a@cursor.test', 'b@cursor.test', 'c@cursor.test']);
  });

  it.each(['zzz', 'bm8tYXQtc2lnbg', ''])('a cursor that no page answered (%j) is 400 naming cursor', async (cursor) => {
    const r = await adminRequest(t.url, 'GET', `/v1/suppressions?limit=1&cursor=${cursor}`);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'VALIDATION', field: 'cursor' });
    expect(r.body.error.message).toMatch(/^cursor: /);
  });
});

describe('audit list cursor', () => {
  it('a cursor beyond the range of stream ids is 400 naming cursor, not 500', async () => {
    for (const cursor of ['99999999999999999999-0', '1-18446744073709551616']) {
      const r = await adminRequest(t.url, 'GET', `/v1/audit?cursor=${cursor}`);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'VALIDATION', field: 'cursor' });
    }
  });

  it('a cursor that is no stream id at all is 400 saying what a cursor is', async () => {
    const r = await adminRequest(t.url, 'GET', '/v1/audit?cursor=yesterday');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'VALIDATION', field: 'cursor', message: 'cursor: must be the nextCursor of a previous page' });
  });

  it('the smallest cursor answers an empty last page, not 500', async () => {
    for (const cursor of ['0-0', '00-000']) {
      const r = await adminRequest(t.url, 'GET', `/v1/audit?cursor=${cursor}`);
      expect(r).toMatchObject({ status: 200, body: { items: [], nextCursor: null } });
    }
  });

  it('the largest cursor answers the newest entries', async () => {
    const r = await adminRequest(t.url, 'GET', '/v1/audit?limit=1&cursor=18446744073709551615-18446744073709551615');
    expect(r.status).toBe(200);
    expect(r.body.items).toHaveLength(1);
  });
});

// Found 2 Dec 2026: a bad page size, report window or provider name was answered with the schema's pattern
// (`limit: must match pattern "^[0-9]{1,4}$"`), not the rule.
describe('page sizes, report windows and provider names are answered with their rule in words', () => {
  it.each([
    ['/v1/audit?limit=abc', 'limit', 'limit: a whole number from 1 to 1000'],
    ['/v1/audit?limit=1.5', 'limit', 'limit: a whole number from 1 to 1000'],
    ['/v1/audit?limit=0', 'limit', 'limit: a whole number from 1 to 1000'],
    ['/v1/suppressions?limit=abc', 'limit', 'limit: a whole number from 1 to 1000'],
    ['/v1/messages?to=a%40example.test&limit=abc', 'limit', 'limit: a whole number from 1 to 100'],
    ['/v1/domains/example.test/reports?days=abc', 'days', /^days: a whole number from 1 to \d+ \(feedback\.reports\.retentionDays\)$/],
  ])('GET %s is 400 naming %s', async (path, field, message) => {
    const r = await adminRequest(t.url, 'GET', path);
    expect(r.status).toBe(400);
    expect(r.body.error.field).toBe(field);
    expect(r.body.error.message).toMatch(message);
  });

  it('POST /v1/shaping/<bad name>/pause is 400 saying what a provider name is', async () => {
    const r = await adminRequest(t.url, 'POST', `/v1/shaping/${encodeURIComponent('bad domain!')}/pause`, {});
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({
      field: 'provider',
      message: expect.stringMatching(/^provider: "bad domain!" is not a provider name \(lower-case letters/),
    });
  });
});
