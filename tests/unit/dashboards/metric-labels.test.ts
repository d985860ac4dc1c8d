/**
 * Static checks of the label side of every PromQL expression the operator relies on (Grafana panels and
 * variables, recording rules, alerts, the promtool test series), against the registry createMetrics()
 * builds: every label name a matcher, a grouping, a legend or an alert annotation uses is one the metric
 * (or recording rule) carries; every label value a matcher compares with is one the code sets, where the
 * code enumerates them; range functions fit the metric type; gauges every process exports alike are not
 * summed across processes; and docs/metrics.md lists every metric with its labels.
 * A simple tokenizer, no PromQL parser: tests/unit/dashboards/promtool.test.ts has promtool check the syntax.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DKIM_FAILURE_REASONS, createMetrics } from '../../../src/metrics/metrics.js';
import { DASH, GRAFANA, ROOT, ruleFile } from '../../helpers/dashboard-files.js';
import { kurirSelectors, matches, outputLabels, rangeSelectors, sumsOf, unknownLabels, type Expr, type MetricInfo } from '../../helpers/promql-labels.js';

const recordingRules = ruleFile('recording-rules.yml').groups.flatMap((g) => g.rules);
const alertGroups = ruleFile('alerts.yml').groups;
const alertRules = alertGroups.flatMap((g) => g.rules);

interface Panel {
  title: string;
  targets?: Array<{ expr?: string; legendFormat?: string }>;
  panels?: Panel[];
}
function expressions(): Expr[] {
  const out: Expr[] = [];
  for (const r of recordingRules) out.push({ where: `recording-rules.yml: ${r.record}`, expr: r.expr, shown: [] });
  for (const r of alertRules) out.push({ where: `alerts.yml: ${r.alert}`, expr: r.expr, shown: Object.values(r.annotations ?? {}) });
  // The promtool tests' input series: a label the code never sets would let a rule pass there and never fire.
  for (const f of readdirSync(DASH).filter((x) => /^alerts.*\.test\.yml$/.test(x))) {
    const tests = (parse(readFileSync(join(DASH, f), 'utf8')) as { tests: Array<{ name: string; input_series: Array<{ series: string }> }> }).tests;
    for (const t of tests) for (const s of t.input_series) out.push({ where: `${f}: ${t.name}`, expr: s.series, shown: [] });
  }
  for (const f of readdirSync(GRAFANA).filter((x) => x.endsWith('.json'))) {
    const board = JSON.parse(readFileSync(join(GRAFANA, f), 'utf8')) as {
      panels: Panel[];
      templating: { list: Array<{ name: string; query?: string | { query: string } }> };
    };
    const walk = (panels: Panel[]): void => {
      for (const p of panels) {
        for (const t of p.targets ?? []) if (t.expr) out.push({ where: `${f}: ${p.title}`, expr: t.expr, shown: t.legendFormat ? [t.legendFormat] : [] });
        walk(p.panels ?? []);
      }
    };
    walk(board.panels);
    for (const v of board.templating.list) {
      const q = typeof v.query === 'string' ? v.query : v.query?.query;
      // label_values(metric, label): the label must be one of the metric's.
      const lv = q?.match(/^label_values\((\w+),\s*(\w+)\)$/);
      if (lv) out.push({ where: `${f}: variable ${v.name}`, expr: `sum by (${lv[2]}) (${lv[1]})`, shown: [] });
    }
  }
  return out;
}

/** Label values the code sets but does not pre-initialise, read from the code that sets them. */
const NOT_PRESET: Record<string, Record<string, readonly string[]>> = {
  // src/feedback/aggregate/report-ingest.ts
  kurir_tlsrpt_sessions_total: { result: ['success', 'failure'] },
  kurir_dmarc_messages_total: { source: ['own', 'foreign'], dmarc: ['pass', 'fail'] },
  kurir_dmarc_own_failures_total: { check: ['dkim', 'spf', 'dmarc'] },
  // src/intake/sign-and-store.ts
  kurir_dkim_failures_total: { reason: DKIM_FAILURE_REASONS },
  // docker/prometheus.yml scrapes the gateway as job "kurir" (and Prometheus itself).
  up: { job: ['kurir', 'prometheus'] },
};

/** Alerts and recording rules that read a counter without pre-set series and need not see its first event (the counter, and why). */
const FIRST_EVENT_NOT_NEEDED: Record<string, string> = {
  // Needs 10 scored messages in the hour anyway (kurir_rspamd_score is observed per sender domain, not pre-set).
  KurirRspamdScoreNearThreshold: 'kurir_rspamd_score_count',
  // Verdicts only in the denominator: a missed first one makes the unscored share look higher, never lower.
  KurirRspamdUnavailable: 'kurir_rspamd_checks_total',
  // The p90 score of an hour's sampled messages; KurirRspamdScoreNearThreshold needs 10 of them.
  'domain:kurir_rspamd_score:p90_1h': 'kurir_rspamd_score_bucket',
  // Pages on refusals sustained for 2 min: a first one missed after a restart changes nothing.
  KurirIntakeUnavailable: 'kurir_intake_messages_refused_total',
};

/** Labels whose values come from the configuration (providers, sender domains, shards, pools, seeds, keys). */
const CONFIGURED = new Set(['provider', 'domain', 'redis', 'ip', 'pool', 'seed', 'selector']);

/** Gauges each process reports for itself, which add up across processes; every other gauge is the same shared value in each. */
const PER_PROCESS_GAUGES = new Set(['kurir_connections_open', 'kurir_intake_inflight_bytes', 'kurir_redis_up', 'kurir_redis_fsync_ok']);

async function registry(): Promise<Map<string, MetricInfo>> {
  const m = createMetrics({ version: 'test', senderDomains: ['example.com'], redisShards: ['s1'], sourceIps: [{ ip: '192.0.2.1', pool: 'p' }] });
  const out = new Map<string, MetricInfo>();
  for (const { name } of m.registry.getMetricsAsArray()) {
    const metric = m.registry.getSingleMetric(name)!;
    const got = await metric.get();
    const values = new Map<string, Set<string>>();
    const series = got.values.map((v) => Object.fromEntries(Object.entries(v.labels).map(([k, x]) => [k, String(x)])));
    for (const v of got.values) {
      for (const [k, val] of Object.entries(v.labels)) {
        const set = values.get(k) ?? new Set();
        set.add(String(val));
        // Prometheus 3 normalises bucket bounds: le="300" is scraped as le="300.0".
        if (k === 'le' && Number.isInteger(val)) set.add(`${val}.0`);
        values.set(k, set);
      }
    }
    for (const [label, list] of Object.entries(NOT_PRESET[name] ?? {})) values.set(label, new Set([...(values.get(label) ?? []), ...list]));
    const labels = (metric as unknown as { labelNames?: string[] }).labelNames ?? [];
    out.set(name, { type: String(got.type), labels: [...labels], values, series });
  }
  out.set('up', { type: 'gauge', labels: [], values: new Map(Object.entries(NOT_PRESET.up).map(([k, v]) => [k, new Set(v)])), series: [] });
  // A recording rule carries the labels its level names (level:metric:operations).
  for (const r of recordingRules) out.set(r.record!, { type: 'record', labels: r.record!.split(':')[0].split('_'), values: new Map(), series: [] });
  return out;
}

describe('labels in dashboards, recording rules and alerts', () => {
  it('every matcher names a label of its metric, with a value the code sets', async () => {
    const reg = await registry();
    const problems: string[] = [];
    let checked = 0;
    for (const e of expressions()) {
      for (const s of kurirSelectors(e.expr)) {
        const info = reg.get(s.name) ?? reg.get(s.base);
        if (!info) continue; // unknown names: metric-names.test.ts
        for (const mt of s.matchers) {
          checked++;
          const own = s.name.endsWith('_bucket') && info.type === 'histogram' ? [...info.labels, 'le'] : info.labels;
          if (!own.includes(mt.label) && !['job', 'instance'].includes(mt.label)) {
            problems.push(`${e.where}: ${s.name} has no label "${mt.label}" (it has ${own.join(', ') || 'none'})`);
            continue;
          }
          if (mt.value.includes('$')) continue; // a Grafana variable
          const known = info.values.get(mt.label);
          if (!known || CONFIGURED.has(mt.label)) continue;
          const bad = mt.regex
            ? mt.alternatives.filter((a) => a !== '' && ![...known].some((k) => new RegExp(`^(?:${a})$`).test(k)))
            : known.has(mt.value)
              ? []
              : [mt.value];
          if (bad.length)
            problems.push(`${e.where}: ${s.name}{${mt.label}${mt.op}"${mt.value}"}: the code never sets ${bad.join(', ')} (sets ${[...known].join(', ')})`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });

  it('every label in by/on/without/ignoring/group_*, a legend or an alert annotation reaches the result', async () => {
    const reg = await registry();
    const problems: string[] = [];
    for (const e of expressions()) problems.push(...unknownLabels(e, reg));
    expect(problems).toEqual([]);
  });

  it('rate/increase read counters and histogram parts, never gauges; histogram_quantile reads _bucket', async () => {
    const reg = await registry();
    const problems: string[] = [];
    for (const e of expressions()) {
      const flat = e.expr.replace(/\s+/g, ' ');
      for (const [, fn, name] of flat.matchAll(/\b(rate|irate|increase|resets|deriv|delta|idelta)\s*\(\s*([a-zA-Z_:][\w:]*)/g)) {
        const base = reg.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
        const info = reg.get(base);
        if (!info || info.type === 'record') continue;
        const counterLike = info.type === 'counter' || (info.type === 'histogram' && name !== base);
        if (['rate', 'irate', 'increase', 'resets'].includes(fn) !== counterLike) problems.push(`${e.where}: ${fn}(${name}) over a ${info.type}`);
      }
      for (const part of flat.split(/\bhistogram_quantile\s*\(/).slice(1)) {
        // The first name after the quantile that is not a function or a grouping label: what it reads.
        const read = part.replace(/\b(by|without)\s*\([^)]*\)/g, '').match(/[a-zA-Z_:][\w:]*(?!\s*\()(?![\w:])/)?.[0];
        if (read && !read.endsWith('_bucket')) problems.push(`${e.where}: histogram_quantile over ${read}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('an alert or recording rule that counts events with increase() or rate() sees the first one: its series are pre-set, or an `unless … offset` branch catches it', async () => {
    const reg = await registry();
    const problems: string[] = [];
    for (const r of [...alertRules, ...recordingRules]) {
      const flat = r.expr.replace(/\s+/g, ' ');
      for (const s of rangeSelectors(flat)) {
        const info = reg.get(s.name) ?? reg.get(s.base);
        if (!info || info.type === 'record' || info.series.some((l) => matches(l, s.matchers))) continue;
        if (flat.includes(`unless ${s.name}`) || FIRST_EVENT_NOT_NEEDED[r.alert ?? r.record!] === s.name) continue;
        problems.push(`${r.alert ?? r.record}: ${s.name} has no pre-set series, so rate()/increase() miss its first event after a restart`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('a panel counting events of a counter an alert catches new series of (`unless … offset`) catches them too', async () => {
    const reg = await registry();
    const watched = new Set(alertRules.flatMap((r) => [...r.expr.matchAll(/\bunless\s+([a-zA-Z_:][\w:]*)/g)].map((m) => m[1])));
    const problems: string[] = [];
    for (const e of expressions().filter((x) => x.where.includes('.json: '))) {
      for (const s of rangeSelectors(e.expr, ['increase'])) {
        const info = reg.get(s.name);
        const fixed = s.matchers.filter((mt) => !mt.value.includes('$'));
        if (!watched.has(s.name) || !info || info.series.some((l) => matches(l, fixed))) continue;
        if (!e.expr.includes(`unless ${s.name}`)) problems.push(`${e.where}: increase(${s.name}) reads 0 for a new series the alert pages on`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every delivery-health alert (verification and reputation groups) keeps the provider label and names it in its summary', async () => {
    const reg = await registry();
    const health = alertGroups.filter((g) => g.name === 'kurir-verification' || g.name === 'kurir-reputation').flatMap((g) => g.rules);
    // KurirNoDeliveries is every provider at once (docs/metrics.md).
    const perProvider = health.filter((r) => r.alert !== 'KurirNoDeliveries');
    expect(perProvider.length).toBeGreaterThan(10);
    for (const r of perProvider) {
      expect(outputLabels(r.expr, reg).has('provider'), `${r.alert} keeps provider`).toBe(true);
      // An aggregation that does not keep provider drops it, whatever the tokenizer's union says.
      for (const [, agg, kw, list] of r.expr.matchAll(/\b(sum|min|max|avg|count|topk|bottomk|quantile|group)\s*(?:(by|without)\s*\(([^)]*)\)\s*)?\(/g)) {
        expect(kw === 'by' && list.split(',').some((l) => l.trim() === 'provider'), `${r.alert}: ${agg} keeps provider`).toBe(true);
      }
      expect(r.annotations?.summary, r.alert).toContain('{{ $labels.provider }}');
    }
  });

  it('gauges that every process exports alike (queue, self-check, key ages) are never summed across processes', async () => {
    const reg = await registry();
    const problems: string[] = [];
    for (const e of expressions()) {
      for (const name of sumsOf(e.expr)) {
        if (reg.get(name)?.type === 'gauge' && !PER_PROCESS_GAUGES.has(name))
          problems.push(`${e.where}: sum over ${name} counts it once per process (use max)`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('docs/metrics.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8');
  const rows = doc.split('\n').filter((l) => l.startsWith('| `kurir_'));

  it('lists every kurir_ metric in a table row that names each of its labels', async () => {
    const reg = await registry();
    const missing: string[] = [];
    for (const [name, info] of reg) {
      if (!name.startsWith('kurir_') || info.type === 'record' || /^kurir_(process|nodejs)_/.test(name)) continue;
      const candidates = rows.filter((r) => r.includes(`\`${name}\``) || r.includes(`\`${name}{`));
      if (!candidates.length) {
        missing.push(`${name}: no row`);
        continue;
      }
      const unnamed = candidates.map((row) => {
        const named = new Set([...row.matchAll(/`([a-z_]+)`|(?<=[{,])([a-z_]+)(?=[,}])/g)].map((x) => x[1] ?? x[2]));
        return info.labels.filter((l) => !named.has(l));
      });
      if (!unnamed.some((u) => u.length === 0)) missing.push(`${name}: no row names ${unnamed[0].join(', ')}`);
    }
    expect(missing).toEqual([]);
  });

  it('has a row for every alert of alerts.yml, and names no other', () => {
    const table = doc.split('\n').filter((l) => /^\| Kurir/.test(l));
    const named = new Set(table.flatMap((l) => [...l.split('|')[1].matchAll(/Kurir[A-Za-z]+/g)].map((m) => m[0])));
    expect([...named].sort()).toEqual(alertRules.map((r) => r.alert!).sort());
  });

  it('names no metric the code does not define', async () => {
    const reg = await registry();
    const names = [...doc.matchAll(/\b(?:[a-z_]+:)?kurir_[a-z0-9_:*]+/g)].map((x) => x[0]);
    const unknown = names.filter((n) => !n.endsWith('_*') && !reg.has(n) && !reg.has(n.replace(/_(bucket|sum|count)$/, '')));
    expect([...new Set(unknown)]).toEqual([]);
  });
});
