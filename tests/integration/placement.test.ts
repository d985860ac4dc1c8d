/**
 * Seed-mailbox placement end to end, all real and on loopback: probes go through Kurir's intake, queue
 * and delivery to a receiving MX (smtp-server) that stamps mailauth's Authentication-Results and hands
 * mail to a real Dovecot over LMTP, where a Sieve rule files spam-marked mail into Junk. The checker
 * searches the seed mailboxes with imapflow.
 *
 * Seeds: gmail (inbox), microsoft (inbox, then junked), yahoo (the MX drops its mail: missing),
 * apple (wrong IMAP password: seed-unreachable, never missing).
 */
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { getPlacement, seedGatewayOverrides, seedZone, waitPlacement as waitSeedPlacement } from '../helpers/dovecot-seeds.js';
import { JUNK_SIEVE, startSeedMx, type SeedMx } from '../helpers/seed-mx.js';
import { closeAll } from '../helpers/close-all.js';

const available = dovecotAvailable();
if (!available.ok) console.warn(`placement integration test SKIPPED: ${available.reason}`);

const SEEDS = [
  { name: 'gmail-1', provider: 'gmail', address: 'seed@gmail.test', pass: 'gmail-secret-1' },
  { name: 'microsoft-1', provider: 'microsoft', address: 'seed@outlook.test', pass: 'ms-secret-1' },
  { name: 'yahoo-1', provider: 'yahoo', address: 'seed@yahoo.test', pass: 'yahoo-secret-1' },
  { name: 'apple-1', provider: 'apple', address: 'seed@icloud.test', pass: 'apple-secret-1' },
];
const DEADLINE_SECONDS = 6;

let dovecot: Dovecot | undefined;
let dns: DnsServer | undefined;
let mx: SeedMx | undefined;
let t: TestGateway | undefined;

const admin = { authorization: `Bearer ${ADMIN_KEY}` };
const placement = (): Promise<any> => getPlacement(t!.url);
const waitPlacement = (predicate: (p: any) => boolean, timeoutMs?: number): Promise<any> => waitSeedPlacement(t!.url, predicate, timeoutMs);
const prov = (p: any, name: string): any => p.providers.find((x: any) => x.provider === name);
async function metric(line: RegExp): Promise<number> {
  const text = await (await fetch(`${t!.url}/metrics`)).text();
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').pop()) : NaN;
}

describe.skipIf(!available.ok)(available.ok ? 'placement probes (Dovecot, LMTP, Sieve, imapflow)' : `placement probes (SKIPPED: ${available.reason})`, () => {
  beforeAll(async () => {
    dovecot = await startDovecot({ users: SEEDS.map((s) => ({ user: s.address, pass: s.pass })), sieve: JUNK_SIEVE });
    dns = await startDnsServer(seedZone(SEEDS.map((s) => s.address)));
    mx = await startSeedMx({ dnsAddress: dns.address, lmtpPort: dovecot.lmtpPort });
    mx.setMode('yahoo.test', 'drop');
    const env = Object.fromEntries(SEEDS.map((s) => [`SEED_${s.provider.toUpperCase()}_PASSWORD`, s.name === 'apple-1' ? 'wrong-password' : s.pass]));
    t = await startTestGateway({
      dns,
      gatewayOptions: { env },
      overrides: seedGatewayOverrides({
        seeds: SEEDS.map((s) => ({ ...s, auth: { method: 'password', passwordEnv: `SEED_${s.provider.toUpperCase()}_PASSWORD` } })),
        imapPort: dovecot.imapPort,
        mxPort: mx.port,
        deadlineSeconds: DEADLINE_SECONDS,
      }),
    });
    t.publishDkim(dns);
  }, 30_000);

  afterAll(() => closeAll(t, mx, dns, dovecot));

  it('places the first scheduled probes: inbox with the receiver verdicts, missing when dropped, seed-unreachable on a wrong password', async () => {
    const started = Date.now();
    const p = await waitPlacement((x) => ['gmail', 'microsoft', 'yahoo', 'apple'].every((n) => prov(x, n)?.results.length >= 1));
    const took = (Date.now() - started) / 1000;

    const gmail = prov(p, 'gmail');
    // The first probes leave as the gateway starts, before the test publishes the DKIM keys it generated:
    // the receiver could not find a key (neutral) and said so. The next round (below) sees dkim=pass.
    expect(gmail.results[0]).toMatchObject({
      result: 'inbox',
      mailbox: 'INBOX',
      seed: 'gmail-1',
      auth: { spf: 'pass', dmarc: 'pass', authservId: 'mx.seed.test' },
    });
    expect(['neutral', 'pass']).toContain(gmail.results[0].auth.dkim);
    expect(gmail.inboxRate1h).toBe(1);
    expect(gmail.medianArrivalSeconds24h).toBeLessThan(DEADLINE_SECONDS);
    expect(gmail.seeds[0]).toMatchObject({ name: 'gmail-1', state: 'up' });
    expect(prov(p, 'microsoft').results[0].result).toBe('inbox');

    const yahoo = prov(p, 'yahoo');
    expect(yahoo.results[0].result).toBe('missing');
    expect(yahoo.inboxRate1h).toBe(0);
    expect(mx!.delivered.get('yahoo.test') ?? 0).toBe(0);

    const apple = prov(p, 'apple');
    expect(apple.results[0].result).toBe('seed-unreachable');
    expect(apple.results[0].error).toMatch(/^auth:/);
    expect(apple.seeds[0]).toMatchObject({ state: 'unreachable', reason: 'auth' });
    // Not a placement at all: no rate from an unreachable seed.
    expect(apple.inboxRate1h).toBeNull();
    // The probe itself was delivered to the apple seed's MX; only our view of the mailbox failed.
    expect(mx!.delivered.get('icloud.test')).toBe(1);

    expect(await metric(/^kurir_placement_results_total\{provider="gmail",folder="inbox"\}/)).toBe(1);
    expect(await metric(/^kurir_placement_results_total\{provider="yahoo",folder="missing"\}/)).toBe(1);
    expect(await metric(/^kurir_placement_results_total\{provider="apple",folder="missing"\}/)).toBe(0);
    expect(await metric(/^kurir_placement_seed_up\{seed="apple-1",provider="apple"\}/)).toBe(0);
    expect(await metric(/^kurir_placement_seed_up\{seed="gmail-1",provider="gmail"\}/)).toBe(1);
    expect(await metric(/^kurir_placement_seed_errors_total\{provider="apple",reason="auth"\}/)).toBeGreaterThanOrEqual(1);
    expect(await metric(/^kurir_placement_arrival_seconds_count\{provider="gmail"\}/)).toBe(1);
    // Probes are verification mail but never confirmed: they stay out of the confirmation rate's denominator.
    expect(await metric(/^kurir_placement_verifications_delivered_total\{provider="gmail",domain="example.test"\}/)).toBe(0);
    console.log(`placement: first round of 4 seeds settled in ${took.toFixed(1)} s; gmail arrival ${gmail.results[0].arrivalSeconds} s`);

    // The probe's own timeline carries its placement.
    const res = await fetch(`${t!.url}/v1/messages/${gmail.results[0].messageId}`, { headers: admin });
    const view = await res.json();
    expect(view.tags).toEqual(['placement-probe']);
    expect(view.priority).toBe('verification');
    expect(view.events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'delivered', 'placement']);
    expect(view.events[3]).toMatchObject({ result: 'inbox', seed: 'gmail-1', provider: 'gmail', authResults: { spf: 'pass', authservId: 'mx.seed.test' } });
  }, 30_000);

  it('flips one provider from inbox to spam when it starts junking, while the others stay in the inbox', async () => {
    mx!.setMode('outlook.test', 'junk');
    const before = await placement();
    const counts = (x: any, n: string): number => prov(x, n).results.length;
    for (const seed of ['microsoft-1', 'gmail-1']) {
      const res = await fetch(`${t!.url}/v1/placement/probes`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/json' },
        body: JSON.stringify({ seed }),
      });
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({ requested: [seed] });
    }
    const p = await waitPlacement((x) => counts(x, 'microsoft') > counts(before, 'microsoft') && counts(x, 'gmail') > counts(before, 'gmail'));
    expect(prov(p, 'microsoft').results[0]).toMatchObject({ result: 'spam', mailbox: 'Junk', auth: { dkim: 'pass', spf: 'pass', dmarc: 'pass' } });
    expect(prov(p, 'microsoft').lastAuth).toMatchObject({ dkim: 'pass' });
    expect(prov(p, 'microsoft').inboxRate1h).toBe(0.5);
    expect(prov(p, 'gmail').results[0].result).toBe('inbox');
    expect(prov(p, 'gmail').inboxRate1h).toBe(1);
    expect(await metric(/^kurir_placement_results_total\{provider="microsoft",folder="spam"\}/)).toBe(1);

    // The checker deleted what it found: the seed mailbox's Junk and INBOX are empty again.
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: dovecot!.imapPort,
      secure: false,
      auth: { user: 'seed@outlook.test', pass: 'ms-secret-1' },
      logger: false,
    });
    await client.connect();
    const junk = await client.status('Junk', { messages: true });
    const inbox = await client.status('INBOX', { messages: true });
    await client.logout();
    expect([junk && junk.messages, inbox && inbox.messages]).toEqual([0, 0]);
  }, 30_000);

  it('refuses on-demand probes for an unknown seed (400 naming the field) and for non-admin keys (403)', async () => {
    const bad = await fetch(`${t!.url}/v1/placement/probes`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ seed: 'nope' }),
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatchObject({ code: 'VALIDATION', field: 'seed' });
    const user = await fetch(`${t!.url}/v1/placement`, { headers: { authorization: 'Bearer dev-api-key-change-me-0001' } });
    expect(user.status).toBe(403);
  });
});
