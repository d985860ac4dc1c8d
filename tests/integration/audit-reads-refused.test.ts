/**
 * When Redis refuses the audit log's write (OOM under `noeviction`, as on a full Redis) but still answers reads:
 * a single view is answered and the missing entry is logged; an export is refused with 503 before its first byte,
 * so no bulk copy leaves without its entry (src/http/audit-trail.ts), and `kurir suppressions export` says so. Once Redis takes writes again both are
 * audited as usual. Each entry not written is counted in kurir_audit_write_failures_total{kind} (view, export, change).
 * The gateway's own redis-server (tests/helpers/private-redis.ts), never the shared one.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCliCommand } from '../../src/cli/main.js';
import { createLogger } from '../../src/lib/logger.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { ADMIN_KEY, adminRequest, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const SUPPRESSED = 'kept@refused.example';
const READER = 'reader@refused.example';

let redis: PrivateRedis;
let admin: Redis;
let t: TestGateway;
let messageId = '';
const logLines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    logLines.push(chunk.toString('utf8'));
    done();
  },
});

const refuseWrites = (): Promise<unknown> => admin.config('SET', 'maxmemory', '1');
const takeWrites = (): Promise<unknown> => admin.config('SET', 'maxmemory', '0');

async function get(path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(t.url + path, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return { status: res.status, text: await res.text() };
}

/** The log lines (parsed) that say an audit entry could not be written. */
function auditFailures(): Array<Record<string, any>> {
  return logLines
    .flatMap((l) => l.split('\n'))
    .filter((l) => l.includes('audit: entry could not be written'))
    .map((l) => JSON.parse(l));
}

/** kurir_audit_write_failures_total of each kind, from the gateway's /metrics exposition. */
async function writeFailures(): Promise<Record<string, number>> {
  const text = await t.gateway.metrics.render();
  return Object.fromEntries([...text.matchAll(/^kurir_audit_write_failures_total\{kind="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
}

beforeAll(async () => {
  redis = await startPrivateRedis();
  admin = new Redis(redis.url);
  t = await startTestGateway({
    overrides: { roles: ['api', 'intake'], redis: { url: redis.url }, limits: { recipient: null } },
    logger: createLogger({ level: 'info', destination: sink }),
  });
  messageId = (await t.submit({ from: 'noreply@example.test', to: [READER], subject: 'code', text: 'Your code is 1' })).body.id;
  expect((await adminRequest(t.url, 'PUT', `/v1/suppressions/${SUPPRESSED}`, { reason: 'hard bounce' })).status).toBe(201);
}, 30_000);

afterAll(async () => {
  await takeWrites().catch(() => undefined);
  await t?.close();
  admin?.disconnect();
  await redis?.destroy();
});

it('answers a message view and logs the entry it could not write', async () => {
  await refuseWrites();
  try {
    const view = await get(`/v1/messages/${messageId}`);
    expect(view.status).toBe(200);
    expect(Object.keys(JSON.parse(view.text).recipients)).toEqual([READER]);
    await expect.poll(() => auditFailures().some((l) => l.action === 'GET /v1/messages/:id'), { timeout: 5000 }).toBe(true);
    expect(auditFailures().find((l) => l.action === 'GET /v1/messages/:id')).toMatchObject({ level: 50, component: 'audit', kind: 'view' });
    expect(await writeFailures()).toEqual({ view: 1, export: 0, change: 0 });
  } finally {
    await takeWrites();
  }
});

it('refuses an export (503, nothing of the list) while its entry cannot be written, and exports once it can', async () => {
  await refuseWrites();
  try {
    for (const path of ['/v1/suppressions/export', '/v1/audit/export']) {
      const res = await get(path);
      expect(res.status, path).toBe(503);
      expect(JSON.parse(res.text).error).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('audit log could not be written') });
      expect(res.text).not.toContain(SUPPRESSED);
    }
    expect(logLines.join('')).toContain('audit: entry could not be written; the export was refused');
    // The CLI says why, exits 1 (the gateway said no) and writes no file.
    const dir = mkdtempSync(join(tmpdir(), 'kurir-audit-refused-'));
    try {
      const out = join(dir, 'list.csv');
      const cli = runCliCommand(['suppressions', 'export', '--out', out], { cwd: dir, env: { KURIR_URL: t.url, KURIR_ADMIN_KEY: ADMIN_KEY } });
      await expect(cli).rejects.toMatchObject({ exitCode: 1, message: expect.stringMatching(/^503 UNAVAILABLE: The audit log could not be written/) });
      expect(existsSync(out)).toBe(false);
      // Two exports over the API and the CLI's one: each lost two entries, its first and its 503's (written after the answer).
      await expect.poll(writeFailures, { timeout: 5000 }).toEqual({ view: 1, export: 6, change: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await takeWrites();
  }
  const res = await get('/v1/suppressions/export');
  expect(res.status).toBe(200);
  expect(res.text).toContain(SUPPRESSED);
  await expect
    .poll(async () => (await adminRequest(t.url, 'GET', '/v1/audit?limit=10')).body.items.find((e: any) => e.action === 'GET /v1/suppressions/export')?.after, {
      timeout: 5000,
    })
    .toEqual({ rows: 1, complete: true });
});

it('counts a change whose entry could not be written', async () => {
  await refuseWrites();
  try {
    // Redis refuses the suppression too (503); the refused attempt is a change all the same, and its entry is lost.
    expect((await adminRequest(t.url, 'PUT', '/v1/suppressions/new@refused.example', { reason: 'hard bounce' })).status).toBe(503);
    await expect.poll(() => auditFailures().some((l) => l.action === 'PUT /v1/suppressions/:address'), { timeout: 5000 }).toBe(true);
    expect(auditFailures().find((l) => l.action === 'PUT /v1/suppressions/:address')).toMatchObject({ kind: 'change' });
    expect(await writeFailures()).toEqual({ view: 1, export: 6, change: 1 });
  } finally {
    await takeWrites();
  }
});
