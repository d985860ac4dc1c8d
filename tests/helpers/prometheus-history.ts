/**
 * History for a test Prometheus: counter series generated as OpenMetrics text and written into a TSDB
 * data folder with `promtool tsdb create-blocks-from openmetrics` (Prometheus ≥ 2.24), so rules that look
 * days back (offset 1d … 7d) evaluate on real stored samples when Prometheus starts. Also: a copy of a rule
 * file with some alerts' `for:` shortened, for alerts whose real hold time cannot pass in a test.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

/** The promtool binary: $PROMTOOL_BIN, else `promtool` on PATH. */
export const PROMTOOL_BIN = process.env.PROMTOOL_BIN ?? 'promtool';

/** One counter series: its labels and how much it grows in the step that ends at `t` (Unix seconds). */
export interface HistorySeries {
  labels: Record<string, string>;
  increment(t: number): number;
}

/** A counter family (`name` without `_total`) and its series. */
export interface HistoryCounter {
  name: string;
  help: string;
  series: HistorySeries[];
}

/** Sample timestamps from `fromSeconds` (inclusive) to `toSeconds` (exclusive), `stepSeconds` apart. */
export function historyTimes(fromSeconds: number, toSeconds: number, stepSeconds: number): number[] {
  const out: number[] = [];
  for (let t = fromSeconds; t < toSeconds; t += stepSeconds) out.push(t);
  return out;
}

/** OpenMetrics text of the counters sampled at `times`; each series starts at 0 at the first time. */
export function openMetricsHistory(counters: HistoryCounter[], times: number[]): string {
  const lines: string[] = [];
  for (const c of counters) {
    lines.push(`# HELP ${c.name} ${c.help}`, `# TYPE ${c.name} counter`);
    for (const s of c.series) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(',');
      let value = 0;
      times.forEach((t, i) => {
        if (i > 0) value += s.increment(t);
        lines.push(`${c.name}_total{${labels}} ${value} ${t}`);
      });
    }
  }
  lines.push('# EOF');
  return `${lines.join('\n')}\n`;
}

/** Writes the OpenMetrics text as TSDB blocks into `dataDir` (one block per day at most). */
export function backfillTsdb(openMetrics: string, dataDir: string, workDir: string): { blocks: number; output: string } {
  const file = join(workDir, 'history.om');
  writeFileSync(file, openMetrics);
  const r = spawnSync(PROMTOOL_BIN, ['tsdb', 'create-blocks-from', 'openmetrics', '--max-block-duration=24h', file, dataDir], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) throw new Error(`promtool tsdb create-blocks-from openmetrics failed (${r.error?.message ?? `exit ${r.status}`}):\n${output}`);
  return { blocks: (output.match(/^[0-9A-Z]{26}\s/gm) ?? []).length, output };
}

/** Writes a copy of rule file `file` to `outFile` with the `for:` of the named alerts replaced. */
export function ruleFileWithFor(file: string, outFile: string, holds: Record<string, string>): void {
  const doc = parse(readFileSync(file, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; for?: string }> }> };
  const seen = new Set<string>();
  for (const g of doc.groups)
    for (const r of g.rules)
      if (r.alert && holds[r.alert]) {
        r.for = holds[r.alert];
        seen.add(r.alert);
      }
  const missing = Object.keys(holds).filter((a) => !seen.has(a));
  if (missing.length) throw new Error(`no such alert in ${file}: ${missing.join(', ')}`);
  writeFileSync(outFile, stringify(doc));
}
