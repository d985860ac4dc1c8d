/**
 * `kurir domains …` and `kurir doctor` against a running gateway over HTTP, through the real entry (src/cli/bin.ts,
 * spawned with tsx, URL and key from the environment): add, show, set, verify against a loopback DNS server,
 * rotate, revoke, remove, the doctor's report, and their exit codes (0 ok, 1 the gateway said no, 2 usage or a
 * failed check, 3 gateway down, 4 key refused). The other families are in cli-admin.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { runKurirBin, type KurirRun } from '../helpers/cli-process.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { freePort } from '../helpers/ports.js';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'kurir-cli-domains-'));
let t: TestGateway;
let dns: DnsServer;

/** Runs the real CLI entry with this gateway's URL and the configured admin key. */
const kurir = (args: string[], env: Record<string, string> = {}): Promise<KurirRun> =>
  runKurirBin(args, dir, { KURIR_URL: t.url, KURIR_ADMIN_KEY: ADMIN_KEY, KURIR_REDIS__PREFIX: t.config.redis.prefix, ...env });

/** The CLI in-process with this gateway's URL and the admin key. */
const cli = (...args: string[]): Promise<string> => runCli(args, { cwd: dir, env: { KURIR_URL: t.url, KURIR_ADMIN_KEY: ADMIN_KEY } });

beforeAll(async () => {
  dns = await startDnsServer({});
  t = await startTestGateway({
    dns,
    overrides: {
      domainKeys: { masterKey: 'd'.repeat(64), sendingIps: ['192.0.2.10'], refreshSeconds: 0.2 },
      doctor: { blocklists: [] },
      roles: ['api'],
      authLimits: { delayStepMs: 0 },
    },
  });
}, 30_000);

afterAll(async () => {
  await t?.close();
  await dns?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('kurir domains and doctor over the admin API', () => {
  it('domains: add, show, verify failing with the reason, list, then verify, rotate, revoke, remove', async () => {
    const added = await kurir(['domains', 'add', 'cli.test']);
    expect(added).toMatchObject({ code: 0, stderr: '' });
    expect(added.stdout).toMatch(
      /^cli\.test: pending-dns\n {2}key k\d{4}m\d{2} rsa-2048: pending\n {2}scheduled rotation: every 90 days \(config\)\n; records to publish\n/,
    );
    expect(added.stdout).toContain('_smtp._tls.cli.test. IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@bounce.example.test"');
    expect(added.stdout).toMatch(/\n; file to serve at https:\/\/mta-sts\.cli\.test\/\.well-known\/mta-sts\.txt \(text\/plain\)/);
    const dkim = added.stdout.split('\n').find((l) => l.includes('._domainkey.cli.test. IN TXT ('))!;
    expect(dkim).toMatch(/^k\d{4}m\d{2}\._domainkey\.cli\.test\. IN TXT \( "v=DKIM1; k=rsa; p=[^"]{200,}" "[^"]+" \) {2}; publish, then verify/);
    expect(added.stdout).toContain('cli.test. IN TXT "v=spf1 ip4:192.0.2.10 -all"');
    expect(added.stdout).not.toMatch(/PRIVATE KEY/);

    const view = JSON.parse(await cli('domains', 'show', 'cli.test', '--json'));
    expect(view).toMatchObject({ name: 'cli.test', source: 'runtime', state: 'pending-dns' });
    const selector = view.keys[0].selector as string;
    expect(await cli('domain', 'show', 'CLI.test')).toMatch(new RegExp(`^cli\\.test: pending-dns\n {2}key ${selector} rsa-2048: pending`));

    // Its own settings: scheduled rotation and the MTA-STS mx: lines (PATCH).
    expect(await cli('domains', 'set', 'cli.test', '--rotate-every', '30', '--mta-sts-mx', 'mx1.cli.test,*.mx.cli.test')).toMatch(
      /\n {2}scheduled rotation: every 30 days \(domain\)\n[\s\S]*\n; {3}mx: mx1\.cli\.test\n; {3}mx: \*\.mx\.cli\.test\n/,
    );
    for (const every of ['soon', '1.5'])
      expect(await kurir(['domains', 'set', 'cli.test', '--rotate-every', every])).toMatchObject({
        code: 2,
        stdout: '',
        stderr: expect.stringContaining('--rotate-every'),
      });
    expect(await cli('domains', 'set', 'cli.test', '--rotate-every', 'never')).toContain('\n  scheduled rotation: off\n');

    // Nothing published yet: the gateway says why, the domain stays pending, exit 2 (the doctor's "fail").
    const failing = await kurir(['domains', 'verify', 'cli.test']);
    expect(failing).toMatchObject({ code: 2, stderr: '' });
    expect(failing.stdout).toMatch(
      new RegExp(
        `^cli\\.test: pending-dns\n {2}key ${selector} rsa-2048: pending\n {2}last verification \\S+Z: .*${selector}\\._domainkey\\.cli\\.test.*NXDOMAIN`,
      ),
    );
    const list = (await cli('domains', 'list')).split('\n');
    expect(list[0]).toMatch(/^DOMAIN\s+SOURCE\s+STATE\s+REASON$/);
    expect(list.slice(1)).toEqual([
      expect.stringMatching(/^cli\.test\s+runtime\s+pending-dns\s+\S/),
      expect.stringMatching(/^example\.test\s+config\s+active\s+-$/),
    ]);
    expect(JSON.parse(await cli('domains', 'list', '--json')).map((d: { name: string }) => d.name)).toEqual(['cli.test', 'example.test']);

    const rec = view.records.find((r: { purpose: string }) => r.purpose === 'dkim');
    dns.set(rec.name, 'TXT', [rec.strings]);
    expect(await kurir(['domains', 'verify', 'cli.test', '--json'])).toMatchObject({ code: 0, stdout: expect.stringContaining('"state": "active"') });
    expect(await cli('domains', 'verify', 'cli.test')).toMatch(
      new RegExp(`^cli\\.test: active\n {2}key ${selector} rsa-2048: active\n {2}last verification \\S+Z: ok`),
    );
    const rotated = JSON.parse(await cli('domains', 'rotate', 'cli.test', '--json'));
    expect(rotated.keys.map((k: { status: string }) => k.status)).toEqual(['active', 'pending']);
    const revoked = await cli('domains', 'revoke', 'cli.test', selector);
    expect(revoked).toMatch(new RegExp(`^cli\\.test: suspended \\(.+\\)\n {2}key ${selector} rsa-2048: revoked`));
    expect(await cli('domains', 'remove', 'cli.test')).toMatch(/^cli\.test: removed/);
    expect(await cli('domains', 'list')).not.toContain('cli.test');
  });

  it('domains: usage and error exit codes; dns and rewrap stay local', async () => {
    const unknown = await kurir(['domains', 'show', 'nosuch.test']);
    expect(unknown).toMatchObject({ code: 1, stdout: '' });
    expect(unknown.stderr).toMatch(/^kurir: 404 NOT_FOUND: domain: nosuch\.test is not a runtime-managed sender domain/);
    const configured = await kurir(['domains', 'add', 'example.test']);
    expect(configured.code).toBe(1);
    expect(configured.stderr).toMatch(/^kurir: 409 /);
    const noSelector = await kurir(['domains', 'revoke', 'cli.test']);
    expect(noSelector).toMatchObject({ code: 2 });
    expect(noSelector.stderr).toContain('domains revoke: the SELECTOR is required');
    expect((await kurir(['domains', 'add', 'x.test', '--bits', '1024'])).code).toBe(2);
    const down = await kurir(['domains', 'list'], { KURIR_URL: `http://127.0.0.1:${await freePort()}` });
    expect(down).toMatchObject({ code: 3 });
    expect(down.stderr).toMatch(/cannot reach the gateway at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
    const wrong = await kurir(['domains', 'list', '--key', 'not-a-key-of-this-gateway']);
    expect(wrong).toMatchObject({ code: 4 });
    expect(wrong.stderr).toMatch(/401 AUTH_FAILED/);
    const help = await cli('domains', '--help');
    expect(help).toMatch(/kurir domains add DOMAIN \[--ed25519\] \[--bits 2048\|3072\|4096\]/);
    expect(help).toMatch(/Local \(this machine's configuration and Redis, no gateway; bootstrap and offline operations\):\n {2}kurir domains dns/);
    expect(help).toContain('kurir domains rewrap');
    // `domains dns` reads the configuration, not the gateway: it works with the gateway unreachable.
    const dnsOut = await kurir(['domains', 'dns'], { KURIR_URL: `http://127.0.0.1:${await freePort()}` });
    expect(dnsOut).toMatchObject({ code: 0 });
    expect(dnsOut.stdout).toMatch(/^; example\.test\n/);
  }, 60_000);

  it('doctor: the exit code is the worst result, --json prints the report, errors keep their codes', async () => {
    // Nothing of example.test is published on the loopback DNS: SPF, DKIM and DMARC fail.
    const failed = await kurir(['doctor', 'example.test']);
    expect(failed.code).toBe(2);
    expect(failed.stdout).toMatch(/^example\.test \(configured\): FAIL\n/);
    expect(failed.stdout).toMatch(/\nFAIL {2}dkim:kurir1: .*\n {6}why: /);
    const report = JSON.parse((await kurir(['doctor', 'example.test', '--json'])).stdout);
    expect(report).toMatchObject({ domain: 'example.test', source: 'config', result: 'fail', exitCode: 2 });
    const counts = ['pass', 'warn', 'fail'].map((s) => report.checks.filter((c: { status: string }) => c.status === s).length);
    expect(failed.stdout).toMatch(new RegExp(`\n${counts[0]} pass, ${counts[1]} warn, ${counts[2]} fail\n$`));

    const unknown = await kurir(['doctor', 'nowhere.test']);
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toContain('404 NOT_FOUND: domain: nowhere.test is not a sender domain');
    expect((await kurir(['doctor'])).code).toBe(2);
    expect((await kurir(['doctor', 'example.test'], { KURIR_URL: `http://127.0.0.1:${await freePort()}` })).code).toBe(3);
    expect((await kurir(['doctor', 'example.test', '--key', 'not-a-key-of-this-gateway'])).code).toBe(4);
  }, 60_000);
});
