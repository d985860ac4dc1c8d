/**
 * Runs Prometheus's own tooling over the rule files, their unit tests, the
 * compose stack's prometheus.yml and every Grafana panel query.
 *
 * promtool comes from Debian's `prometheus` package, which .ci/run installs.
 * Locally: apt-get update -qq && apt-get install -y -qq prometheus
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { splitRuleTests } from '../../helpers/rule-tests.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const DASH = join(ROOT, 'dashboards');
const DOCKER = join(ROOT, 'docker');

const hasPromtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const SKIP_REASON = 'SKIPPED: promtool not on PATH (apt-get install prometheus; .ci/run installs it)';
if (!hasPromtool) console.warn(`promtool tests ${SKIP_REASON}`);

/**
 * Runs promtool without blocking the test worker: `test rules` takes minutes on a loaded machine, and a
 * blocked worker cannot answer vitest's RPC (it reports "Timeout calling onTaskUpdate").
 */
function promtool(args: string[], cwd = ROOT): Promise<{ status: number | null; output: string }> {
  return new Promise((done) => {
    execFile('promtool', args, { cwd, encoding: 'utf8', timeout: 300_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      done({ status, output: `${stdout ?? ''}${stderr ?? ''}` });
    });
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'kurir-promtool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Grafana template variables replaced by values Prometheus understands (multi-value ones are used with =~). */
function grafanaToPromql(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '5m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$__range', '1h')
    .replace(/\$[A-Za-z_][A-Za-z0-9_]*/g, '.*');
}

interface Panel {
  title?: string;
  type: string;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

function dashboardExpressions(): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  for (const file of readdirSync(join(DASH, 'grafana')).filter((f) => f.endsWith('.json'))) {
    const board = JSON.parse(readFileSync(join(DASH, 'grafana', file), 'utf8')) as { panels: Panel[] };
    const walk = (panels: Panel[]): void => {
      for (const p of panels) {
        for (const t of p.targets ?? []) if (t.expr) out.push({ where: `${file}: ${p.title}`, expr: t.expr });
        walk(p.panels ?? []);
      }
    };
    walk(board.panels);
  }
  return out;
}

describe.skipIf(!hasPromtool)(hasPromtool ? 'promtool' : `promtool (${SKIP_REASON})`, () => {
  it('check rules: recording-rules.yml and alerts.yml are valid', async () => {
    const r = await promtool(['check', 'rules', 'dashboards/recording-rules.yml', 'dashboards/alerts.yml']);
    expect(r.output).not.toMatch(/FAILED/);
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/recording-rules\.yml\s+SUCCESS/);
    expect(r.output).toMatch(/alerts\.yml\s+SUCCESS/);
  });

  // Each test of each file runs with only the rules it reads (tests/helpers/rule-tests.ts): the same results, a
  // fraction of the evaluations (alerts.test.yml 8.4 s of CPU → 0.8 s, alerts-weekly.test.yml 21 s → 5.6 s).
  it.each([
    ['every alert unit test in alerts.test.yml passes', 'alerts.test.yml'],
    ['the daily-report alert tests in alerts-daily.test.yml pass (evaluated hourly)', 'alerts-daily.test.yml'],
    ['the confirmation-baseline tests in alerts-weekly.test.yml pass (days of history, evaluated every 4 min)', 'alerts-weekly.test.yml'],
  ])('test rules: %s', { timeout: 300_000 }, async (_what, file) => {
    const split = splitRuleTests(join(DASH, file), mkdtempSync(join(tmp, 'split-')));
    const tests = (parse(readFileSync(join(DASH, file), 'utf8')) as { tests: unknown[] }).tests;
    expect(split).toHaveLength(tests.length);
    const r = await promtool(['test', 'rules', ...split]);
    expect(r.status, r.output).toBe(0);
    expect(r.output.match(/SUCCESS/g)).toHaveLength(tests.length);
  });

  it('test rules, cut per test: a changed recording rule that an alert reads still fails its tests', async () => {
    const copy = mkdtempSync(join(tmp, 'changed-'));
    for (const f of ['alerts.yml', 'alerts.test.yml']) writeFileSync(join(copy, f), readFileSync(join(DASH, f)));
    const rules = readFileSync(join(DASH, 'recording-rules.yml'), 'utf8');
    const changed = rules.replace('rate(kurir_delivery_attempts_total{result="bounced"}[5m])', '0 * rate(kurir_delivery_attempts_total{result="bounced"}[5m])');
    expect(changed).not.toBe(rules);
    writeFileSync(join(copy, 'recording-rules.yml'), changed);
    const r = await promtool(['test', 'rules', ...splitRuleTests(join(copy, 'alerts.test.yml'), mkdtempSync(join(tmp, 'split-')))]);
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/bounce rate above 5% per provider[\s\S]*FAILED|FAILED[\s\S]*bounce rate above 5% per provider/);
  });

  it('check config: docker/prometheus.yml is valid with the rule files it loads', async () => {
    // The config names container paths; map them back through the compose mounts.
    const compose = parse(readFileSync(join(DOCKER, 'compose.yml'), 'utf8'));
    const mounts = new Map<string, string>();
    for (const v of compose.services.prometheus.volumes as string[]) {
      const [src, target] = v.split(':');
      if (src.startsWith('.')) mounts.set(target, resolve(DOCKER, src));
    }
    const config = parse(readFileSync(join(DOCKER, 'prometheus.yml'), 'utf8'));
    config.rule_files = (config.rule_files as string[]).map((f) => {
      const host = mounts.get(f);
      expect(host, `rule file ${f} is mounted into the prometheus service`).toBeDefined();
      return host;
    });
    const file = join(tmp, 'prometheus.yml');
    writeFileSync(file, stringify(config));
    const r = await promtool(['check', 'config', file]);
    expect(r.status, r.output).toBe(0);
    expect(r.output).not.toMatch(/FAILED/);
  });

  it('every Grafana panel query is valid PromQL', async () => {
    const exprs = dashboardExpressions();
    expect(exprs.length).toBeGreaterThan(20);
    const rules = {
      groups: [
        {
          name: 'grafana-panel-queries',
          rules: exprs.map((e, i) => ({ record: `dashboard:panel_${i}:query`, expr: grafanaToPromql(e.expr) })),
        },
      ],
    };
    const file = join(tmp, 'panel-queries.yml');
    writeFileSync(file, stringify(rules));
    const r = await promtool(['check', 'rules', file]);
    expect(r.status, `${r.output}\n${exprs.map((e, i) => `panel_${i} ${e.where}: ${e.expr}`).join('\n')}`).toBe(0);
  });
});
