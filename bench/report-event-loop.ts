/**
 * `npx tsx bench/report-event-loop.ts`: how long reading one large DMARC report holds the event loop, on the
 * event loop (readAggregateReport as before) vs through the report thread pool (feedback.reports.parseThreads).
 * The report is Google's layout with 10,000 records (tests/helpers/report-fixtures.ts), zipped in its mail
 * message. A 10 ms setInterval runs meanwhile; its largest gap between two ticks is how long the gateway could
 * not answer anything else; an idle second shows the floor on the machine. ROUNDS (env BENCH_REPORT_ROUNDS, default 5) runs per side, after one warm-up each.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { ReportPool } from '../src/feedback/aggregate/report-pool.js';
import { readAggregateReport, type AggregateLimits } from '../src/feedback/reports/aggregate-report.js';
import { googleDmarcMail, googleManyRecords } from '../tests/helpers/report-fixtures.js';

const ROUNDS = Number(process.env.BENCH_REPORT_ROUNDS ?? 5);
const RECORDS = Number(process.env.BENCH_REPORT_RECORDS ?? 10_000);
const limits: AggregateLimits = { maxCompressedBytes: 10 * 1024 * 1024, maxInflatedBytes: 32 * 1024 * 1024, maxZipEntries: 4, maxRecords: 100_000 };

/** Reads the report once with a 10 ms interval ticking: the largest gap between ticks and the read's duration. */
async function measure(read: () => Promise<{ ok: boolean }>): Promise<{ maxGapMs: number; readMs: number }> {
  let last = performance.now();
  let maxGap = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 10);
  // Let the interval start ticking before the read.
  await new Promise((r) => setTimeout(r, 50));
  const start = performance.now();
  const r = await read();
  const readMs = performance.now() - start;
  await new Promise((r) => setTimeout(r, 30));
  clearInterval(tick);
  if (!r.ok) throw new Error('the report was refused');
  return { maxGapMs: Math.max(maxGap, performance.now() - last), readMs };
}

const range = (xs: number[]): string =>
  `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} ms (median ${[...xs].sort((a, b) => a - b)[xs.length >> 1].toFixed(0)})`;

async function side(name: string, read: () => Promise<{ ok: boolean }>): Promise<void> {
  await measure(read); // warm-up (JIT; the pool's thread starts)
  const runs: Array<{ maxGapMs: number; readMs: number }> = [];
  for (let i = 0; i < ROUNDS; i++) runs.push(await measure(read));
  console.log(`${name.padEnd(14)} event loop held at most: ${range(runs.map((r) => r.maxGapMs))}; report read in ${range(runs.map((r) => r.readMs))}`);
}

const xml = googleManyRecords(RECORDS);
const mail = Buffer.from(googleDmarcMail('dmarc@bounce.example.test', xml));
console.log(
  `${RECORDS} records, ${(xml.length / 1e6).toFixed(1)} MB XML, ${(mail.length / 1e3).toFixed(0)} kB message; ${cpus().length} cores, load ${loadavg()[0].toFixed(1)}`,
);
// The floor: what the interval shows with nothing to do but wait (other processes share the cores).
await side('idle (1 s)', () => new Promise((r) => setTimeout(() => r({ ok: true }), 1000)));
await side('event loop', () => readAggregateReport(mail, limits));
const pool = new ReportPool({ threads: 1, maxQueued: 8, maxParseMs: 60_000 });
try {
  await side('thread pool', () => readAggregateReport(mail, limits, (b, l) => pool.read(b, l)));
} finally {
  await pool.close();
}
