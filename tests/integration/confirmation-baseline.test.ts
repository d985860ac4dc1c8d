/**
 * Confirmations stop for one provider → its rate falls below its own 7-day baseline and
 * KurirConfirmationRateBelowBaseline fires on a real Prometheus, for that provider only.
 *
 * The baseline is real: seven days of kurir_placement_verifications_delivered_total and
 * kurir_placement_confirmations_total (gmail and yahoo, a day and a night rate each) are generated as
 * OpenMetrics text and written into the test Prometheus's TSDB with `promtool tsdb create-blocks-from
 * openmetrics` before it starts; the recording rule provider:kurir_confirmation_ratio:baseline7d then reads
 * the same hour of those seven days from disk. The current hour is live: Prometheus scrapes a real gateway
 * that delivers verification mail to both providers over SMTP on loopback; the booking system confirms
 * yahoo's applicants and none of gmail's.
 *
 * Shortened for the test: the alert's `for: 30m` is `for: 5s` in a copy of dashboards/alerts.yml (a real
 * 30-minute hold cannot pass in a test; dashboards/alerts.test.yml covers it with promtool). Expressions,
 * thresholds and the 20-deliveries guard are those of the shipped rules.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { DASHBOARDS, prometheusAvailable, startPrometheus, waitFor, type PrometheusServer } from '../helpers/prometheus.js';
import { historyTimes, openMetricsHistory, ruleFileWithFor, type HistorySeries } from '../helpers/prometheus-history.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { API_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const available = prometheusAvailable();
if (!available.ok) console.warn(`confirmation baseline test SKIPPED: ${available.reason}`);

const ALERT = 'KurirConfirmationRateBelowBaseline';
const STEP = 60;
const DAY = 86_400;
/** Per minute, by hour of day (UTC): verification recipients delivered and, per provider, confirmed. */
const isDay = (t: number): boolean => {
  const h = new Date(t * 1000).getUTCHours();
  return h >= 7 && h < 22;
};
const DELIVERED = (t: number): number => (isDay(t) ? 10 : 4);
const CONFIRMED: Record<string, (t: number) => number> = {
  gmail: (t) => (isDay(t) ? 6 : 2), // 60 % by day, 50 % at night
  yahoo: (t) => (isDay(t) ? 4 : 2), // 40 % by day, 50 % at night
};

const now = Math.floor(Date.now() / 1000 / STEP) * STEP;
// Seven days and two hours of history, ending two hours ago: the current hour is the live gateway's.
const times = historyTimes(now - 7 * DAY - 2 * 3600, now - 2 * 3600, STEP);

/** What the baseline should be at `at`: increments inside the same hour on each of the last 7 days. */
function expectedBaseline(provider: string, at: number): number {
  let confirmed = 0;
  let delivered = 0;
  for (let d = 1; d <= 7; d++) {
    const inWindow = times.filter((t) => t > at - d * DAY - 3600 && t <= at - d * DAY);
    for (const t of inWindow.slice(1)) {
      confirmed += CONFIRMED[provider](t);
      delivered += DELIVERED(t);
    }
  }
  return confirmed / delivered;
}

let dns: DnsServer | undefined;
let receiver: Receiver | undefined;
let t: TestGateway | undefined;
let prom: PrometheusServer | undefined;
let tmp: string | undefined;

describe.skipIf(!available.ok)(
  available.ok ? 'confirmation rate below baseline on a real Prometheus' : `confirmation baseline (SKIPPED: ${available.reason})`,
  () => {
    beforeAll(async () => {
      tmp = mkdtempSync(join(tmpdir(), 'kurir-confirm-baseline-'));
      receiver = await startReceiver({ hostname: 'mx.seed.test' });
      dns = await startDnsServer({
        'mx.seed.test': { A: ['127.0.0.1'] },
        'gmail.test': { MX: [{ exchange: 'mx.seed.test', priority: 10 }] },
        'yahoo.test': { MX: [{ exchange: 'mx.seed.test', priority: 10 }] },
      });
      t = await startTestGateway({
        dns,
        overrides: {
          delivery: { mxPort: receiver.port },
          shaping: {
            providers: [
              { provider: 'gmail', domains: ['gmail.test'] },
              { provider: 'yahoo', domains: ['yahoo.test'] },
            ],
          },
        },
      });
      const series = (metric: 'delivered' | 'confirmed'): HistorySeries[] =>
        ['gmail', 'yahoo'].map((provider) => ({
          labels: { job: 'kurir', instance: 'kurir-last-week:8025', provider, domain: 'example.test' },
          increment: metric === 'delivered' ? DELIVERED : CONFIRMED[provider],
        }));
      const history = openMetricsHistory(
        [
          { name: 'kurir_placement_verifications_delivered', help: 'history', series: series('delivered') },
          { name: 'kurir_placement_confirmations', help: 'history', series: series('confirmed') },
        ],
        times,
      );
      const alerts = join(tmp, 'alerts.yml');
      ruleFileWithFor(`${DASHBOARDS}/alerts.yml`, alerts, { [ALERT]: '5s' });
      const started = Date.now();
      prom = await startPrometheus({ targets: [`127.0.0.1:${t.gateway.ports.http}`], ruleFiles: [`${DASHBOARDS}/recording-rules.yml`, alerts], history });
      console.log(`confirmation baseline: ${times.length} history samples per series backfilled, Prometheus ready in ${Date.now() - started} ms`);
      await waitFor('first scrape', async () => (await prom!.query('up{job="kurir"}')).samples[0]?.value?.[1] === '1', 15_000);
    }, 40_000);

    afterAll(async () => {
      await prom?.close();
      await t?.close();
      await receiver?.close();
      await dns?.close();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    const value = async (expr: string): Promise<Record<string, number>> =>
      Object.fromEntries((await prom!.query(expr)).samples.map((s) => [s.metric.provider, Number(s.value![1])]));

    /** Submits `n` verification messages to `provider`'s domain, waits until delivered, confirms the first `confirm`. */
    async function traffic(domain: string, n: number, confirm: number, from = 0): Promise<void> {
      const ids = await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const res = await t!.submit({
            from: 'verify@example.test',
            to: [`app${from + i}@${domain}`],
            subject: 'Your code',
            text: 'Code: 123456',
            priority: 'verification',
          });
          expect(res.status).toBe(202);
          await t!.waitForStatus(res.body.id, (s) => s.status === 'delivered', 15_000);
          return res.body.id as string;
        }),
      );
      for (const id of ids.slice(0, confirm)) {
        const res = await fetch(`${t!.url}/v1/messages/${id}/confirm`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } });
        expect(res.status).toBe(200);
      }
    }

    it('the baseline is the same hour of the last 7 days, read from the backfilled TSDB', async () => {
      const baseline = await waitFor(
        'baseline7d recorded for gmail and yahoo',
        async () => {
          const v = await value('provider:kurir_confirmation_ratio:baseline7d');
          return v.gmail !== undefined && v.yahoo !== undefined ? v : null;
        },
        30_000,
      );
      const at = Date.now() / 1000;
      expect(baseline.gmail).toBeCloseTo(expectedBaseline('gmail', at), 2);
      expect(baseline.yahoo).toBeCloseTo(expectedBaseline('yahoo', at), 2);
      console.log(`confirmation baseline: gmail ${baseline.gmail.toFixed(3)}, yahoo ${baseline.yahoo.toFixed(3)} (same hour, last 7 days)`);
      // No traffic yet in the current hour: no ratio, no alert.
      expect(await value('provider:kurir_confirmation_ratio:rate1h')).toEqual({});
      expect((await prom!.api('/api/v1/alerts')).data.alerts.filter((a: any) => a.labels.alertname === ALERT)).toEqual([]);
    }, 40_000);

    it('gmail confirmations stop, yahoo continue: the alert fires for gmail only', async () => {
      // increase() extrapolates to the evaluation time by up to 1.1 scrape intervals. On a series only a few
      // scrapes old that inflates the guard's count (seen: 15 deliveries read as 25.3 two seconds after the first
      // scrape, before yahoo's confirmations were scraped, so yahoo pended on a ratio of 0). With 12 scrapes of
      // history the most it adds is about 10 %: the first batch's 15 stay under the guard's 20.
      await waitFor(
        '12 scrapes of the live delivery counter',
        async () => {
          const r = await prom!.query('count_over_time(kurir_placement_verifications_delivered_total{provider="yahoo",job="kurir"}[1h])');
          return r.samples.some((s) => Number(s.value?.[1]) >= 12) ? true : null;
        },
        30_000,
      );
      const started = Date.now();
      // yahoo's applicants confirm as usual (15 of 25, confirmed in the first batch so the ratio never dips
      // while the 20-deliveries guard holds); gmail's 25 are delivered (250) and nobody confirms.
      await traffic('yahoo.test', 15, 15);
      // The alert reads the recorded ratio (up to an evaluation old) but the live delivery count: the second
      // batch waits until the recorded ratio has the first batch's confirmations, or yahoo could pend on a stale 0.
      await waitFor(
        'yahoo ratio 1.0 recorded',
        async () => (((await value('provider:kurir_confirmation_ratio:rate1h')).yahoo ?? 0) >= 0.99 ? true : null),
        15_000,
      );
      await Promise.all([traffic('yahoo.test', 10, 0, 15), traffic('gmail.test', 25, 0)]);
      const metrics = await (await fetch(`${t!.url}/metrics`)).text();
      expect(metrics).toMatch(/^kurir_placement_verifications_delivered_total\{provider="gmail",domain="example.test"\} 25$/m);
      expect(metrics).toMatch(/^kurir_placement_confirmations_total\{provider="gmail",domain="example.test"\} 0$/m);
      expect(metrics).toMatch(/^kurir_placement_confirmations_total\{provider="yahoo",domain="example.test"\} 15$/m);

      const firing = await waitFor(
        `${ALERT} firing for gmail`,
        async () => {
          const alerts = (await prom!.api('/api/v1/alerts')).data.alerts.filter((a: any) => a.labels.alertname === ALERT);
          return alerts.some((a: any) => a.state === 'firing') ? alerts : null;
        },
        35_000,
      );
      expect(firing.map((a: any) => `${a.labels.provider}:${a.state}`)).toEqual(['gmail:firing']);
      expect(firing[0].labels.severity).toBe('warning');
      expect(firing[0].annotations.summary).toBe('Confirmation rate at gmail dropped below its baseline');
      expect(firing[0].annotations.description).toMatch(/^Only 0% of verification messages delivered to gmail in the last hour were confirmed/);

      const ratio = await value('provider:kurir_confirmation_ratio:rate1h');
      expect(ratio.gmail).toBe(0);
      expect(ratio.yahoo).toBeCloseTo(0.6, 5);
      // yahoo was never pending or firing at any evaluation of this run.
      const yahoo = await prom!.query(`ALERTS{alertname="${ALERT}",provider="yahoo"}[10m]`);
      expect(yahoo.status).toBe('success');
      expect(yahoo.samples).toEqual([]);
      console.log(`confirmation baseline: ${ALERT} firing for gmail ${((Date.now() - started) / 1000).toFixed(1)} s after the live traffic started`);
    }, 70_000);
  },
);
