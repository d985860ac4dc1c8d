/**
 * OAuth2 seed mailboxes (Gmail / Microsoft 365 style XOAUTH2) end to end on loopback: a real Dovecot 2.3
 * whose `oauth2` passdb checks each access token against a token introspection endpoint the test serves
 * (tests/helpers/dovecot-oauth2.ts), seeds with `auth.method: oauth2` whose `tokenCommand` prints the token
 * the "provider" issued, and Kurir's checker logging in with imapflow's accessToken.
 *
 * gmail's command prints an active token → its probe is found in the inbox; microsoft's prints a revoked
 * one → seed-unreachable (reason auth), never missing. After a new token is issued, the next probe logs
 * in: the refused token was dropped from the cache and the command asked again.
 *
 * The seed state is written before the search's results (watched with Redis MONITOR): until 1 Dec 2026 the
 * inbox result came first, and a reader between the two writes saw the new result beside the old
 * `unreachable` state (a CI run failed on exactly that).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/store/keys.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startIntrospectionServer, type IntrospectionServer } from '../helpers/dovecot-oauth2.js';
import { getPlacement, seedGatewayOverrides, seedZone, waitPlacement as waitSeedPlacement } from '../helpers/dovecot-seeds.js';
import { openMonitor } from '../helpers/redis-monitor.js';
import { JUNK_SIEVE, startSeedMx, type SeedMx } from '../helpers/seed-mx.js';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const available = dovecotAvailable();
if (!available.ok) console.warn(`placement OAuth2 test SKIPPED: ${available.reason}`);

const SEEDS = [
  { name: 'gmail-1', provider: 'gmail', address: 'seed@gmail.test' },
  { name: 'microsoft-1', provider: 'microsoft', address: 'seed@outlook.test' },
];
/** What a provider's token helper does: print the current access token (and we count the calls). */
const TOKEN_SCRIPT = '#!/bin/sh\necho call >> "$1.calls"\ncat "$1"\n';

let intro: IntrospectionServer | undefined;
let dovecot: Dovecot | undefined;
let dns: DnsServer | undefined;
let mx: SeedMx | undefined;
let t: TestGateway | undefined;
let tmp: string | undefined;

const admin = { authorization: `Bearer ${ADMIN_KEY}` };
const tokenFile = (provider: string): string => join(tmp!, `${provider}.token`);
const commandCalls = (provider: string): number =>
  readFileSync(`${tokenFile(provider)}.calls`, 'utf8')
    .trim()
    .split('\n').length;
const placement = async (): Promise<Record<string, any>> => byProvider(await getPlacement(t!.url));
const waitPlacement = async (predicate: (p: Record<string, any>) => boolean): Promise<Record<string, any>> =>
  byProvider(await waitSeedPlacement(t!.url, (p) => predicate(byProvider(p))));
const byProvider = (p: any): Record<string, any> => Object.fromEntries(p.providers.map((x: any) => [x.provider, x]));
async function metric(line: RegExp): Promise<number> {
  const text = await (await fetch(`${t!.url}/metrics`)).text();
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').pop()) : NaN;
}

/**
 * Microsoft 365 advertises only AUTH=XOAUTH2; Gmail advertises XOAUTH2 and OAUTHBEARER, and imapflow then
 * prefers OAUTHBEARER (RFC 7628). Both paths run.
 */
const SERVERS = [
  { like: 'Microsoft 365', mechanisms: ['xoauth2' as const], method: 'XOAUTH2' },
  { like: 'Gmail', mechanisms: ['xoauth2' as const, 'oauthbearer' as const], method: 'OAUTHBEARER' },
];

describe.skipIf(!available.ok).each(SERVERS)(
  available.ok ? 'OAuth2 seed mailboxes on Dovecot offering $mechanisms (like $like)' : `OAuth2 seed mailboxes (SKIPPED: ${available.reason})`,
  ({ mechanisms, method }) => {
    beforeAll(async () => {
      tmp = mkdtempSync(join(tmpdir(), 'kurir-oauth2-seeds-'));
      intro = await startIntrospectionServer();
      // The seeds also have passwords in Dovecot's passwd-file (LMTP delivery looks users up there); Kurir
      // never knows them, so only the OAuth2 login can get in.
      dovecot = await startDovecot({
        users: SEEDS.map((s) => ({ user: s.address, pass: `unused-${s.provider}-password` })),
        sieve: JUNK_SIEVE,
        oauth2: { introspectionUrl: intro.url, mechanisms },
      });
      writeFileSync(join(tmp, 'token.sh'), TOKEN_SCRIPT);
      chmodSync(join(tmp, 'token.sh'), 0o755);
      writeFileSync(tokenFile('gmail'), intro.issue('seed@gmail.test'));
      const expired = intro.issue('seed@outlook.test');
      intro.revoke(expired);
      writeFileSync(tokenFile('microsoft'), expired);

      dns = await startDnsServer(seedZone(SEEDS.map((s) => s.address)));
      mx = await startSeedMx({ dnsAddress: dns.address, lmtpPort: dovecot.lmtpPort });
      t = await startTestGateway({
        dns,
        overrides: seedGatewayOverrides({
          seeds: SEEDS.map((s) => ({ ...s, auth: { method: 'oauth2', tokenCommand: ['/bin/sh', join(tmp!, 'token.sh'), tokenFile(s.provider)] } })),
          imapPort: dovecot.imapPort,
          mxPort: mx.port,
          deadlineSeconds: 6,
        }),
      });
      t.publishDkim(dns);
    }, 30_000);

    afterAll(async () => {
      await t?.close();
      await mx?.close();
      await dns?.close();
      await dovecot?.close();
      await intro?.close();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('an active token logs in (inbox); a revoked one makes the seed unreachable, not missing', async () => {
      const started = Date.now();
      const p = await waitPlacement((x) => SEEDS.every((s) => x[s.provider]?.results.length >= 1));
      console.log(`oauth2 seeds (${method}): first round placed in ${((Date.now() - started) / 1000).toFixed(1)} s`);

      expect(p.gmail.results[0]).toMatchObject({ result: 'inbox', mailbox: 'INBOX', seed: 'gmail-1' });
      expect(p.gmail.seeds[0]).toMatchObject({ name: 'gmail-1', state: 'up' });

      expect(p.microsoft.results[0].result).toBe('seed-unreachable');
      expect(p.microsoft.results[0].error).toMatch(/^auth:/);
      expect(p.microsoft.seeds[0]).toMatchObject({ state: 'unreachable', reason: 'auth' });
      expect(p.microsoft.inboxRate1h).toBeNull();
      // The probe reached the microsoft mailbox; only Kurir's login was refused.
      expect(mx!.delivered.get('outlook.test')).toBe(1);

      expect(await metric(/^kurir_placement_seed_up\{seed="gmail-1",provider="gmail"\}/)).toBe(1);
      expect(await metric(/^kurir_placement_seed_up\{seed="microsoft-1",provider="microsoft"\}/)).toBe(0);
      expect(await metric(/^kurir_placement_seed_errors_total\{provider="microsoft",reason="auth"\}/)).toBeGreaterThanOrEqual(1);
      expect(await metric(/^kurir_placement_results_total\{provider="microsoft",folder="missing"\}/)).toBe(0);

      // Dovecot asked the introspection endpoint about both tokens, and logged gmail in with the expected
      // OAuth2 mechanism (not a password).
      const gmailToken = readFileSync(tokenFile('gmail'), 'utf8');
      const microsoftToken = readFileSync(tokenFile('microsoft'), 'utf8');
      expect(intro!.requests.some((r) => r.token === gmailToken && r.active)).toBe(true);
      expect(intro!.requests.some((r) => r.token === microsoftToken && !r.active)).toBe(true);
      const log = readFileSync(join(dovecot!.dir, 'dovecot.log'), 'utf8');
      expect(log).toMatch(new RegExp(`imap-login: Info: Login: user=<seed@gmail\\.test>, method=${method},`));
      expect(log).not.toMatch(/Login: user=<seed@outlook\.test>/);
    }, 30_000);

    it('after the provider issues a new token, the next probe logs in: the refused token was not kept', async () => {
      const callsBefore = commandCalls('microsoft');
      writeFileSync(tokenFile('microsoft'), intro!.issue('seed@outlook.test'));
      const before = (await placement()).microsoft.results.length;
      const keys = createKeys(t!.config.redis.prefix);
      const monitor = await openMonitor();
      const res = await fetch(`${t!.url}/v1/placement/probes`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/json' },
        body: JSON.stringify({ seed: 'microsoft-1' }),
      });
      expect(res.status).toBe(202);
      const p = await waitPlacement((x) => x.microsoft.results.length > before && x.microsoft.results[0].result !== 'seed-unreachable');
      expect(p.microsoft.results[0]).toMatchObject({ result: 'inbox', seed: 'microsoft-1' });
      expect(p.microsoft.seeds[0]).toMatchObject({ state: 'up' });
      await monitor.sync();
      await monitor.close();
      const writes: string[] = [];
      for (const { args } of monitor.commands) {
        if (args[1] === keys.placementSeedState('microsoft-1') && args[0]!.toLowerCase() === 'hset') writes.push(`state ${args.slice(2).join(' ')}`);
        if (args[1] === keys.placementResults('microsoft') && args[0]!.toLowerCase() === 'lpush') writes.push(`result ${JSON.parse(args[2]!).result}`);
      }
      const inbox = writes.indexOf('result inbox');
      const up = writes.findIndex((w) => w.startsWith('state state up '));
      expect(up, writes.join('; ')).toBeGreaterThanOrEqual(0);
      expect(up, writes.join('; ')).toBeLessThan(inbox);
      expect(commandCalls('microsoft')).toBeGreaterThan(callsBefore);
      expect(await metric(/^kurir_placement_seed_up\{seed="microsoft-1",provider="microsoft"\}/)).toBe(1);
    }, 30_000);
  },
);
