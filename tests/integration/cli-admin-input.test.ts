/**
 * `kurir` in-process against a test gateway: what it does with input it cannot use. An option the command does
 * not take, or an argument too many, is a usage error (exit 2) naming it, and nothing is sent to the gateway —
 * a mistyped `--domain` for `--domains` must not create a key for every sender domain.
 */
import { describe, expect, it } from 'vitest';
import { runCliCommand } from '../../src/cli/main.js';
import { ADMIN_KEY, adminRequest, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

let t: TestGateway;

gatewayForFile({ overrides: { roles: ['api', 'intake'] } }, (g) => {
  t = g;
});

/** Runs the CLI against the test gateway with the admin key; answers its output and exit code, or the error's. */
async function kurir(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const r = await runCliCommand(args, { cwd: t.dataDir, env: { KURIR_URL: t.url, KURIR_ADMIN_KEY: ADMIN_KEY } });
    return { code: r.exitCode, output: r.output };
  } catch (err) {
    return { code: (err as { exitCode?: number }).exitCode ?? -1, output: (err as Error).message };
  }
}

describe('kurir refuses options and arguments a command does not take', () => {
  it('credentials create with --domain (not --domains): exit 2 naming it, no key created', async () => {
    const r = await kurir('credentials', 'create', '--name', 'shop-scoped', '--domain', 'example.test');
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/^credentials create: --domain is not an option of this command/);
    const { body } = await adminRequest(t.url, 'GET', '/v1/credentials');
    expect(body.items.map((c: { name: string }) => c.name)).not.toContain('shop-scoped');
  });

  it('suppressions list with --domains (not --domain): exit 2 naming it', async () => {
    const r = await kurir('suppressions', 'list', '--domains', 'example.org');
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/^suppressions list: --domains is not an option of this command/);
  });

  it('suppressions add with two addresses: exit 2 naming the second, neither suppressed', async () => {
    const r = await kurir('suppressions', 'add', 'one@example.org', 'two@example.org');
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/^suppressions add: unexpected argument two@example\.org/);
    for (const a of ['one@example.org', 'two@example.org']) expect((await adminRequest(t.url, 'GET', `/v1/suppressions/${a}`)).status).toBe(404);
  });

  it('credentials update with --webhook-events but no --webhook-url: exit 2, the scope change not made either', async () => {
    const created = JSON.parse((await kurir('credentials', 'create', '--name', 'hooked', '--json')).output);
    const r = await kurir('credentials', 'update', created.credential.id, '--role', 'support', '--webhook-events', 'bounced');
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/^--webhook-events: goes with --webhook-url URL/);
    expect((await adminRequest(t.url, 'GET', `/v1/credentials/${created.credential.id}`)).body).toMatchObject({ role: 'send', webhook: null });
    const none = await kurir('credentials', 'update', created.credential.id, '--webhook-url', 'none', '--webhook-secret', 's'.repeat(16));
    expect(none.code).toBe(2);
    expect(none.output).toMatch(/^--webhook-secret: goes with --webhook-url URL/);
  });

  it('credentials update --per-day keeps the per-second limit set before, and the other way round', async () => {
    const created = JSON.parse((await kurir('credentials', 'create', '--name', 'limited', '--per-second', 'none', '--per-day', '500', '--json')).output);
    const id = created.credential.id as string;
    expect((await kurir('credentials', 'update', id, '--per-day', '100')).code).toBe(0);
    expect((await adminRequest(t.url, 'GET', `/v1/credentials/${id}`)).body.limits).toEqual({ perSecond: null, perDay: 100 });
    expect((await kurir('credentials', 'update', id, '--per-second', '5')).code).toBe(0);
    expect((await adminRequest(t.url, 'GET', `/v1/credentials/${id}`)).body.limits).toEqual({ perSecond: 5, perDay: 100 });
  });

  // Found 2 Dec 2026 (admin audit): each was sent and came back as the gateway's 400, exit 1.
  it('credentials create --username for an API key: exit 2 naming --username, no key created', async () => {
    const r = await kurir('credentials', 'create', '--name', 'named-key', '--username', 'named');
    expect(r).toEqual({ code: 2, output: expect.stringMatching(/^--username: only SMTP accounts have a user name/) });
    const { body } = await adminRequest(t.url, 'GET', '/v1/credentials');
    expect(body.items.map((c: { name: string }) => c.name)).not.toContain('named-key');
    expect((await kurir('credentials', 'create', '--name', 'named-account', '--kind', 'smtp-account', '--username', 'named')).code).toBe(0);
  });

  it('numbers out of the API range are exit 2 naming the option; one only the gateway can judge is its answer, exit 1', async () => {
    expect(await kurir('domains', 'reports', 'example.test', '--days', '0')).toEqual({
      code: 2,
      output: '--days: a whole number of days from 1 to 3650 (not 0)',
    });
    // Within the most any gateway keeps, beyond this one's feedback.reports.retentionDays (90): the gateway says so.
    expect(await kurir('domains', 'reports', 'example.test', '--days', '91')).toEqual({
      code: 1,
      output: expect.stringMatching(/^400 VALIDATION: days: a whole number from 1 to 90 /),
    });
    expect((await kurir('domains', 'reports', 'example.test', '--days', '90')).code).toBe(0);
    const pause = await kurir('queue', 'pause', 'gmail', '--seconds', '2592001');
    expect(pause).toEqual({ code: 2, output: '--seconds: a whole number of seconds from 1 to 2592000 (not 2592001)' });
    const shaping = (await adminRequest(t.url, 'GET', '/v1/shaping')).body;
    expect(shaping.providers.find((p: { provider: string }) => p.provider === 'gmail').adminPaused).toBeNull();
  });

  it('the options a command takes still work, with the common ones', async () => {
    const r = await kurir('suppressions', 'add', 'three@example.org', '--reason', 'complaint', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.output)).toMatchObject({ address: 'three@example.org', reason: 'complaint' });
  });
});
