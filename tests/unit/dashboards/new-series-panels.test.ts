/**
 * The panels that count events of counters created by their first event (receivers' DMARC and TLS reports, DKIM
 * signing failures), evaluated by promtool's PromQL engine on series shaped as Kurir exports them: a report's
 * series appears with the report's whole count. increase() alone sees nothing of that first sample, so a
 * receiver's first report (or the only one after a restart) read 0 while KurirReceiverReportsAuthFailures and
 * KurirDkimSigningFailures, which catch new series with `unless … offset`, paged for it. The expressions are read
 * from the dashboard JSON, so this tests what Grafana runs.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const GRAFANA = resolve(import.meta.dirname, '../../../dashboards/grafana');
const hasPromtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
if (!hasPromtool) console.warn('SKIPPED new-series panels: promtool not on PATH (apt-get install prometheus; .ci/run installs it)');

interface Panel {
  title: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

/** The only query of the panel titled `title` in `file`, with Grafana's $__rate_interval as 1h. */
function panelExpr(file: string, title: string): string {
  const board = JSON.parse(readFileSync(join(GRAFANA, file), 'utf8')) as { panels: Panel[] };
  const all = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...all(p.panels ?? [])]);
  const panel = all(board.panels).find((p) => p.title === title);
  if (!panel?.targets?.[0]?.expr) throw new Error(`${file}: no panel "${title}"`);
  return panel.targets[0].expr.replaceAll('$__rate_interval', '1h');
}

const at = (labels: string) => `{job="kurir",instance="kurir:8025",${labels}}`;
const OWN = "Failures of Kurir's own IPs reported (7 d) — KurirReceiverReportsAuthFailures";

/** Hourly samples over 200 h; each series appears when its first report (or failure) is counted. */
const SERIES = [
  // google's first report, at 150 h: 40 messages from own IPs failed DKIM.
  { series: `kurir_dmarc_own_failures_total${at('domain="example.com",reporter="google",check="dkim"')}`, values: '_x150 40x49' },
  // microsoft's first report at 120 h (3), a second at 160 h (5 more): all within the 7 days.
  { series: `kurir_dmarc_own_failures_total${at('domain="example.com",reporter="microsoft",check="dmarc"')}`, values: '_x120 3x39 8x39' },
  // yahoo's series is older than 7 days: only what it grew within them counts (2 → 4).
  { series: `kurir_dmarc_own_failures_total${at('domain="example.com",reporter="yahoo",check="dkim"')}`, values: '2x100 4x98' },
  { series: `kurir_tlsrpt_failures_total${at('domain="example.com",reporter="google",result_type="certificate-expired"')}`, values: '_x190 3x9' },
  // google reports 90 of 100 passing at 150 h; microsoft 20 messages, none passing (no pass series at all).
  { series: `kurir_dmarc_messages_total${at('domain="example.com",reporter="google",source="own",dmarc="pass"')}`, values: '_x150 90x49' },
  { series: `kurir_dmarc_messages_total${at('domain="example.com",reporter="google",source="own",dmarc="fail"')}`, values: '_x150 10x49' },
  { series: `kurir_dmarc_messages_total${at('domain="example.com",reporter="microsoft",source="own",dmarc="fail"')}`, values: '_x180 20x19' },
  // One DKIM signing failure, counted 30 min before the evaluation (its series is new).
  { series: `kurir_dkim_failures_total${at('domain="example.com",reason="DKIM_NO_KEY"')}`, values: '_x199 1' },
];

const EXPECTED: Array<{ file: string; title: string; samples: Array<{ labels: string; value: number }> }> = [
  {
    file: 'delivery.json',
    title: OWN,
    samples: [
      { labels: '{domain="example.com",reporter="google",check="dkim"}', value: 40 },
      { labels: '{domain="example.com",reporter="microsoft",check="dmarc"}', value: 8 },
      { labels: '{domain="example.com",reporter="yahoo",check="dkim"}', value: 2 },
    ],
  },
  {
    file: 'delivery.json',
    title: 'TLS-RPT failed sessions by domain, reporter and result type (7 d)',
    samples: [{ labels: '{domain="example.com",reporter="google",result_type="certificate-expired"}', value: 3 }],
  },
  {
    file: 'delivery.json',
    title: 'DMARC pass rate by domain and reporter (7 d)',
    samples: [
      { labels: '{domain="example.com",reporter="google"}', value: 0.9 },
      { labels: '{domain="example.com",reporter="microsoft"}', value: 0 },
    ],
  },
  {
    file: 'delivery.json',
    title: 'Reported messages by source (own IPs / foreign) and DMARC result, per day',
    // In the last day: microsoft's first report; google's (at 150 h) is older than that.
    samples: [
      { labels: '{domain="example.com",source="own",dmarc="fail"}', value: 20 },
      { labels: '{domain="example.com",source="own",dmarc="pass"}', value: 0 },
    ],
  },
  { file: 'admin.json', title: 'DKIM failures (1 h)', samples: [{ labels: '{}', value: 1 }] },
  { file: 'admin.json', title: 'DKIM failures by domain and reason', samples: [{ labels: '{domain="example.com",reason="DKIM_NO_KEY"}', value: 1 }] },
];

const tmp = mkdtempSync(join(tmpdir(), 'kurir-new-series-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!hasPromtool)('panels over counters created by their first event count that event', () => {
  it('evaluated by promtool at 199 h on report series that appear with their first report', async () => {
    const test = {
      rule_files: [],
      evaluation_interval: '1h',
      tests: [
        {
          interval: '1h',
          input_series: SERIES,
          promql_expr_test: EXPECTED.map((e) => ({ expr: panelExpr(e.file, e.title), eval_time: '199h', exp_samples: e.samples })),
        },
      ],
    };
    const file = join(tmp, 'panels.test.yml');
    writeFileSync(file, stringify(test));
    const r = await new Promise<{ status: number | null; output: string }>((done) =>
      execFile('promtool', ['test', 'rules', file], { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) =>
        done({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, output: `${stdout}${stderr}` }),
      ),
    );
    expect(r.output).toMatch(/SUCCESS/);
    expect(r.status, r.output).toBe(0);
  });
});
