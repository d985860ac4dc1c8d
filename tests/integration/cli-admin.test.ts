/**
 * `kurir` against a running gateway over HTTP: the credentials, suppressions, messages, queue, placement and audit
 * families, their tables and `--json`, and their exit codes through the real entry (src/cli/bin.ts, spawned with
 * tsx, URL and key from the environment): 0 ok, 1 the gateway said no, 2 usage, 3 gateway down, 4 key refused.
 * The first admin key comes from `credentials create --bootstrap`, written straight into the gateway's Redis.
 * `domains` and `doctor` are in cli-domains.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { runKurirBin, type KurirRun } from '../helpers/cli-process.js';
import { freePort } from '../helpers/ports.js';
import { startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'kurir-cli-admin-'));
let t: TestGateway;
let adminKey = '';

/** Runs the real CLI entry with this gateway's URL and the bootstrapped admin key. */
const kurir = (args: string[], env: Record<string, string> = {}): Promise<KurirRun> =>
  runKurirBin(args, dir, { KURIR_URL: t.url, KURIR_ADMIN_KEY: adminKey, KURIR_REDIS__PREFIX: t.config.redis.prefix, ...env });

/** The CLI in-process with this gateway's URL and the admin key. */
const cli = (...args: string[]): Promise<string> => runCli(args, { cwd: dir, env: { KURIR_URL: t.url, KURIR_ADMIN_KEY: adminKey } });

beforeAll(async () => {
  t = await startTestGateway({
    overrides: {
      roles: ['api', 'intake'],
      limits: { recipient: null },
      authLimits: { delayStepMs: 0 },
      placement: {
        seeds: [
          {
            name: 'gmail-1',
            provider: 'gmail',
            address: 'seed1@gmail.test',
            imap: { host: '127.0.0.1', port: 1, tls: false },
            auth: { method: 'password', passwordEnv: 'NONE' },
          },
        ],
      },
    },
  });
}, 30_000);

afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('kurir over the admin API', () => {
  it('bootstraps the first admin key straight into Redis (exit 0), and it works on the gateway', async () => {
    const boot = await kurir(['credentials', 'create', '--bootstrap', '--name', 'ops-admin']);
    expect(boot.stderr).toBe('');
    expect(boot.code).toBe(0);
    adminKey = /key \(shown once, store it now\): (\S+)/.exec(boot.stdout)![1];
    expect(boot.stdout).toMatch(/^created api-key ops-admin \(cred_[\w-]+\), role admin/);
    // Within the refresh interval the gateway knows it.
    await expect.poll(async () => (await fetch(`${t.url}/v1/queue`, { headers: { authorization: `Bearer ${adminKey}` } })).status, { timeout: 5000 }).toBe(200);
  });

  it('credentials: create, list, show, update, rotate, revoke', async () => {
    const created = JSON.parse(await cli('credentials', 'create', '--name', 'office-support', '--role', 'support', '--json'));
    expect(created.credential).toMatchObject({ name: 'office-support', role: 'support' });
    const id = created.credential.id as string;
    const list = await cli('credentials', 'list');
    expect(list.split('\n')[0]).toMatch(/^ID\s+NAME\s+KIND\s+ROLE\s+DOMAINS\s+SOURCE$/);
    expect(list).toMatch(new RegExp(`${id}\\s+office-support\\s+api-key\\s+support\\s+\\*\\s+runtime`));
    expect(list).toMatch(/config:api-key:booking-dev\s+booking-dev\s+api-key\s+send/);
    expect(list).not.toContain(created.secret);
    expect(await cli('credentials', 'update', id, '--priorities', 'verification', '--per-day', '100')).toMatch(
      /priorities:\s+verification\nlimits:\s+perSecond default, perDay 100/,
    );
    const rotated = await cli('credentials', 'rotate', id, '--overlap', '0');
    expect(rotated).toMatch(/^rotated api-key office-support/);
    expect(rotated).not.toContain(created.secret);
    expect(await cli('credentials', 'show', id)).toMatch(/^id:\s+cred_/);
    expect(await cli('credentials', 'revoke', id)).toBe(`revoked ${id}`);
  });

  it('suppressions: add, check, list, export, import (all or nothing), remove', async () => {
    expect(await cli('suppressions', 'add', 'Gone@Example.org', '--reason', 'hard-bounce')).toBe('suppressed Gone@example.org (hard-bounce)');
    expect(await cli('suppression', 'check', 'gone@example.org')).toMatch(/^address:\s+Gone@example.org\nreason:\s+hard-bounce/);
    writeFileSync(join(dir, 'ok.csv'), 'address,reason\nx1@one.test,complaint\nx2@one.test,hard-bounce\n');
    expect(await cli('suppressions', 'import', 'ok.csv')).toBe('imported 2 entries (2 new)');
    const list = (await cli('suppressions', 'list', '--domain', 'one.test')).split('\n');
    expect(list.map((l) => l.split(/\s+/)[0])).toEqual(['ADDRESS', 'x1@one.test', 'x2@one.test', '2']);
    expect(JSON.parse(await cli('suppressions', 'list', '--json'))).toHaveLength(3);
    expect(await cli('suppressions', 'export', '--out', 'out.csv')).toBe(`wrote 3 entries to ${join(dir, 'out.csv')}`);
    expect(readFileSync(join(dir, 'out.csv'), 'utf8').split('\r\n')[0]).toBe('address,reason,source,at,messageId');
    // The API's filters (until 2 Dec 2026 export had neither option: --domain was a usage error, an unfiltered export the only one).
    const filtered = (await cli('suppressions', 'export', '--domain', 'ONE.test', '--reason', 'Complaint')).split('\r\n');
    expect(filtered.map((l) => l.split(',')[0])).toEqual(['address', 'x1@one.test']);
    expect(await cli('suppressions', 'export', '--domain', 'one.test', '--out', 'one.csv')).toBe(`wrote 2 entries to ${join(dir, 'one.csv')}`);
    writeFileSync(join(dir, 'bad.csv'), 'address,reason\nnot-an-address,x\nok@two.test,y\n');
    const bad = await kurir(['suppressions', 'import', 'bad.csv']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/400 VALIDATION: .*\n {2}line 2: /);
    expect(await cli('suppressions', 'remove', 'gone@example.org')).toBe('removed gone@example.org');
    const gone = await kurir(['suppressions', 'check', 'gone@example.org']);
    expect(gone).toMatchObject({ code: 1 });
    expect(gone.stderr).toMatch(/^kurir: 404 NOT_FOUND: gone@example.org is not suppressed/);
  });

  it('messages and queue: show, search by recipient, stats, pause/resume, retry, cancel', async () => {
    const ids: string[] = [];
    for (const subject of ['first', 'second'])
      ids.push((await t.submit({ from: 'noreply@example.test', to: ['guest@example.org'], subject, text: 'x' })).body.id);
    const shown = await cli('messages', 'show', ids[0]);
    expect(shown).toMatch(new RegExp(`^id:\\s+${ids[0]}\\nstatus:\\s+queued`));
    expect(shown).toMatch(/RECIPIENT\s+STATUS\s+ATTEMPTS\s+LAST REPLY\nguest@example.org\s+queued\s+0/);
    expect(shown).toMatch(/AT\s+EVENT\s+HOST\s+REPLY\n\S+Z\s+queued/);
    const found = (await cli('messages', 'search', 'guest@example.org')).split('\n');
    expect(found[0]).toMatch(/^ID\s+CREATED\s+STATUS\s+TO THIS ADDRESS\s+SUBJECT\s+SENT BY/);
    expect(found.slice(1, 3).map((l) => l.split(/\s+/)[0])).toEqual([ids[1], ids[0]]);
    expect(found[3]).toBe('resend to guest@example.org: allowed now'); // this gateway has no per-recipient limit (limits.recipient: null)
    const booked = (await t.submit({ from: 'noreply@example.test', to: ['booked@example.org'], subject: 'ref', text: 'x', metadata: { reference: 'CLI-1' } }))
      .body.id;
    const byRef = (await cli('messages', 'search', '--reference', 'cli-1')).split('\n');
    expect(byRef.slice(1, 2).map((l) => l.split(/\s+/)[0])).toEqual([booked]);
    const paged = JSON.parse(await cli('messages', 'search', 'guest@example.org', '--limit', '1', '--json'));
    expect(paged).toMatchObject({ items: [{ id: ids[1] }], nextCursor: '1' });

    expect(await cli('queue', 'stats')).toMatch(/^STATE\s+JOBS\n/);
    expect(JSON.parse(await cli('queue', 'stats', '--json'))).toHaveProperty('readyByPriority');
    expect(await cli('queue', 'pause', 'gmail', '--seconds', '60')).toBe('paused gmail for 60 s');
    expect(await cli('queue', 'resume', 'gmail')).toBe('resumed gmail (0 held job(s) released)');
    expect(await cli('queue', 'pause', 'example.org')).toBe('paused example.org until resumed');
    expect(await cli('queue', 'resume', 'example.org')).toBe('resumed example.org (0 held job(s) released)');
    expect(await cli('queue', 'retry', ids[0])).toMatch(new RegExp(`^retrying ${ids[0]}\n {2}example\\.org: `));
    expect(await cli('queue', 'cancel', ids[1])).toBe(`cancelled ${ids[1]}: 1 recipient(s) expired`);
    expect(JSON.parse(await cli('messages', 'show', ids[1], '--json')).status).toBe('expired');
  });

  it('placement: status and an on-demand probe', async () => {
    expect(await cli('placement', 'status')).toMatch(/^PROVIDER\s+SEEDS\ngmail\s+gmail-1/);
    expect(await cli('placement', 'probe')).toBe('probe requested for gmail-1; results: kurir placement status');
    const unknown = await kurir(['placement', 'probe', '--seed', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown seed "nope"');
  });

  it('audit: what the CLI did is listed under its key, without secrets', async () => {
    const list = await cli('audit', 'list', '--limit', '200');
    expect(list.split('\n')[0]).toMatch(/^AT\s+ACTOR\s+ROLE\s+IP\s+ACTION\s+TARGET\s+STATUS\s+ROWS$/);
    expect(list).toMatch(/api-key:ops-admin\s+admin\s+127\.0\.0\.1\s+DELETE \/v1\/credentials\/:id\s+cred_\S+\s+204\s+-$/m);
    // ROWS: what each read answered — a page of the list, an export's first entry and its count.
    expect(list).toMatch(/GET \/v1\/suppressions\s+domain=one\.test\s+200\s+2$/m);
    expect(list).toMatch(/GET \/v1\/suppressions\/export\s+domain=one\.test\s+200\s+started$/m);
    expect(list).toMatch(/GET \/v1\/suppressions\/export\s+domain=one\.test\s+200\s+2$/m);
    // --json is the API's page as it came: the entries' after as the gateway wrote it.
    const json = JSON.parse(await cli('audit', 'list', '--limit', '200', '--json'));
    expect(Object.keys(json).sort()).toEqual(['items', 'nextCursor']);
    expect(json.items.find((e: any) => e.action === 'GET /v1/suppressions' && e.target === 'domain=one.test').after).toEqual({ rows: 2, nextPage: false });
    expect(list).toMatch(/bootstrap\s+admin\s+local\s+credentials create --bootstrap/);
    const csv = await cli('audit', 'export', '--format', 'csv');
    expect(csv.split('\r\n')[0]).toBe('id,at,actor,role,ip,action,target,status,before,after');
    expect(csv).not.toContain(adminKey);
  });

  it('exit codes: 0 ok, 1 unknown id, 2 usage, 3 gateway down, 4 wrong or insufficient key', async () => {
    expect((await kurir(['queue', 'stats'])).code).toBe(0);
    const unknown = await kurir(['messages', 'show', '0123456789abcdefghjkmn']);
    expect(unknown).toMatchObject({ code: 1 });
    expect(unknown.stderr).toMatch(/404 NOT_FOUND: message 0123456789abcdefghjkmn not found/);
    expect((await kurir(['credentials', 'revoke', 'cred_nosuchcredential'])).code).toBe(1);
    const usage = await kurir(['queue', 'pause']);
    expect(usage).toMatchObject({ code: 2 });
    expect(usage.stderr).toMatch(/queue pause: the PROVIDER or DOMAIN is required\nRun `kurir --help`/);
    expect((await kurir(['queue', 'stats'], { KURIR_URL: '' })).code).toBe(2);
    const down = await kurir(['queue', 'stats'], { KURIR_URL: `http://127.0.0.1:${await freePort()}` });
    expect(down).toMatchObject({ code: 3 });
    expect(down.stderr).toMatch(/cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
    const wrong = await kurir(['queue', 'stats', '--key', 'not-a-key-of-this-gateway']);
    expect(wrong).toMatchObject({ code: 4 });
    expect(wrong.stderr).toMatch(/401 AUTH_FAILED/);
    const support = JSON.parse(await cli('credentials', 'create', '--name', 'desk', '--role', 'support', '--json')).secret as string;
    await expect.poll(async () => (await kurir(['messages', 'search', 'guest@example.org'], { KURIR_ADMIN_KEY: support })).code, { timeout: 5000 }).toBe(0);
    const forbidden = await kurir(['queue', 'stats'], { KURIR_ADMIN_KEY: support });
    expect(forbidden).toMatchObject({ code: 4 });
    expect(forbidden.stderr).toMatch(/403 FORBIDDEN: This endpoint needs an admin API key/);
  }, 60_000);
});
