/**
 * Static checks (no Prometheus needed): every metric any dashboard, alert,
 * recording rule or alert unit test refers to is one the gateway exports
 * (src/metrics/metrics.ts) or a recording rule; dashboards are well-formed and
 * use the provisioned datasource; every alert has a firing unit test.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { DASH, GRAFANA, ruleFile } from '../../helpers/dashboard-files.js';

interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; query?: string | { query: string }; definition?: string; datasource?: { uid?: string } }> };
}

const readYaml = <T>(file: string): T => parse(readFileSync(file, 'utf8')) as T;
const recording = ruleFile('recording-rules.yml');
const alerts = ruleFile('alerts.yml');
interface AlertTestFile {
  rule_files: string[];
  tests: Array<{
    name?: string;
    input_series: Array<{ series: string }>;
    alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }>;
    promql_expr_test?: Array<{ expr: string }>;
  }>;
}
/** alerts.test.yml, alerts-daily.test.yml (day-long windows, evaluated hourly) and alerts-weekly.test.yml (the 7-day baseline). */
const alertTestFiles = ['alerts.test.yml', 'alerts-daily.test.yml', 'alerts-weekly.test.yml'].map((f) => readYaml<AlertTestFile>(join(DASH, f)));
const alertTests = { tests: alertTestFiles.flatMap((f) => f.tests) };
const dashboardFiles = readdirSync(GRAFANA).filter((f) => f.endsWith('.json'));
const dashboards = dashboardFiles.map((f) => ({ file: f, board: JSON.parse(readFileSync(join(GRAFANA, f), 'utf8')) as Dashboard }));

const recordNames = new Set(recording.groups.flatMap((g) => g.rules.map((r) => r.record).filter((r): r is string => !!r)));

function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Every (where, expression) pair in the rules, rule tests and dashboards. */
function expressions(): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  for (const [file, rf] of [
    ['recording-rules.yml', recording],
    ['alerts.yml', alerts],
  ] as const) {
    for (const g of rf.groups) for (const r of g.rules) out.push({ where: `${file}: ${r.record ?? r.alert}`, expr: r.expr });
  }
  for (const t of alertTests.tests) {
    for (const s of t.input_series) out.push({ where: `alerts.test.yml: ${t.name} series`, expr: s.series });
    for (const p of t.promql_expr_test ?? []) out.push({ where: `alerts.test.yml: ${t.name} promql`, expr: p.expr });
  }
  for (const { file, board } of dashboards) {
    for (const p of allPanels(board.panels)) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ where: `${file}: ${p.title}`, expr: t.expr });
    }
    for (const v of board.templating.list) {
      const q = typeof v.query === 'string' ? v.query : v.query?.query;
      if (q) out.push({ where: `${file}: variable ${v.name}`, expr: q });
      if (v.definition) out.push({ where: `${file}: variable ${v.name}`, expr: v.definition });
    }
  }
  return out;
}

/** Identifiers in a PromQL expression that name kurir metrics or recording rules (strings removed). */
function kurirNames(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  const tokens = noStrings.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
  return tokens.filter((t) => t.includes('kurir_'));
}

async function exportedNames(): Promise<{ names: Set<string>; histograms: Set<string> }> {
  // With default metrics: dashboards may chart kurir_process_* and kurir_nodejs_*.
  const m = createMetrics({ version: 'test' });
  const names = new Set<string>();
  const histograms = new Set<string>();
  for (const { name } of m.registry.getMetricsAsArray()) {
    names.add(name);
    const metric = m.registry.getSingleMetric(name);
    if (String((await metric!.get()).type) === 'histogram') histograms.add(name);
  }
  return { names, histograms };
}

describe('metric names in dashboards, alerts and recording rules', () => {
  it('every referenced kurir_ metric is exported by createMetrics() or is a recording rule', async () => {
    const { names, histograms } = await exportedNames();
    const unknown: string[] = [];
    let checked = 0;
    for (const { where, expr } of expressions()) {
      for (const name of kurirNames(expr)) {
        checked++;
        if (name.includes(':')) {
          if (!recordNames.has(name)) unknown.push(`${where}: ${name} (not a recording rule)`);
          continue;
        }
        const base = name.replace(/_(bucket|sum|count)$/, '');
        const ok = names.has(name) || (base !== name && histograms.has(base));
        if (!ok) unknown.push(`${where}: ${name}`);
      }
    }
    expect(unknown).toEqual([]);
    expect(checked).toBeGreaterThan(100);
  });

  it('the tokenizer finds metric names, strips strings and keeps recording rule names whole', () => {
    expect(kurirNames('sum(rate(kurir_a_total{x="kurir_not_a_metric"}[5m])) / provider:kurir_b:rate5m')).toEqual(['kurir_a_total', 'provider:kurir_b:rate5m']);
    expect(kurirNames('kurir_h_seconds_bucket{le="300"}')).toEqual(['kurir_h_seconds_bucket']);
  });

  it('recording rules follow level:metric:operations and are unique', () => {
    const all = recording.groups.flatMap((g) => g.rules.map((r) => r.record));
    expect(new Set(all).size).toBe(all.length);
    for (const r of all) expect(r).toMatch(/^[a-z_]+:kurir_[a-z0-9_]+:[a-z0-9_]+$/);
  });

  it('every recording rule is used by an alert or a dashboard', () => {
    const users = expressions()
      .filter((e) => !e.where.startsWith('recording-rules.yml'))
      .map((e) => e.expr)
      .join('\n');
    const unused = [...recordNames].filter((r) => !users.includes(r));
    expect(unused).toEqual([]);
  });
});

describe('alerts', () => {
  const rules = alerts.groups.flatMap((g) => g.rules);

  it('every alert documents its threshold and has a severity', () => {
    for (const r of rules) {
      expect(r.alert, r.expr).toMatch(/^Kurir[A-Za-z]+$/);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
      expect(r.annotations?.threshold, r.alert).toBeTruthy();
      expect(['page', 'warning']).toContain(r.labels?.severity);
    }
  });

  it('covers the issue’s alert list', () => {
    const names = rules.map((r) => r.alert);
    for (const a of [
      'KurirVerificationDeliverySlow',
      'KurirVerificationQueueStuck',
      'KurirBounceRateHigh',
      'KurirComplaintRateHigh',
      'KurirPolicyRejections',
      'KurirDkimSigningFailures',
      'KurirSpamPlacementHigh',
      'KurirConfirmationRateBelowBaseline',
      'KurirRedisDown',
      'KurirNoDeliveries',
    ]) {
      expect(names).toContain(a);
    }
  });

  it('every alert has a promtool unit test in which it fires', () => {
    for (const f of alertTestFiles) expect(f.rule_files.sort()).toEqual(['alerts.yml', 'recording-rules.yml']);
    const firing = new Set(alertTests.tests.flatMap((t) => (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    for (const r of rules) expect(firing, `${r.alert} needs a firing test in alerts.test.yml`).toContain(r.alert);
  });
});

describe('Grafana dashboards', () => {
  const provisioned = readYaml<{ datasources: Array<{ uid: string; type: string }> }>(join(GRAFANA, 'provisioning/datasources/prometheus.yml'));
  const dsUid = provisioned.datasources[0].uid;

  it('has the overview, delivery and admin dashboards with unique uids', () => {
    expect(dashboardFiles.sort()).toEqual(['admin.json', 'delivery.json', 'overview.json']);
    const uids = dashboards.map((d) => d.board.uid);
    expect(new Set(uids).size).toBe(uids.length);
  });

  it('every panel queries the provisioned Prometheus datasource and fits the grid', () => {
    for (const { file, board } of dashboards) {
      const panels = allPanels(board.panels);
      const ids = panels.map((p) => p.id);
      expect(new Set(ids).size, `${file} panel ids`).toBe(ids.length);
      for (const p of panels) {
        expect(p.gridPos.x + p.gridPos.w, `${file}: ${p.title}`).toBeLessThanOrEqual(24);
        if (p.type === 'row') continue;
        expect(p.targets?.length, `${file}: ${p.title}`).toBeGreaterThan(0);
        expect(p.datasource?.uid, `${file}: ${p.title}`).toBe(dsUid);
        for (const t of p.targets ?? []) {
          expect(t.expr, `${file}: ${p.title}`).toBeTruthy();
          expect(t.datasource?.uid ?? dsUid).toBe(dsUid);
        }
      }
      for (const v of board.templating.list) if (v.datasource) expect(v.datasource.uid).toBe(dsUid);
    }
  });

  it('the overview answers "are verification e-mails arriving?"', () => {
    const overview = dashboards.find((d) => d.file === 'overview.json')!.board;
    const exprs = allPanels(overview.panels)
      .flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''))
      .join('\n');
    for (const needle of [
      'kurir_intake_messages_accepted_total',
      'result="delivered"',
      'kurir_delivery_time_to_deliver_seconds:p95_5m',
      'kurir_bounce_ratio',
      'kurir_complaint_ratio',
      'kurir_deferral_ratio',
      'kurir_queue_jobs',
      'kurir_queue_oldest_verification_age_seconds',
      'kurir_placement_spam_ratio',
      'kurir_confirmation_ratio',
    ]) {
      expect(exprs).toContain(needle);
    }
  });
});
