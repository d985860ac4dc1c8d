/**
 * `npx tsx bench/gc-window.ts <timeline> [gc-log-dir]`: lines up one closed-loop run's slow accepts with the
 * gateway children's garbage collections. The timeline is what BENCH_TIMELINE wrote (bench/loops.ts: per loop a
 * `run <sessions>` line, then `<end ms> <latency ms>` per message); the GC logs are bench/gc-log.mjs's. Picks the
 * shortest loop of BENCH_GC_WINDOW_N messages (default 3000: phase 8's timed Kurir run; Postfix's takes longer),
 * prints its p50 / p99 and, for each process whose log overlaps it, the scavenges, full mark-compact steps and
 * event-loop gaps inside it (from 300 ms before its first message), with the times of the slowest accepts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Loop {
  ends: number[];
  latencies: number[];
}

/** The loops of a BENCH_TIMELINE file, in order. */
export function readTimeline(text: string): Loop[] {
  const loops: Loop[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    if (line.startsWith('run ')) loops.push({ ends: [], latencies: [] });
    else {
      const [end, latency] = line.split(' ').map(Number);
      loops.at(-1)?.ends.push(end!);
      loops.at(-1)?.latencies.push(latency!);
    }
  }
  return loops;
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;

function main(): void {
  const [timeline, dir = process.env.BENCH_GC_LOG_DIR ?? '/tmp/kurir-gc-log'] = process.argv.slice(2);
  if (!timeline) throw new Error('usage: npx tsx bench/gc-window.ts <timeline file> [gc log dir]');
  const n = Number(process.env.BENCH_GC_WINDOW_N ?? 3000);
  const loops = readTimeline(readFileSync(timeline, 'utf8')).filter((l) => l.ends.length === n);
  if (!loops.length) throw new Error(`no loop of ${n} messages in ${timeline}`);
  const span = (l: Loop): number => Math.max(...l.ends) - Math.min(...l.ends.map((e, i) => e - l.latencies[i]!));
  const loop = loops.reduce((a, b) => (span(b) < span(a) ? b : a));
  const t0 = Math.min(...loop.ends.map((e, i) => e - loop.latencies[i]!));
  const t1 = Math.max(...loop.ends);
  const sorted = [...loop.latencies].sort((a, b) => a - b);
  const p99 = pct(sorted, 99);
  console.log(`loop of ${n}: ${((t1 - t0) / 1000).toFixed(2)} s, accept p50 ${pct(sorted, 50).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
  const slow = loop.ends.map((e, i) => ({ end: e, latency: loop.latencies[i]! })).filter((m) => m.latency >= p99);
  console.log(`  accepts at or above p99 ended at (ms into the run): ${slow.map((m) => (m.end - t0).toFixed(0)).join(', ')}`);
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.txt'))) {
    const lines = readFileSync(join(dir, f), 'utf8').trim().split('\n');
    const events = lines
      .map((l) => l.split(' '))
      .filter(([t, kind]) => kind !== 'start' && Number(t) >= t0 - 300 && Number(t) <= t1)
      .map(([t, kind, ms]) => ({ at: Number(t) - t0, kind: kind!, ms: Number(ms) }));
    if (!events.length) continue;
    const minor = events.filter((e) => e.kind === 'gc-minor');
    const full = events.filter((e) => e.kind === 'gc-incremental' || e.kind === 'gc-weakcb' || e.kind === 'gc-major');
    const stalls = events.filter((e) => e.kind === 'stall');
    const list = (es: typeof events): string => es.map((e) => `${e.kind.replace('gc-', '')} ${e.ms.toFixed(1)} ms at ${e.at.toFixed(0)}`).join(', ');
    console.log(`  pid ${f.replace('.txt', '')}: ${minor.length} scavenges (${minor.reduce((s, e) => s + e.ms, 0).toFixed(0)} ms)`);
    console.log(`    mark-compact steps: ${list(full) || 'none'}`);
    console.log(`    event-loop gaps > 12 ms: ${list(stalls) || 'none'}`);
  }
}

if (process.argv[1]?.endsWith('gc-window.ts')) main();
