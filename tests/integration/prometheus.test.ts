/**
 * A real Prometheus (Debian's `prometheus` package; .ci/run installs it) on loopback scrapes a real
 * in-process gateway that has delivered, deferred and bounced messages and refused some at intake,
 * loads dashboards/recording-rules.yml and dashboards/alerts.yml, and every PromQL expression of the
 * Grafana dashboards and rule files is run through Prometheus's HTTP API.
 *
 * Then label cardinality through the real /metrics endpoint: 10,000 distinct recipient domains
 * bucketed by the provider map must not grow kurir_delivery_attempts_total beyond
 * providers × results × categories, and no address or domain may appear in the exposition.
 */
import { spawnSync } from 'node:child_process';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DELIVERY_CATEGORIES, DELIVERY_RESULTS } from '../../src/metrics/metrics.js';
import { createProviderMap } from '../../src/metrics/provider.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import {
  DASHBOARDS,
  dashboardExpressions,
  prometheusAvailable,
  ruleExpressions,
  sleep,
  startPrometheus,
  waitFor,
  type Expression,
  type PrometheusServer,
  type QueryResult,
} from '../helpers/prometheus.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { SMTP_USER, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const available = prometheusAvailable();
const SKIP_REASON = `SKIPPED: ${available.reason}`;
if (!available.ok) console.warn(`prometheus integration test ${SKIP_REASON}`);

const RULE_FILES = [`${DASHBOARDS}/recording-rules.yml`, `${DASHBOARDS}/alerts.yml`];

/**
 * Expressions that are only required to be accepted by Prometheus, not to return data, matched against
 * a recording rule's name or else the expression. Everything else must return at least one sample.
 * (Some of these do return data anyway — zero-initialised series or `or vector(0)` — and the summary says so.)
 */
const ACCEPT_ONLY: Array<{ match: RegExp; reason: string }> = [
  {
    match: /kurir_placement_|placement_spam_ratio|confirmation_ratio/,
    reason:
      'placement and confirmations: this gateway has no seed mailboxes and nobody confirms (tests/integration/placement.test.ts and confirmations.test.ts cover them)',
  },
  { match: /complaint/, reason: 'complaints: feedback loop (ARF) not built yet' },
  { match: /kurir_feedback_bounces_total/, reason: 'asynchronous DSN bounces: bounce MX not built yet' },
  { match: /kurir_webhooks_total/, reason: 'webhooks not built yet' },
  {
    match: /kurir_shaping_/,
    reason: 'this traffic goes to provider "other", which has no shaping limits by default (tests/integration/shaping.test.ts covers shaping)',
  },
  { match: /kurir_suppressions_added_total/, reason: 'suppression additions not recorded yet' },
  { match: /kurir_delivery_remote_replies_total/, reason: 'remote reply codes: nothing in src/ increments deliveryReplies yet' },
  { match: /kurir_delivery_connection_reuses_total/, reason: 'connection reuse: nothing in src/ increments deliveryConnectionReuses yet' },
  { match: /kurir_dkim_failures_total/, reason: 'no DKIM signing failure happens in this traffic' },
  {
    match: /kurir_delivery_auth_failures_total/,
    reason: 'no receiver refuses this traffic for authentication (tests/integration/incident-drill.test.ts fires KurirAuthRefusals on a real Prometheus)',
  },
  { match: /offset 1d/, reason: 'compares with a day ago: no data that old' },
  {
    match: /kurir_rspamd_/,
    reason: 'pre-send scoring is off in this gateway (tests/integration/rspamd-scoring.test.ts covers the metrics; alerts.test.yml the rules)',
  },
  {
    match: /kurir_ip_sent_total|kurir_ip_warmup_waits_total/,
    reason: 'no delivery.ipPools in this gateway (tests/integration/ip-pools.test.ts covers the metrics)',
  },
  {
    match: /kurir_dkim_key_age_seconds|kurir_dkim_rotation_waiting_seconds|kurir_dkim_key_warn_age_seconds/,
    reason: 'no runtime-managed domain in this gateway (tests/integration/domain-rotation-schedule.test.ts covers the metrics; alerts.test.yml the rules)',
  },
  {
    match: /kurir_dmarc_|kurir_tlsrpt_/,
    reason:
      "receivers' DMARC and TLS reports: none arrive in this traffic (tests/integration/reports.test.ts sends them; alerts-daily.test.yml fires the alerts)",
  },
];

function acceptOnlyReason(e: Expression): string | undefined {
  const subject = e.kind === 'record' ? e.record! : e.expr;
  return ACCEPT_ONLY.find((a) => a.match.test(subject))?.reason;
}

// Per-recipient replies at the receiver (the recipients' MX).
const rules = {
  'greylisted@dest.test': [{ code: 451, message: '4.7.1 Greylisted, try again later' }],
  'greylisted2@dest.test': [{ code: 451, message: '4.7.1 Greylisted, try again later' }],
  'nobody@dest.test': { code: 550, message: '5.1.1 The email account that you tried to reach does not exist' },
  // A hard bounce suppresses the address, so the second wave bounces on another one.
  'nobody2@dest.test': { code: 550, message: '5.1.1 The email account that you tried to reach does not exist' },
};

const base = { from: 'Passport office <noreply@example.test>', subject: 'Your code', text: 'Code: 123456', priority: 'verification' };

let dns: DnsServer | undefined;
let receiver: Receiver | undefined;
let t: TestGateway | undefined;
let prom: PrometheusServer | undefined;
const timings: Record<string, number> = {};
const t0 = Date.now();
const mark = (what: string): void => {
  timings[what] = Date.now() - t0;
};

const num = (r: QueryResult): number => r.samples.reduce((s, x) => s + Number(x.value?.[1] ?? 0), 0);

/** Waits until Prometheus has scraped at least these counter totals. */
async function waitForScraped(min: { delivered: number; deferred: number; bounced: number; refused: number }): Promise<void> {
  await waitFor(
    `scrapes of ${JSON.stringify(min)}`,
    async () => {
      const [delivered, deferred, bounced, refused] = await Promise.all([
        prom!.query('sum(kurir_delivery_attempts_total{result="delivered"})'),
        prom!.query('sum(kurir_delivery_attempts_total{result="deferred"})'),
        prom!.query('sum(kurir_delivery_attempts_total{result="bounced"})'),
        prom!.query('sum(kurir_intake_messages_refused_total)'),
      ]);
      return num(delivered) >= min.delivered && num(deferred) >= min.deferred && num(bounced) >= min.bounced && num(refused) >= min.refused;
    },
    15_000,
  );
}

describe.skipIf(!available.ok)(available.ok ? `Prometheus (${available.version})` : `Prometheus (${SKIP_REASON})`, () => {
  beforeAll(async () => {
    receiver = await startReceiver({ rules, hostname: 'mx.dest.test' });
    dns = await startDnsServer({
      'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
      'mx.dest.test': { A: ['127.0.0.1'] },
      'example.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
    });
    t = await startTestGateway({ dns, overrides: { delivery: { mxPort: receiver.port } } });
    t.publishDkim(dns);
    mark('gateway started');

    prom = await startPrometheus({ targets: [`127.0.0.1:${t.gateway.ports.http}`], job: 'kurir', ruleFiles: RULE_FILES });
    mark('prometheus ready');
    // First scrape before any traffic, so counters are seen rising (rate() > 0) rather than appearing.
    await waitFor('first scrape (up == 1)', async () => num(await prom!.query('up{job="kurir"}')) === 1, 15_000);
    mark('first scrape');

    // Wave 1: deliveries (HTTP and SMTP, verification and normal), a deferral (451 then accept),
    // a bounce (550 5.1.1) next to a delivery, and intake refusals.
    const submitted = await Promise.all([
      t.submit({ ...base, to: ['alice@dest.test'] }),
      t.submit({ ...base, to: ['dave@dest.test'] }),
      t.submit({ ...base, to: ['frank@dest.test'], priority: 'normal' }),
      t.submit({ ...base, to: ['greylisted@dest.test'] }),
      t.submit({ ...base, to: ['nobody@dest.test', 'carol@dest.test'] }),
    ]);
    for (const s of submitted) expect(s.status, JSON.stringify(s.body)).toBe(202);
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.smtp, auth: SMTP_USER, tls: { rejectUnauthorized: false } });
    const info = await transport.sendMail({ from: 'noreply@example.test', to: 'bob@dest.test', subject: 'SMTP code', text: 'Code: 654321' });
    transport.close();
    const smtpId = /queued as ([0-9a-z]+)/.exec(info.response)?.[1];
    expect(smtpId).toBeTruthy();

    const unauthorized = await t.submit({ ...base, to: ['alice@dest.test'] }, { authorization: 'Bearer wrong-key' });
    expect(unauthorized.status).toBe(401);
    const notAllowed = await t.submit({ ...base, from: 'someone@elsewhere.test', to: ['alice@dest.test'] });
    expect(notAllowed.status).toBe(403);
    const badTtl = await t.submit({ ...base, to: ['alice@dest.test'], ttl: 10 ** 9 });
    expect(badTtl.status).toBe(400);

    const settled = (id: string) => t!.waitForStatus(id, (s) => ['delivered', 'partially-delivered', 'bounced'].includes(s.status), 15_000);
    await Promise.all([...submitted.map((s) => s.body.id as string), smtpId!].map(settled));
    mark('wave 1 settled');
    await waitForScraped({ delivered: 6, deferred: 1, bounced: 1, refused: 2 });
    mark('wave 1 scraped');

    // Wave 2, once wave 1's series exist in Prometheus: a labelled series that first appears with
    // value 1 shows no increase to rate(), so the deferral and bounce series (created lazily, unlike
    // the zero-initialised delivered ones) need a second event after their first scrape to move the ratios.
    const wave2 = await Promise.all([
      t.submit({ ...base, to: ['greylisted2@dest.test'] }),
      t.submit({ ...base, to: ['nobody2@dest.test'] }),
      t.submit({ ...base, to: ['erin@dest.test'] }),
    ]);
    for (const s of wave2) expect(s.status, JSON.stringify(s.body)).toBe(202);
    await Promise.all(wave2.map((s) => settled(s.body.id)));
    mark('wave 2 settled');
    await waitForScraped({ delivered: 8, deferred: 2, bounced: 2, refused: 2 });
    await waitFor(
      'recording rules evaluated on the traffic',
      async () => num(await prom!.query('provider:kurir_bounce_ratio:rate5m{provider="other"}')) > 0,
      10_000,
    );
    // A few more scrapes and evaluations, so every window holds several samples.
    await sleep(2500);
    mark('scraped');
  }, 60_000);

  afterAll(async () => {
    await prom?.close(3000);
    await t?.close();
    await receiver?.close();
    await dns?.close();
    mark('closed');
    console.log(`prometheus integration timings (ms since file start): ${JSON.stringify(timings)}`);
  }, 20_000);

  it('loads both rule files and evaluates every rule without error', async () => {
    const body = await prom!.api('/api/v1/rules');
    expect(body.status).toBe('success');
    const loaded = body.data.groups.flatMap((g: any) => g.rules.map((r: any) => ({ file: g.file, name: r.name, health: r.health, lastError: r.lastError })));
    const expected = ruleExpressions(RULE_FILES);
    expect(loaded.length).toBe(expected.length);
    const bad = loaded.filter((r: any) => r.health !== 'ok');
    expect(bad, prom!.log().slice(-2000)).toEqual([]);
  });

  it('the dashboards’ provider and sender-domain variables have values', async () => {
    const { variables } = dashboardExpressions();
    expect(variables.length).toBeGreaterThan(0);
    for (const v of variables) {
      // label_values(metric, label) is Grafana's; the equivalent API call.
      const m = /^label_values\(\s*([^,]+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$/.exec(v.query);
      expect(m, `${v.where}: ${v.query}`).not.toBeNull();
      const body = await prom!.api(`/api/v1/label/${m![2]}/values?${new URLSearchParams({ 'match[]': m![1] })}`);
      expect(body.status, v.where).toBe('success');
      // Providers include the catch-all; sender domains are the configured ones, zero-initialised.
      expect(body.data, v.where).toContain(v.where.endsWith('variable domain') ? 'example.test' : 'other');
    }
  });

  it('every dashboard, recording-rule and alert expression is accepted, and the ones fed by this traffic return data', async () => {
    const all: Expression[] = [...dashboardExpressions().expressions, ...ruleExpressions(RULE_FILES)];
    // Recording rules are also queried by name: their series must be in the TSDB.
    for (const r of ruleExpressions(RULE_FILES).filter((e) => e.kind === 'record')) {
      all.push({ ...r, where: `${r.where} (recorded series)`, expr: r.record! });
    }
    const rejected: string[] = [];
    const missingData: string[] = [];
    const acceptOnly: Array<{ where: string; reason: string; hasData: boolean }> = [];
    let withData = 0;
    const firingOrPending: string[] = [];
    for (const e of all) {
      const r = await prom!.query(e.expr);
      if (r.status !== 'success') {
        rejected.push(`${e.where}: ${r.errorType}: ${r.error}\n    ${e.expr}`);
        continue;
      }
      const hasData = r.samples.length > 0;
      if (hasData) withData++;
      if (e.kind === 'alert') {
        if (hasData) firingOrPending.push(e.where);
        continue;
      }
      const reason = acceptOnlyReason(e);
      if (reason) acceptOnly.push({ where: e.where, reason, hasData });
      // A histogram_quantile() or ratio of all-zero rates is NaN: a sample, but not data.
      else if (!r.samples.some((x) => x.value?.[1] !== 'NaN')) missingData.push(`${e.where}${hasData ? ' (NaN only)' : ''}\n    ${e.expr}`);
    }
    const byKind = (k: Expression['kind']): number => all.filter((e) => e.kind === k).length;
    console.log(
      [
        `PromQL through Prometheus: ${all.length} expressions checked (${byKind('dashboard')} dashboard targets, ` +
          `${byKind('record')} recording rules incl. their recorded series, ${byKind('alert')} alerts); ` +
          `${all.length - rejected.length} accepted, ${withData} with data`,
        `  required data and had it: ${all.length - rejected.length - byKind('alert') - acceptOnly.length - missingData.length}`,
        `  accept-only (feature not built / no such event): ${acceptOnly.length}, of which ${acceptOnly.filter((a) => a.hasData).length} had data anyway`,
        ...acceptOnly.map((a) => `    - ${a.where}${a.hasData ? ' (data)' : ''}: ${a.reason}`),
        `  alerts with a result (condition true now, pending/firing): ${firingOrPending.length ? firingOrPending.join(', ') : 'none'}`,
      ].join('\n'),
    );
    expect(rejected).toEqual([]);
    expect(missingData).toEqual([]);
    expect(all.length).toBeGreaterThan(50);
  });

  it('the traffic shows up as expected in Prometheus', async () => {
    const q = async (expr: string): Promise<number> => num(await prom!.query(expr));
    expect(await q('sum(kurir_delivery_attempts_total{provider="other",result="delivered",category="none"})')).toBeGreaterThanOrEqual(8);
    expect(await q('sum(kurir_delivery_attempts_total{provider="other",result="deferred"})')).toBeGreaterThanOrEqual(2);
    expect(await q('sum(kurir_delivery_attempts_total{provider="other",result="bounced",category="invalid-recipient"})')).toBe(2);
    expect(await q('sum(kurir_intake_messages_accepted_total{interface="smtp"})')).toBe(1);
    expect(await q('sum(kurir_intake_messages_refused_total{interface="http"})')).toBeGreaterThanOrEqual(2);
    expect(await q('provider:kurir_bounce_ratio:rate5m{provider="other"}')).toBeGreaterThan(0);
    expect(await q('provider:kurir_deferral_ratio:rate5m{provider="other"}')).toBeGreaterThan(0);
    expect(await q('provider:kurir_delivery_ratio:rate5m{provider="other"}')).toBeGreaterThan(0.5);
    expect(await q('sum(kurir_dkim_signatures_total{domain="example.test"})')).toBeGreaterThanOrEqual(2 * 9);
    expect(await q('kurir_redis_up{redis="main"}')).toBe(1);
  });

  it('label cardinality stays bounded for 10,000 distinct recipient domains, through /metrics', async () => {
    const providers = createProviderMap();
    const gw = t!.gateway;
    const prefixes = ['', 'hotmail.', 'yahoo.', 'mail.', 'gmail.'];
    for (let i = 0; i < 10_000; i++) {
      // Distinct domains, some hitting the provider globs (hotmail.*, yahoo.*), the rest "other".
      const domain = `${prefixes[i % prefixes.length]}kcard${i}.test`;
      const provider = providers.byDomain(i % 2 ? `user${i}@${domain}` : domain);
      const result = DELIVERY_RESULTS[i % DELIVERY_RESULTS.length];
      const category = result === 'delivered' ? 'none' : DELIVERY_CATEGORIES[i % DELIVERY_CATEGORIES.length];
      gw.metrics.deliveryAttempts.inc({ provider, result, category });
      if (result === 'delivered') gw.metrics.deliveryTime.observe({ priority: 'verification', provider }, (i % 600) / 10);
    }
    const res = await fetch(`${t!.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const series = text.split('\n').filter((l) => l.startsWith('kurir_delivery_attempts_total{'));
    const bound = providers.names().length * DELIVERY_RESULTS.length * DELIVERY_CATEGORIES.length;
    console.log(
      `cardinality: ${series.length} kurir_delivery_attempts_total series after 10,000 distinct domains (bound ${bound}); /metrics ${text.length} bytes`,
    );
    expect(series.length).toBeGreaterThan(0);
    expect(series.length).toBeLessThanOrEqual(bound);
    const providerValues = new Set(series.map((l) => /provider="([^"]*)"/.exec(l)?.[1]));
    for (const p of providerValues) expect(providers.names()).toContain(p);
    expect(providerValues).toContain('microsoft');
    expect(providerValues).toContain('yahoo');
    // No recipient domain or address, neither the synthetic ones nor the real traffic's.
    expect(text).not.toMatch(/kcard|dest\.test|@/);
    const labelValues = [...text.matchAll(/="([^"]*)"/g)].map((m) => m[1]);
    expect(labelValues.filter((v) => v.includes('@'))).toEqual([]);

    // And promtool's parser/linter accepts the real exposition (prom-client's *_total gauges excepted).
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (promtool.error) {
      console.warn(`promtool check metrics skipped: ${promtool.error.message}`);
    } else {
      const problems = `${promtool.stdout}${promtool.stderr}`
        .trim()
        .split('\n')
        .filter((l) => l && !/^kurir_nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(l));
      expect(problems).toEqual([]);
    }
  });
});
