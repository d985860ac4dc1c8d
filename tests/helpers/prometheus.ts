/**
 * A real Prometheus server for integration tests (Debian's `prometheus` package; .ci/run installs it),
 * bound to 127.0.0.1 on a free port, with its TSDB in a temp folder and a generated prometheus.yml that
 * scrapes the given loopback targets and loads the given rule files. Also: the PromQL expressions of the
 * Grafana dashboards and rule files under dashboards/, with Grafana variables made plain PromQL.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from './ports.js';
import { backfillTsdb } from './prometheus-history.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const DASHBOARDS = join(ROOT, 'dashboards');

/** The prometheus binary to run: $PROMETHEUS_BIN, else `prometheus` on PATH. */
export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? 'prometheus';

/** Whether the prometheus binary runs here; `reason` says why not. */
export function prometheusAvailable(): { ok: boolean; version?: string; reason?: string } {
  const r = spawnSync(PROMETHEUS_BIN, ['--version'], { encoding: 'utf8' });
  if (r.status === 0) return { ok: true, version: `${r.stdout}${r.stderr}`.split('\n')[0] };
  return { ok: false, reason: `${PROMETHEUS_BIN} not runnable (${r.error?.message ?? `exit ${r.status}`}); apt-get install prometheus — .ci/run installs it` };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes (then throws with `what`). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 15_000, everyMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

export interface PromSample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: Array<[number, string]>;
}

export interface QueryResult {
  /** HTTP status of the API call. */
  httpStatus: number;
  status: 'success' | 'error';
  resultType?: 'vector' | 'matrix' | 'scalar' | 'string';
  /** Vector/matrix samples; a scalar is wrapped as one sample without labels. */
  samples: PromSample[];
  error?: string;
  errorType?: string;
  warnings?: string[];
}

export interface PrometheusServer {
  url: string;
  port: number;
  dir: string;
  configFile: string;
  process: ChildProcess;
  /** Everything Prometheus wrote to stdout/stderr. */
  log(): string;
  /** Instant query through /api/v1/query. */
  query(expr: string): Promise<QueryResult>;
  /** GET on an API path (e.g. `/api/v1/rules`), parsed JSON. */
  api(path: string): Promise<any>;
  /** SIGTERM, then SIGKILL after `graceMs`; removes the temp folder. */
  close(graceMs?: number): Promise<void>;
}

export interface StartPrometheusOptions {
  /** host:port targets to scrape (loopback only). */
  targets: string[];
  job?: string;
  metricsPath?: string;
  /** Absolute paths of rule files. */
  ruleFiles?: string[];
  scrapeInterval?: string;
  evaluationInterval?: string;
  readyTimeoutMs?: number;
  /** OpenMetrics text written into the TSDB before start (tests/helpers/prometheus-history.ts). */
  history?: string;
}

/** Starts Prometheus and resolves once `/-/ready` answers 200. */
export async function startPrometheus(opts: StartPrometheusOptions): Promise<PrometheusServer> {
  for (const t of opts.targets) {
    if (!/^(127\.\d+\.\d+\.\d+|localhost):\d+$/.test(t)) throw new Error(`refusing to scrape non-loopback target ${t}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'kurir-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(
    configFile,
    stringify({
      global: { scrape_interval: opts.scrapeInterval ?? '1s', scrape_timeout: '1s', evaluation_interval: opts.evaluationInterval ?? '1s' },
      rule_files: opts.ruleFiles ?? [],
      scrape_configs: [{ job_name: opts.job ?? 'kurir', metrics_path: opts.metricsPath ?? '/metrics', static_configs: [{ targets: opts.targets }] }],
    }),
  );
  if (opts.history) backfillTsdb(opts.history, join(dir, 'data'), dir);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--web.console.templates=${join(dir, 'consoles')}`,
      `--web.console.libraries=${join(dir, 'console_libraries')}`,
      '--log.level=warn',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  let exited: string | null = null;
  child.on('exit', (code, signal) => (exited = `exit ${code ?? signal}`));

  const close = async (graceMs = 3000): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const server: PrometheusServer = {
    url,
    port,
    dir,
    configFile,
    process: child,
    log: () => output,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ query: expr }),
      });
      const body: any = await res.json();
      const data = body.data ?? {};
      const samples: PromSample[] = data.resultType === 'scalar' || data.resultType === 'string' ? [{ metric: {}, value: data.result }] : (data.result ?? []);
      return {
        httpStatus: res.status,
        status: body.status,
        resultType: data.resultType,
        samples,
        error: body.error,
        errorType: body.errorType,
        warnings: body.warnings,
      };
    },
    async api(path) {
      const res = await fetch(`${url}${path}`);
      return res.json();
    },
    close,
  };

  try {
    await waitFor(
      'Prometheus /-/ready',
      async () => {
        if (exited) throw new Error(`prometheus ${exited}: ${output.slice(-2000)}`);
        const r = await fetch(`${url}/-/ready`).catch(() => null);
        return r?.status === 200;
      },
      opts.readyTimeoutMs ?? 15_000,
      100,
    );
  } catch (err) {
    await close(500);
    throw new Error(`${(err as Error).message}\n${output.slice(-2000)}`);
  }
  return server;
}

// ---- expressions in dashboards/ ---------------------------------------------

export interface Expression {
  /** Where it comes from, e.g. "overview.json: Bounce rate" or "alerts.yml: KurirRedisDown". */
  where: string;
  kind: 'dashboard' | 'record' | 'alert';
  /** As written in the file. */
  raw: string;
  /** Plain PromQL (Grafana variables substituted). */
  expr: string;
  /** Recording rule name (kind "record"). */
  record?: string;
}

/**
 * Grafana variables → values Prometheus understands: multi-value variables become a match-all
 * regex (they are only used with =~), interval variables a fixed range.
 */
export function grafanaToPromql(expr: string, vars: Record<string, string> = {}): string {
  let out = expr
    .replaceAll('$__rate_interval', '1m')
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's ${...} variable syntax, not a template
    .replaceAll('${__rate_interval}', '1m')
    .replaceAll('$__interval', '1m')
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's ${...} variable syntax, not a template
    .replaceAll('${__interval}', '1m')
    .replaceAll('$__range', '1h')
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's ${...} variable syntax, not a template
    .replaceAll('${__range}', '1h');
  for (const [name, value] of Object.entries(vars)) out = out.replaceAll(`\${${name}}`, value).replaceAll(`$${name}`, value);
  return out.replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, '.*');
}

interface Panel {
  title?: string;
  targets?: Array<{ expr?: string; refId?: string }>;
  panels?: Panel[];
}
interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ record?: string; alert?: string; expr: string }> }>;
}

/** Every Grafana panel expression under dashboards/grafana plus the template-variable queries. */
export function dashboardExpressions(vars: Record<string, string> = {}): { expressions: Expression[]; variables: Array<{ where: string; query: string }> } {
  const expressions: Expression[] = [];
  const variables: Array<{ where: string; query: string }> = [];
  const dir = join(DASHBOARDS, 'grafana');
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    const board = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      panels: Panel[];
      templating?: { list?: Array<{ name: string; query?: string | { query?: string } }> };
    };
    const walk = (panels: Panel[]): void => {
      for (const p of panels) {
        for (const t of p.targets ?? []) {
          if (t.expr)
            expressions.push({ where: `${file}: ${p.title} [${t.refId ?? '?'}]`, kind: 'dashboard', raw: t.expr, expr: grafanaToPromql(t.expr, vars) });
        }
        walk(p.panels ?? []);
      }
    };
    walk(board.panels);
    for (const v of board.templating?.list ?? []) {
      const q = typeof v.query === 'string' ? v.query : v.query?.query;
      if (q) variables.push({ where: `${file}: variable ${v.name}`, query: q });
    }
  }
  return { expressions, variables };
}

/** Every recording-rule and alert expression in the given rule files. */
export function ruleExpressions(files: string[]): Expression[] {
  const out: Expression[] = [];
  for (const file of files) {
    const rf = parse(readFileSync(file, 'utf8')) as RuleFile;
    const name = file.split('/').at(-1);
    for (const g of rf.groups) {
      for (const r of g.rules) {
        out.push({ where: `${name}: ${r.record ?? r.alert}`, kind: r.record ? 'record' : 'alert', raw: r.expr, expr: r.expr, record: r.record });
      }
    }
  }
  return out;
}
