/**
 * The incident drill of issue 10, end to end and all real on loopback: healthy verification traffic to three
 * providers (three recipient domains mapped by shaping.providers, one receiving MX, Dovecot seed mailboxes
 * over LMTP/IMAP), then microsoft starts junking Kurir's mail (its seed mailbox files probes into Junk) and
 * gmail starts refusing with `550 5.7.26 … DMARC …`. GET /v1/incidents must name the right provider and
 * cause for each and leave yahoo ok; a real Prometheus loaded with dashboards/alerts.yml must fire
 * KurirAuthRefusals for gmail/dmarc, hold KurirSpamPlacementHigh pending for microsoft (its `for: 15m`
 * cannot pass in a test: promtool covers the firing) and raise nothing for yahoo.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dnsRecordFor, generateDkimKey } from '../../src/dkim/keys.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { DASHBOARDS, prometheusAvailable, startPrometheus, waitFor, type PrometheusServer } from '../helpers/prometheus.js';
import { seedGatewayOverrides, seedZone } from '../helpers/dovecot-seeds.js';
import { JUNK_SIEVE, startSeedMx, type SeedMx } from '../helpers/seed-mx.js';
import { ADMIN_KEY, API_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const dovecot_ = dovecotAvailable();
const prometheus_ = prometheusAvailable();
if (!dovecot_.ok) console.warn(`incident drill SKIPPED: ${dovecot_.reason}`);
else if (!prometheus_.ok) console.warn(`incident drill: the real-Prometheus alert check is SKIPPED: ${prometheus_.reason}`);

const PROVIDERS = [
  { provider: 'gmail', domain: 'gmail.test' },
  { provider: 'microsoft', domain: 'outlook.test' },
  { provider: 'yahoo', domain: 'yahoo.test' },
];
const PASS = 'seed-secret';
const DMARC_REFUSAL = {
  code: 550,
  message:
    "5.7.26 Unauthenticated email from example.test is not accepted due to domain's DMARC policy. Please contact the administrator of example.test domain if this was a legitimate mail.",
};

let dovecot: Dovecot | undefined;
let dns: DnsServer | undefined;
let mx: SeedMx | undefined;
let t: TestGateway | undefined;
let prom: PrometheusServer | undefined;
let keyDir: string | undefined;

const admin = { authorization: `Bearer ${ADMIN_KEY}` };
const get = async (path: string): Promise<any> => {
  const res = await fetch(`${t!.url}${path}`, { headers: admin });
  expect(res.status).toBe(200);
  return res.json();
};
const incidentsOf = async (): Promise<Record<string, any>> => Object.fromEntries((await get('/v1/incidents')).providers.map((p: any) => [p.provider, p]));
const placementCount = async (provider: string): Promise<number> =>
  (await get('/v1/placement?last=50')).providers.find((p: any) => p.provider === provider)?.results.length ?? 0;

/** Sends one verification message to each address and waits until each is final. */
async function traffic(addresses: string[]): Promise<Array<{ id: string; status: any }>> {
  const ids = await Promise.all(
    addresses.map(async (to) => {
      const res = await t!.submit({ from: 'verify@example.test', to: [to], subject: 'Your code', text: 'Your code is 123456', priority: 'verification' });
      expect(res.status).toBe(202);
      return res.body.id as string;
    }),
  );
  return Promise.all(ids.map(async (id) => ({ id, status: await t!.waitForStatus(id, (s) => ['delivered', 'bounced'].includes(s.status), 15_000) })));
}

describe.skipIf(!dovecot_.ok)(dovecot_.ok ? 'incident drill (three providers, Dovecot, Prometheus)' : `incident drill (SKIPPED: ${dovecot_.reason})`, () => {
  beforeAll(async () => {
    const users = PROVIDERS.flatMap(({ domain }) => [`seed@${domain}`, `app1@${domain}`, `app2@${domain}`].map((user) => ({ user, pass: PASS })));
    dovecot = await startDovecot({ users, sieve: JUNK_SIEVE });
    // DKIM keys made and published before the gateway starts, so the very first probes verify (dkim=pass):
    // a healthy provider must have nothing to report, not even a key missing from DNS for a moment.
    keyDir = mkdtempSync(join(tmpdir(), 'kurir-drill-dkim-'));
    const key = generateDkimKey('rsa');
    writeFileSync(join(keyDir, 'rsa.pem'), key.privateKeyPem, { mode: 0o600 }); // a key others can read is refused at start
    dns = await startDnsServer({
      ...seedZone(PROVIDERS.map(({ domain }) => `seed@${domain}`)),
      'kurir1._domainkey.example.test': { TXT: [dnsRecordFor('rsa', key.publicKeyBase64)] },
    });
    mx = await startSeedMx({ dnsAddress: dns.address, lmtpPort: dovecot.lmtpPort });
    t = await startTestGateway({
      dns,
      gatewayOptions: { env: { SEED_PASSWORD: PASS } },
      overrides: {
        ...seedGatewayOverrides({
          seeds: PROVIDERS.map(({ provider, domain }) => ({
            name: `${provider}-1`,
            provider,
            address: `seed@${domain}`,
            auth: { method: 'password', passwordEnv: 'SEED_PASSWORD' },
          })),
          imapPort: dovecot.imapPort,
          mxPort: mx.port,
          deadlineSeconds: 8,
        }),
        domains: [{ name: 'example.test', dkim: [{ selector: 'kurir1', algorithm: 'rsa', privateKeyFile: join(keyDir, 'rsa.pem') }] }],
      },
    });
    if (prometheus_.ok) {
      prom = await startPrometheus({
        targets: [`127.0.0.1:${t.gateway.ports.http}`],
        job: 'kurir',
        ruleFiles: [`${DASHBOARDS}/recording-rules.yml`, `${DASHBOARDS}/alerts.yml`],
      });
      await waitFor('first scrape', async () => (await prom!.query('up{job="kurir"}')).samples[0]?.value?.[1] === '1', 15_000);
    }
  }, 40_000);

  afterAll(async () => {
    await prom?.close();
    await t?.close();
    await mx?.close();
    await dns?.close();
    await dovecot?.close();
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  it('healthy: every provider delivers and places in the inbox, and all three are ok', async () => {
    const started = Date.now();
    await waitFor('first probe round', async () => (await Promise.all(PROVIDERS.map((p) => placementCount(p.provider)))).every((n) => n >= 1), 20_000);
    const sent = await traffic(PROVIDERS.flatMap(({ domain }) => [`app1@${domain}`, `app2@${domain}`]));
    expect(sent.map((s) => s.status.status)).toEqual(Array(6).fill('delivered'));
    // The booking system confirms one yahoo applicant: counted against yahoo's verification deliveries.
    const yahooId = sent.find((s) => s.status.recipients['app1@yahoo.test'])!.id;
    const confirm = await fetch(`${t!.url}/v1/messages/${yahooId}/confirm`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(confirm.status).toBe(200);

    const view = await get('/v1/incidents');
    expect(view.status).toBe('ok');
    const by = Object.fromEntries(view.providers.map((p: any) => [p.provider, p]));
    for (const { provider } of PROVIDERS) {
      expect(by[provider], provider).toMatchObject({ status: 'ok', findings: [] });
      // 2 applicants + 1 probe delivered; the probe was found in the inbox with the receiver's verdicts all pass.
      expect(by[provider].facts).toMatchObject({ delivered: 3, bounced: 0, deferred: 0 });
      expect(by[provider].facts.placement).toMatchObject({
        probes: 1,
        counts: { inbox: 1, spam: 0 },
        inboxRate: 1,
        auth: { dkim: { pass: 1 }, dmarc: { pass: 1 } },
      });
      expect(by[provider].facts.placement.seeds).toEqual([expect.objectContaining({ name: `${provider}-1`, state: 'up' })]);
    }
    // Probes are not confirmable mail: only the applicants count; one of yahoo's two is confirmed.
    expect(by.yahoo.facts.confirmations).toMatchObject({ delivered: 2, confirmed: 1, rate: 0.5, baseline: null });
    console.log(`drill: healthy phase (3 seeds placed, 6 messages delivered) took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 40_000);

  it('microsoft junks and gmail refuses for DMARC: the view names provider and cause, yahoo stays ok', async () => {
    const started = Date.now();
    mx!.setMode('outlook.test', 'junk');
    mx!.setRefusal('gmail.test', DMARC_REFUSAL);
    const before = await placementCount('microsoft');
    const probe = await fetch(`${t!.url}/v1/placement/probes`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: '{"seed":"microsoft-1"}',
    });
    expect(probe.status).toBe(202);
    const sent = await traffic(PROVIDERS.flatMap(({ domain }) => [`app1@${domain}`, `app2@${domain}`]));
    const gmail = sent.filter((s) => s.status.recipients['app1@gmail.test'] || s.status.recipients['app2@gmail.test']);
    expect(gmail.map((s) => s.status.status)).toEqual(['bounced', 'bounced']);
    expect(sent.filter((s) => s.status.status === 'delivered')).toHaveLength(4);
    await waitFor('the microsoft probe placed', async () => (await placementCount('microsoft')) > before, 20_000);

    // The cause is on the bounce's timeline event, and the sender-side refusal suppressed nobody.
    const bounced = gmail[0].status.events.find((e: any) => e.type === 'bounced');
    expect(bounced).toMatchObject({ category: 'auth-failure', cause: 'dmarc' });
    expect(bounced.reply).toMatch(/^550 5\.7\.26 /);
    expect(gmail[0].status.events.some((e: any) => e.type === 'suppressed')).toBe(false);
    const again = await t!.submit({ from: 'verify@example.test', to: ['app1@gmail.test'], subject: 'again', text: 'x', priority: 'verification' });
    expect(again.status).toBe(202);
    await t!.waitForStatus(again.body.id, (s) => s.status === 'bounced', 15_000);

    const view = await get('/v1/incidents');
    expect(view.status).toBe('critical');
    const by = await incidentsOf();
    // Worst first: the two critical providers lead, the healthy one is last.
    expect(view.providers.map((p: any) => p.provider).at(-1)).toBe('yahoo');

    expect(by.gmail.status).toBe('critical');
    expect(by.gmail.findings).toHaveLength(1);
    expect(by.gmail.findings[0]).toMatchObject({ severity: 'critical', kind: 'auth-failure', cause: 'dmarc', count: 3 });
    expect(by.gmail.findings[0].text).toMatch(/^gmail: 3 messages rejected 550 5\.7\.26, DMARC authentication failed since \d\d:\d\d$/);
    expect(by.gmail.facts).toMatchObject({ bounced: 3, bouncedByCategory: { 'auth-failure': 3 }, authFailures: { dmarc: 3 } });

    expect(by.microsoft.status).toBe('critical');
    expect(by.microsoft.findings.map((f: any) => f.kind)).toEqual(['spam-placement']);
    expect(by.microsoft.findings[0].text).toMatch(/^microsoft: 1 of 2 placement probes landed in spam \(Junk\) since \d\d:\d\d$/);
    expect(by.microsoft.facts).toMatchObject({ delivered: 6, bounced: 0, placement: { probes: 2, counts: { inbox: 1, spam: 1 }, inboxRate: 0.5 } });

    expect(by.yahoo).toMatchObject({ status: 'ok', findings: [] });
    expect(by.yahoo.facts).toMatchObject({ delivered: 5, bounced: 0 });

    const metrics = await (await fetch(`${t!.url}/metrics`)).text();
    expect(metrics).toMatch(/^kurir_delivery_auth_failures_total\{provider="gmail",cause="dmarc"\} 3$/m);
    expect(metrics).toMatch(/^kurir_delivery_attempts_total\{provider="gmail",result="bounced",category="auth-failure"\} 3$/m);
    expect(metrics).toMatch(/^kurir_placement_auth_results_total\{provider="microsoft",method="dkim",result="pass"\} 2$/m);
    console.log(
      `drill: incident phase settled in ${((Date.now() - started) / 1000).toFixed(1)} s: ${view.providers.map((p: any) => `${p.provider}=${p.status}`).join(', ')}`,
    );
    for (const p of view.providers) for (const f of p.findings) console.log(`  ${f.severity}: ${f.text}`);
  }, 60_000);

  it.skipIf(!prometheus_.ok)(
    'real Prometheus: KurirAuthRefusals fires for gmail/dmarc, spam placement pends for microsoft, nothing for yahoo',
    async () => {
      const started = Date.now();
      const alerts = async (): Promise<Array<Record<string, string>>> => (await prom!.query('ALERTS')).samples.map((s) => s.metric);
      const all = await waitFor(
        'KurirAuthRefusals firing and KurirSpamPlacementHigh pending',
        async () => {
          const a = await alerts();
          const auth = a.some((m) => m.alertname === 'KurirAuthRefusals' && m.alertstate === 'firing' && m.provider === 'gmail' && m.cause === 'dmarc');
          const spam = a.some((m) => m.alertname === 'KurirSpamPlacementHigh' && m.alertstate === 'pending' && m.provider === 'microsoft');
          return auth && spam ? a : null;
        },
        30_000,
      );
      const named = all.filter((m) => m.provider !== undefined);
      expect(named.filter((m) => m.provider === 'yahoo')).toEqual([]);
      expect(all.filter((m) => m.alertname === 'KurirAuthRefusals').map((m) => `${m.provider}/${m.cause}`)).toEqual(['gmail/dmarc']);
      expect(all.some((m) => m.alertname === 'KurirProbeAuthFailing')).toBe(false);
      console.log(
        `drill: Prometheus alerts after ${((Date.now() - started) / 1000).toFixed(1)} s: ${all.map((m) => `${m.alertname}{${m.provider ?? ''}${m.cause ? `/${m.cause}` : ''}} ${m.alertstate}`).join(', ')}`,
      );
    },
    40_000,
  );
});
