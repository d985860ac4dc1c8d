// Preload for gateway children (BENCH_CHILD_NODE_FLAGS="--import ./bench/gc-log.mjs"): appends every garbage
// collection of the process, and every gap of more than 12 ms between two ticks of a 2 ms timer (the event loop
// held), with wall-clock times, to `$BENCH_GC_LOG_DIR/<pid>.txt` (default /tmp/kurir-gc-log). The first line,
// `<ms> start`, tells the processes apart by start time. `npx tsx bench/gc-window.ts` lines them up with the
// slow accepts of a run written by BENCH_TIMELINE. Plain JavaScript: it loads before tsx.
import { appendFileSync, mkdirSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

const dir = process.env.BENCH_GC_LOG_DIR ?? '/tmp/kurir-gc-log';
mkdirSync(dir, { recursive: true });
const file = `${dir}/${process.pid}.txt`;
// perf_hooks' NODE_PERFORMANCE_GC_* kinds (1 minor, 4 major, 8 incremental, 16 weakcb): minor is a scavenge;
// incremental marking and weak callbacks belong to a full mark-compact (major). Until 2 Dec 2026 this map was off
// by one kind (4 logged as incremental, 8 as weakcb, 16 as all); bench/gc-window.ts counted 4 and 8 as full GC steps
// either way.
const KINDS = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' };
const at = (t) => (performance.timeOrigin + t).toFixed(1);

appendFileSync(file, `${Date.now()} start\n`);
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    // detail.flags: perf_hooks' NODE_PERFORMANCE_GC_FLAGS_* (32: all external memory, 64: scheduled idle, 4: forced).
    const kind = KINDS[e.detail?.kind] ?? e.detail?.kind;
    // After a mark-compact: what the old generation still holds (MB), to tell growth from churn.
    const old = kind === 'minor' ? '' : ` old=${(getHeapSpaceStatistics().find((x) => x.space_name === 'old_space').space_used_size / 1048576).toFixed(1)}`;
    appendFileSync(file, `${at(e.startTime)} gc-${kind} ${e.duration.toFixed(2)} flags=${e.detail?.flags ?? 0}${old}\n`);
  }
}).observe({ entryTypes: ['gc'] });
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  if (now - last > 12) appendFileSync(file, `${at(now)} stall ${(now - last).toFixed(1)}\n`);
  last = now;
}, 2).unref();
