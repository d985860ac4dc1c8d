/**
 * `npm run bench`: Kurir's throughput, latency and memory on this machine, against a loopback DNS server
 * and a loopback SMTP sink (STARTTLS) acting as the recipients' MX. The gateway runs as a child process
 * so its RSS is its own. Bounded (about 4 minutes at most) and self-stopping.
 *
 * Env: BENCH_SCALE (default 1; 0.1 for a smoke run), BENCH_E2E_CONCURRENCY (default "20,50"),
 * BENCH_E2E_SPLIT (delivery concurrency of a further end-to-end run with the worker in its own process; default
 * 20, 0 skips it), BENCH_E2E_WARMUP (untimed messages before each of them, default 10,000 × scale),
 * BENCH_CPU_PROF=1 (profile the accept-only child, the first end-to-end child and phase 7's two children with
 * --cpu-prof and print their top costs; profiling slows them a little),
 * BENCH_CPU_PROF_DIR (keep the .cpuprofile files there), BENCH_CHILD_NODELAY=1 (experiment: TCP_NODELAY on
 * the gateway's outgoing sockets), BENCH_QUIET_WAIT_S (wait at most this long for an idle machine; default 30,
 * and at most 20 s of it before each phase),
 * BENCH_SHAPING_ROUNDS (pairs of end-to-end phases with shaping off/on for the overhead; default 2, 0 skips),
 * BENCH_SHAPING_FIRST (`off` or `on`: the side of the first overhead phase; default random),
 * BENCH_BACKLOG (bulk messages queued for the verification-latency phase; default 5000 × scale, 0 skips),
 * BENCH_FEATURES_ROUNDS (pairs of end-to-end phases with rspamd sampling, placement and confirmations off/on,
 * bench/features-phase.ts; default 4, 0 skips: with 2, run-to-run noise on two shared cores was larger than the effect; adds up to two minutes to the budget), and to attribute its overhead
 * BENCH_FEATURES_CONFIRM_EVERY (confirm every Nth message on the `on` side; default 2, 0 none),
 * BENCH_FEATURES_CONFIRM_BATCH_MS (report them every N ms in one POST /v1/confirmations; default 100; 0: one request each) and
 * BENCH_FEATURES_SAMPLE_EVERY (rspamd sampleEvery on the `on` side; default: the configuration's default, 100; 0 scoring off),
 * BENCH_FEATURES_MAX_PER_SECOND (its maxPerSecond; default the configuration's, 2; `none`: no cap);
 * BENCH_ONLY=features runs phase 7 alone (no accept, end-to-end, shaping or latency phases), BENCH_ONLY=latency
 * phase 6 alone (e.g. BENCH_BACKLOG=50000 for issue 13's verification p99 under a 50,000-message backlog);
 * BENCH_POSTFIX (0 skips the side-by-side phase against Postfix + OpenDKIM, bench/postfix-phase.ts, which runs
 * when they are installed and adds a reserve of 150 s to the budget), BENCH_POSTFIX_N (messages per run; default
 * 3000 × scale), BENCH_POSTFIX_SESSIONS (default "20,50"), BENCH_POSTFIX_KURIR (default "everysec,always"),
 * BENCH_SMTP_CLIENT (the SMTP load client of phase 8: `pipelining`, the default, bench/smtp-pipelined.ts, or `nodemailer`).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { dnsRecordFor, loadPrivateKey } from '../src/dkim/keys.js';
import { createKeys } from '../src/store/keys.js';
import { startDnsServer, type DnsServer } from '../tests/helpers/dns-server.js';
import { dropPrefix } from '../tests/helpers/test-gateway.js';
import { printProfile, summarizeProfile } from './cpu-profile.js';
import { featuresPhase, stopFeaturesRedis } from './features-phase.js';
import { describePairs, overheadVerdict, pairedDrops } from './paired-rounds.js';
import { cpuSecondsOf, machineBusySeconds, syscallsOf, memoryOf, resetPeak, startGatewayChild, type ChildOptions, type GatewayChild } from './gateway-child.js';
import { httpClosedLoop, httpPaced, HttpClient, messageJson, smtpClosedLoop, type MessageKind } from './load.js';
import { percentile, summarize, type Stats } from './loops.js';
import { onInterrupt, postfixMissing, stopAllPostfix } from './postfix-instance.js';
import { kurirSideCount, kurirWarmUp, postfixPhase } from './postfix-phase.js';
import { redisFootprint } from './scale-phases.js';
import { startSink, verifyDkim, type Sink } from './sink.js';
import { smtpPipelinedLoop } from './smtp-pipelined.js';
import { describeWarmUp, warmUp, type WarmUpBlock } from './warm-up.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
if (!(SCALE > 0 && SCALE <= 1)) throw new Error('BENCH_SCALE must be in (0, 1]');
const scaled = (n: number, min = 20): number => Math.max(min, Math.round(n * SCALE));
const E2E_CONCURRENCY = (process.env.BENCH_E2E_CONCURRENCY ?? '20,50')
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const PROFILE = process.env.BENCH_CPU_PROF === '1';
/** Delivery concurrency of the extra end-to-end run with intake+api and worker in two processes; 0 skips it. */
const E2E_SPLIT = Number(process.env.BENCH_E2E_SPLIT ?? 20);
/** Experiment: TCP_NODELAY on every socket the gateway child connects (its SMTP delivery client). */
const CHILD_NODELAY = process.env.BENCH_CHILD_NODELAY === '1';
const PRELOAD = CHILD_NODELAY ? [pathToFileURL(resolve('bench/nodelay-preload.ts')).href] : [];
const CLIENT_CONCURRENCY = 20;
const N_HTTP = scaled(3000);
const N_SMTP = scaled(3000);
const N_E2E = scaled(4000);
const PACED_RATE = 200;
const PACED_SECONDS = Math.max(1, Math.round(10 * SCALE));
/** Untimed messages before the accept phases: over HTTP, then over SMTP (V8 compiles each path's code as it runs hot). */
const WARMUP = scaled(5000);
const SMTP_WARMUP = scaled(3000);
/** Pairs of end-to-end phases with rspamd sampling, placement and confirmations off/on (issue 10). */
const FEATURES_ROUNDS = Number(process.env.BENCH_FEATURES_ROUNDS ?? 4);
/** Longest wait for an idle machine before the run (each phase waits at most 20 s of it). */
const QUIET_WAIT_MS = Number(process.env.BENCH_QUIET_WAIT_S ?? 30) * 1000;
/** Phase 7 alone (BENCH_ONLY=features). */
const FEATURES_ONLY = process.env.BENCH_ONLY === 'features';
/** Phase 6 alone (BENCH_ONLY=latency), e.g. with BENCH_BACKLOG=50000. */
const LATENCY_ONLY = process.env.BENCH_ONLY === 'latency';
/** Whether one phase runs alone. */
const ONE_PHASE = FEATURES_ONLY || LATENCY_ONLY;
if (process.env.BENCH_ONLY !== undefined && !ONE_PHASE) throw new Error('BENCH_ONLY takes one of: features, latency');
/** The side-by-side phase against Postfix + OpenDKIM (issue 13): on unless BENCH_POSTFIX=0 or BENCH_ONLY, skipped when not installed. */
const POSTFIX = process.env.BENCH_POSTFIX !== '0' && !ONE_PHASE;
const POSTFIX_RUNS = POSTFIX && postfixMissing() === null;
const N_POSTFIX = Number(process.env.BENCH_POSTFIX_N ?? scaled(3000));
// The watchdog fires 20 s later: under 6 minutes in all, 7 with the features phase, under 11 with both it and
// Postfix's (whose phase takes about 140 s on a slow 2-core machine: it runs last, on a reserve of its own);
// phase 7 alone gets two minutes per round (a busy machine slows it), plus rspamd's start and the warm-up.
/** Kept for the Postfix phase, which runs last: the phases before it cannot spend it (see `left`). */
// plus Kurir's warm-ups there (one per side) at up to 3 ms a message, and 20 s of timed runs per further side
const POSTFIX_RESERVE_MS = POSTFIX_RUNS ? 150_000 + kurirSideCount() * (kurirWarmUp(N_POSTFIX) * 3 + 20_000) - 40_000 : 0;
const BACKLOG = process.env.BENCH_BACKLOG !== undefined ? Number(process.env.BENCH_BACKLOG) : scaled(5000, 200);
/** Untimed messages before each phase 4 run: 10,000 (× scale), in ten measured blocks; BENCH_E2E_WARMUP overrides. */
const E2E_WARMUP = Number(process.env.BENCH_E2E_WARMUP ?? scaled(10_000, 200));
/** Starting and warming up phase 7's pair of gateways (each round has its own: bench/features-phase.ts), at up to 3 ms a message. */
const FEATURES_PAIR_MS = 10_000 + E2E_WARMUP * 6;
const BUDGET_MS = FEATURES_ONLY
  ? 90_000 + FEATURES_ROUNDS * (120_000 + FEATURES_PAIR_MS)
  : LATENCY_ONLY
    ? // accepting the backlog (~2 ms each) and draining it, plus the warm-ups
      120_000 + BACKLOG * 4
    : // phase 4's three warm-ups at up to 3 ms a message on a slow machine
      350_000 +
      (WARMUP + SMTP_WARMUP) * 3 +
      E2E_WARMUP * 9 +
      (FEATURES_ROUNDS > 0 ? 60_000 + FEATURES_ROUNDS * (12_000 + FEATURES_PAIR_MS) : 0) +
      POSTFIX_RESERVE_MS;
/** Pairs of end-to-end phases (shaping off, then on) in one gateway process, for the overhead of shaping. */
const SHAPING_ROUNDS = Number(process.env.BENCH_SHAPING_ROUNDS ?? 2);
const N_SHAPE = scaled(4000);
/** Untimed messages per side (off, on) before the overhead phases; even. */
const SHAPE_WARMUP = 2 * Math.round(scaled(1500) / 2);
/** Bulk messages queued before the verification-latency phase. */
/** Verification messages per second submitted while the backlog drains. */
const VERIFY_RATE = 5;
/**
 * Shaping for the sink's MX host mx.dest.test: provider `bench`, with a rate far above what one process
 * delivers and more connection slots than delivery.concurrency (so neither binds), adaptive on. The rate
 * is 100 per millisecond: normal mail may not burst above the rate (1 interval of tolerance), and the
 * worker starts up to delivery.concurrency jobs within the same millisecond. Mail to plain.test (MX
 * mx.plain.test, the same sink) stays in `other`, which has no limits: shaping off.
 */
const shapingConfig = (concurrency: number): Record<string, unknown> => ({
  shaping: {
    providers: [{ provider: 'bench', mx: ['mx.dest.test'] }],
    limits: {
      bench: { perMinute: 6_000_000, maxConnections: concurrency + 20, adaptive: true },
      other: { maxConnections: null, perMinute: null, adaptive: false },
    },
  },
});

const startedAt = Date.now();
const deadline = startedAt + BUDGET_MS;
/** Time left to the phase running now; until the Postfix phase starts, its reserve is not counted. */
let reserved = POSTFIX_RESERVE_MS;
const left = (): number => Math.max(0, deadline - reserved - Date.now());

interface CpuSnap {
  /** Busy CPU seconds of the whole machine (every process), from /proc/stat. */
  machine: number;
  gateway: number;
  redis: number;
  /** Commands Redis processed (all clients: Kurir's and the few of this benchmark). */
  redisCommands: number;
  /** Read and write system calls of the measured gateway processes. */
  syscalls: { reads: number; writes: number };
  bench: number;
  at: number;
}
interface PhaseResult {
  phase: string;
  target?: string;
  stats: Stats;
  peakRssMiB: number;
  /** CPU seconds spent during the phase; `other` = everything else on the machine (noise from other processes). */
  cpu: { gateway: number; redis: number; bench: number; other: number; wall: number };
  /** Commands Redis processed during the phase. */
  redisCommands: number;
  notes: string[];
}

let redis: Redis;
let sink: Sink;
let dns: DnsServer;
/** The gateway processes of the current set-up (one, or two when intake and worker run apart). */
let children: GatewayChild[] = [];
const results: PhaseResult[] = [];
const memory: Record<string, unknown> = {};
/** Phase 4's warm-ups, by run (c20, c50, c20-split): gateway CPU per message of each block. */
const warmUps: Record<string, WarmUpBlock[]> = {};
/** Summary figures of the shaping phases (overhead, verification latency). */
const shapingResults: Record<string, unknown> = {};
let postfixResult: Record<string, unknown> | undefined;
const prefix = `kurir-bench-${Math.random().toString(36).slice(2, 10)}`;
let seq = 0; // message numbers, so every submission has its own recipient

async function redisCpu(): Promise<{ cpu: number; commands: number }> {
  const info = await redis.info();
  const v = (k: string): number => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
  return { cpu: v('used_cpu_user') + v('used_cpu_sys'), commands: v('total_commands_processed') };
}

/** Publishes the DKIM key the gateway children sign with (generated by the first child) in the loopback DNS. */
function publishDkim(dir: string): void {
  const key = loadPrivateKey(readFileSync(join(dir, 'dkim-rsa.pem'), 'utf8'));
  dns.set('bench._domainkey.example.test', 'TXT', [dnsRecordFor('rsa', key.publicKeyBase64)]);
}

/** CPU seconds and commands processed of a Redis server. */
export type RedisStats = () => Promise<{ cpu: number; commands: number }>;

async function cpuSnap(pids: number[], redisStats: RedisStats = redisCpu): Promise<CpuSnap> {
  const u = process.cpuUsage();
  const gateway = pids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0);
  const syscalls = pids.map(syscallsOf).reduce((x, y) => ({ reads: x.reads + y.reads, writes: x.writes + y.writes }), { reads: 0, writes: 0 });
  const r = await redisStats();
  return { machine: machineBusySeconds(), gateway, syscalls, redis: r.cpu, redisCommands: r.commands, bench: (u.user + u.system) / 1e6, at: performance.now() };
}

function cpuDiff(a: CpuSnap, b: CpuSnap): PhaseResult['cpu'] {
  const d = { gateway: b.gateway - a.gateway, redis: b.redis - a.redis, bench: b.bench - a.bench };
  const other = Math.max(0, b.machine - a.machine - d.gateway - d.redis - d.bench);
  return { ...d, other, wall: (b.at - a.at) / 1000 };
}

/**
 * Runs `fn` as a measured phase on the current children: resets their peak-RSS marks first, reads them after
 * (the sum when there are two processes).
 */
async function phase(
  name: string,
  target: string | undefined,
  fn: () => Promise<{ stats: Stats; notes?: string[]; messages?: number }>,
  opts: { waitQuiet?: boolean; only?: GatewayChild[]; redisStats?: RedisStats } = {},
): Promise<PhaseResult> {
  const measured = opts.only ?? children;
  const pids = measured.map((c) => c.pid);
  if (opts.waitQuiet !== false) await waitForQuiet(Math.min(20_000, QUIET_WAIT_MS));
  for (const pid of pids) resetPeak(pid);
  const a = await cpuSnap(pids, opts.redisStats);
  const { stats, notes = [], messages = stats.count } = await fn();
  const b = await cpuSnap(pids, opts.redisStats);
  const peaks = pids.map((pid) => memoryOf(pid).hwmMiB);
  if (messages) {
    const perMsg = (x: number): string => ((x * 1000) / messages).toFixed(2);
    notes.push(
      `per message: gateway CPU ${perMsg(b.gateway - a.gateway)} ms, Redis CPU ${perMsg(b.redis - a.redis)} ms, benchmark CPU ${perMsg(b.bench - a.bench)} ms, ` +
        `Redis commands ${((b.redisCommands - a.redisCommands) / messages).toFixed(1)}, ` +
        `gateway system calls ${((b.syscalls.writes - a.syscalls.writes) / messages).toFixed(1)} write + ${((b.syscalls.reads - a.syscalls.reads) / messages).toFixed(1)} read`,
    );
  }
  if (peaks.length > 1) notes.push(`peak RSS per process: ${peaks.map((m, i) => `${measured[i].label} ${m.toFixed(0)} MiB`).join(', ')}`);
  const r: PhaseResult = {
    phase: name,
    target,
    stats,
    peakRssMiB: peaks.reduce((x, y) => x + y, 0),
    cpu: cpuDiff(a, b),
    redisCommands: b.redisCommands - a.redisCommands,
    notes,
  };
  results.push(r);
  const cpu = r.cpu;
  console.log(
    `  ${name}: ${stats.count} ok, ${stats.errors} errors in ${stats.seconds.toFixed(2)} s → ${stats.perSecond.toFixed(0)}/s; ` +
      `p50 ${stats.p50.toFixed(1)} ms, p99 ${stats.p99.toFixed(1)} ms; peak RSS ${r.peakRssMiB.toFixed(0)} MiB; ` +
      `CPU s gateway ${cpu.gateway.toFixed(1)} redis ${cpu.redis.toFixed(1)} bench ${cpu.bench.toFixed(1)} other ${cpu.other.toFixed(1)} over ${cpu.wall.toFixed(1)} s`,
  );
  for (const n of notes) console.log(`    ${n}`);
  return r;
}

/** MEMORY USAGE of the message hash and timeline (and whether a body is left) for a sample of finished messages. */
async function finishedSample(prefix: string, ids: string[]): Promise<Record<string, number>> {
  const keys = createKeys(prefix);
  const sample = ids.filter((_, i) => i % Math.max(1, Math.floor(ids.length / 50)) === 0).slice(0, 50);
  // The sink sees a message before the worker records the outcome and drops the body: wait for that.
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    const bodies = (await Promise.all(sample.map((id) => redis.hexists(keys.message(id), 'body')))).reduce((a, b) => a + b, 0);
    if (bodies === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const p = redis.pipeline();
  for (const id of sample) {
    p.call('MEMORY', 'USAGE', keys.message(id), 'SAMPLES', '0');
    p.call('MEMORY', 'USAGE', keys.events(id), 'SAMPLES', '0');
    p.hexists(keys.message(id), 'body');
    p.ttl(keys.message(id));
  }
  const res = ((await p.exec()) ?? []).map(([, v]) => Number(v ?? 0));
  const sum = { msg: 0, events: 0, bodiesLeft: 0, minTtl: Infinity };
  for (let i = 0; i < sample.length; i++) {
    sum.msg += res[i * 4];
    sum.events += res[i * 4 + 1];
    sum.bodiesLeft += res[i * 4 + 2];
    sum.minTtl = Math.min(sum.minTtl, res[i * 4 + 3]);
  }
  const n = sample.length || 1;
  return {
    sampled: sample.length,
    msgBytes: sum.msg / n,
    eventsBytes: sum.events / n,
    totalBytes: (sum.msg + sum.events) / n,
    bodiesLeft: sum.bodiesLeft,
    minTtlSeconds: sum.minTtl,
  };
}

/**
 * Submits `n` messages over HTTP (closed loop, CLIENT_CONCURRENCY) and waits until the sink holds all of
 * them. stats: delivered/s from the first submit to the last arrival, and the accept latencies.
 */
async function endToEnd(client: HttpClient, n: number, kind: MessageKind = {}): Promise<{ stats: Stats; notes: string[]; ids: string[] }> {
  const t0 = performance.now();
  const sub = await httpClosedLoop(client, n, CLIENT_CONCURRENCY, seq, deadline, kind);
  seq += n;
  const submitSeconds = (performance.now() - t0) / 1000;
  const deliveredAtSubmitEnd = sink.unique;
  const all = await sink.waitForUnique(sub.ids.length, Math.min(90_000, left() - 20_000));
  const seconds = ((all ? sink.lastUniqueAt : performance.now()) - t0) / 1000;
  const stats: Stats = { ...sub.stats, count: sink.unique, seconds, perSecond: sink.unique / seconds };
  const notes = [
    `submitted ${sub.stats.count} in ${submitSeconds.toFixed(2)} s (${sub.stats.perSecond.toFixed(0)}/s, accept p50 ${sub.stats.p50.toFixed(1)} ms, p99 ${sub.stats.p99.toFixed(1)} ms); ${deliveredAtSubmitEnd} delivered by then`,
    `${all ? 'all' : 'NOT all'} delivered: ${sink.unique} distinct of ${sub.stats.count} accepted (${sink.received - sink.unique} duplicates) over ${sink.connections} new SMTP connections (pooled ones from the warm-up not counted), ${sink.secure} over TLS`,
    `DKIM-Signature missing on ${sink.unsigned} of ${sink.received}; mailauth on ${sink.samples.length} samples: ${await verifyDkim(sink.samples, dns.address)}`,
  ];
  if (sub.stats.errors) notes.push(`submit errors: ${sub.stats.errors}, last ${client.lastError}`);
  return { stats, notes, ids: sub.ids };
}

/** Shaping counters of a gateway child (refusals by limit, pauses by provider), from its /metrics on the HTTP port. */
async function shapingCounters(port: number): Promise<Record<string, number>> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`)
    .then((r) => r.text())
    .catch(() => '');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^kurir_shaping_refusals_total\{limit="([^"]+)"\} (\S+)$/gm)) out[`refused ${m[1]}`] = Number(m[2]);
  for (const m of text.matchAll(/^kurir_shaping_pauses_total\{provider="([^"]+)"\} (\S+)$/gm)) out[`pauses ${m[1]}`] = Number(m[2]);
  return out;
}

function counterDiff(a: Record<string, number>, b: Record<string, number>): string {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const d = keys.map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)] as const).filter(([, v]) => v !== 0);
  return d.length ? d.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

/**
 * While a gateway drains `backlog` queued bulk messages (to dest.test), submits a verification message every
 * 1/VERIFY_RATE s until 95 % of the backlog has arrived, then waits for every verification message.
 * Latency = submit (before the HTTP request) → arrival at the sink (end of DATA), per message id.
 */
async function verificationUnderBacklog(
  client: HttpClient,
  backlog: number,
): Promise<{ stats: Stats; notes: string[]; messages: number; summary: Record<string, number> }> {
  const sent: Array<{ id: string; at: number; bulkLeft: number }> = [];
  const arrivedCount = (): number => sent.reduce((n, v) => n + (sink.arrivedAt(v.id) !== undefined ? 1 : 0), 0);
  const bulkArrived = (): number => sink.unique - arrivedCount();
  const pending: Promise<void>[] = [];
  let errors = 0;
  let lastError = '';
  const bulkAtStart = bulkArrived();
  const start = performance.now();
  const stopAt = Math.floor(backlog * 0.95);
  let i = 0;
  while (bulkArrived() < stopAt && left() > 30_000 && performance.now() - start < 90_000) {
    const due = start + (i++ * 1000) / VERIFY_RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const body = messageJson(seq++, { priority: 'verification' });
    const bulkLeft = backlog - bulkArrived();
    const at = performance.now();
    pending.push(
      client.submit(body).then((res) => {
        if (res.status === 202 && res.id) sent.push({ id: res.id, at, bulkLeft });
        else {
          errors++;
          lastError = client.lastError;
        }
      }),
    );
  }
  const streamSeconds = (performance.now() - start) / 1000;
  const bulkAtEnd = bulkArrived();
  await Promise.all(pending);
  const end = performance.now() + 15_000;
  while (arrivedCount() < sent.length && performance.now() < end) await new Promise((r) => setTimeout(r, 20));
  const latencies: number[] = [];
  for (const v of sent) {
    const t = sink.arrivedAt(v.id);
    if (t === undefined) errors++;
    else latencies.push(t - v.at);
  }
  const drainRate = (bulkAtEnd - bulkAtStart) / streamSeconds;
  const stats: Stats = { ...summarize(latencies, errors, streamSeconds), perSecond: drainRate };
  const leftAtLast = sent.length ? Math.min(...sent.map((v) => v.bulkLeft)) : 0;
  const sorted = [...latencies].sort((a, b) => a - b);
  const notes = [
    `${sent.length} verification messages at ${VERIFY_RATE}/s over ${streamSeconds.toFixed(1)} s; ${latencies.length} arrived, ${errors} missing or refused${lastError ? ` (last: ${lastError})` : ''}`,
    `latency submit → sink: p50 ${percentile(sorted, 50).toFixed(0)} ms, p90 ${percentile(sorted, 90).toFixed(0)} ms, p99 ${percentile(sorted, 99).toFixed(0)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(0)} ms`,
    `bulk backlog: ${backlog - bulkAtStart} of ${backlog} still queued when the first verification message was submitted, ${leftAtLast} at the last; ` +
      `drained at ${drainRate.toFixed(0)} msg/s meanwhile (the msgs/s column)`,
  ];
  return {
    stats,
    notes,
    // Per-message costs over everything delivered during the stream, bulk included.
    messages: bulkAtEnd - bulkAtStart + latencies.length,
    summary: {
      sent: sent.length,
      arrived: latencies.length,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.at(-1) ?? NaN,
      drainPerSecond: drainRate,
      backlogAtFirst: backlog - bulkAtStart,
      backlogAtLast: leftAtLast,
    },
  };
}

async function startChild(opts: Omit<ChildOptions, 'dir' | 'prefix' | 'dnsAddress' | 'mxPort'>, dir: string, prefix: string): Promise<GatewayChild> {
  const c = await startGatewayChild({ ...opts, preload: [...PRELOAD, ...(opts.preload ?? [])], dir, prefix, dnsAddress: dns.address, mxPort: sink.port });
  children.push(c);
  return c;
}

async function stopChildren(graceMs?: number): Promise<void> {
  const list = children;
  children = [];
  await Promise.all(list.map((c) => c.stop(graceMs)));
}

/**
 * Waits (at most `maxMs`) until the machine is nearly idle (under 0.3 of a core busy over a second), so other
 * processes disturb a phase less. Skipped once the time budget runs short.
 */
async function waitForQuiet(maxMs: number): Promise<void> {
  if (left() < 90_000) return;
  const end = Date.now() + maxMs;
  let busy = 0;
  do {
    const a = machineBusySeconds();
    await new Promise((r) => setTimeout(r, 1000));
    busy = machineBusySeconds() - a;
    if (busy < 0.3) return;
  } while (Date.now() < end);
  console.log(`  (machine still busy: ${busy.toFixed(2)} cores in use by other processes)`);
}

async function main(): Promise<void> {
  await waitForQuiet(QUIET_WAIT_MS);
  const dir = mkdtempSync(join(tmpdir(), 'kurir-bench-'));
  const profDir = PROFILE ? resolve(process.env.BENCH_CPU_PROF_DIR ?? join(dir, 'prof')) : '';
  if (PROFILE) mkdirSync(profDir, { recursive: true });
  redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: false });
  sink = await startSink({ tls: true });
  dns = await startDnsServer(
    {
      'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
      'mx.dest.test': { A: ['127.0.0.1'] },
      // The same sink under another MX name, for mail that shaping puts in `other` (no limits).
      'plain.test': { MX: [{ exchange: 'mx.plain.test', priority: 10 }] },
      'mx.plain.test': { A: ['127.0.0.1'] },
    },
    { negativeTtl: 300 },
  ); // negative answers carry an SOA, as real authoritative servers' do (no AAAA here)

  console.log(
    `Kurir benchmark: scale ${SCALE}, ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}`,
  );
  if (CHILD_NODELAY) console.log('EXPERIMENT: gateway child runs with TCP_NODELAY forced on its outgoing sockets (bench/nodelay-preload.ts)');
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; redis prefix ${prefix}`,
  );
  try {
    // ---- Accept-only gateway: intake + api, no worker -------------------------------------------
    if (!ONE_PHASE) {
      console.log(`\n[accept] gateway roles intake+api (no worker)`);
      // One folder per child: Node writes a profile per thread (tsx's module loader runs in a worker thread).
      const acceptFlags = PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${join(profDir, 'accept-phases-1-3')}`] : [];
      const gw = await startChild({ roles: ['intake', 'api'], label: 'accept', nodeFlags: acceptFlags }, dir, prefix);
      publishDkim(dir);
      memory.idleRssMiB = memoryOf(gw.pid).rssMiB;
      console.log(`  started (pid ${gw.pid}); idle RSS ${(memory.idleRssMiB as number).toFixed(0)} MiB`);
      const http = new HttpClient(gw.httpPort, CLIENT_CONCURRENCY);
      await httpClosedLoop(http, WARMUP, CLIENT_CONCURRENCY, (seq += WARMUP) - WARMUP, deadline); // JIT warm-up, not counted
      await smtpClosedLoop(gw.smtpPort, SMTP_WARMUP, 20, seq, deadline, true);
      seq += SMTP_WARMUP + 20;
      console.log(`  warm-up (untimed): ${WARMUP} messages over HTTP, ${SMTP_WARMUP} over SMTP`);

      await phase(`1. HTTP accept, ${N_HTTP} msgs, concurrency ${CLIENT_CONCURRENCY}`, undefined, async () => {
        const r = await httpClosedLoop(http, N_HTTP, CLIENT_CONCURRENCY, seq, deadline);
        seq += N_HTTP;
        return { stats: r.stats, notes: r.stats.errors ? [`last error: ${http.lastError}`] : [] };
      });
      const queued = await redisFootprint(redis, prefix);
      const queuedMsgs = queued.msg?.keys ?? 1;
      const queuedBytes = Object.values(queued).reduce((s, e) => s + e.bytes, 0);
      memory.queued = { messages: queuedMsgs, bytesPerMessage: queuedBytes / queuedMsgs, byKind: queued };
      console.log(
        `  Redis per queued (accepted, undelivered) message: ${(queuedBytes / queuedMsgs).toFixed(0)} bytes (${Object.entries(queued)
          .map(([k, e]) => `${k} ${(e.bytes / queuedMsgs).toFixed(0)}`)
          .join(', ')})`,
      );

      await phase(`2. SMTP accept, ${N_SMTP} msgs, 20 sessions`, undefined, async () => {
        const r = await smtpClosedLoop(gw.smtpPort, N_SMTP, 20, seq, deadline);
        seq += N_SMTP + 20;
        return {
          stats: r,
          notes: r.errors
            ? [`last error: ${r.lastError}`]
            : ['20 pooled sessions (STARTTLS + AUTH PLAIN) opened before timing; latency per message = MAIL..DATA end'],
        };
      });

      await phase(`2b. SMTP accept, ${N_SMTP} msgs, 20 sessions, client TCP_NODELAY`, undefined, async () => {
        const r = await smtpClosedLoop(gw.smtpPort, N_SMTP, 20, seq, deadline, true);
        seq += N_SMTP + 20;
        return {
          stats: r,
          notes: r.errors ? [`last error: ${r.lastError}`] : ['as 2., with Nagle off on the client sockets (nodemailer does not set TCP_NODELAY)'],
        };
      });

      await phase(`2c. SMTP accept, ${N_SMTP} msgs, 20 sessions, pipelining client`, undefined, async () => {
        const r = await smtpPipelinedLoop(gw.smtpPort, N_SMTP, 20, seq, deadline);
        seq += N_SMTP + 20;
        return {
          stats: r,
          notes: r.errors
            ? [`last error: ${r.lastError}`]
            : ['as 2b., with bench/smtp-pipelined.ts: MAIL, RCPT and DATA in one write (PIPELINING), messages prepared in advance'],
        };
      });

      await phase(`3. HTTP paced ${PACED_RATE}/s for ${PACED_SECONDS} s (accept only)`, 'p99 < 100 ms', async () => {
        http.lastError = '';
        const r = await httpPaced(http, PACED_RATE, PACED_SECONDS, seq);
        seq += PACED_RATE * PACED_SECONDS;
        const lag = `latency counted from when each request was due; max client scheduling lag ${r.maxLagMs.toFixed(1)} ms`;
        return { stats: r, notes: [lag, ...(r.errors ? [`last error: ${http.lastError}`] : [])] };
      });
      http.close();
      await stopChildren();
      await dropPrefix(prefix);
    }

    // ---- End to end: intake + api + worker -----------------------------------------------------
    const variants = ONE_PHASE
      ? []
      : [...E2E_CONCURRENCY.map((concurrency) => ({ concurrency, split: false })), ...(E2E_SPLIT > 0 ? [{ concurrency: E2E_SPLIT, split: true }] : [])];
    for (const [runIndex, { concurrency, split }] of variants.entries()) {
      const tag = `c${concurrency}${split ? '-split' : ''}`;
      if (left() < 30_000) {
        console.log(`\n[e2e ${tag}] skipped: time budget spent`);
        continue;
      }
      let g: GatewayChild;
      if (split) {
        console.log(`\n[e2e] two gateway processes: roles intake+api (signing on its event loop), and roles worker (delivery.concurrency ${concurrency})`);
        // Two processes share the two cores: a signing thread would only add CPU (docs/benchmarks.md#signing-off-the-event-loop).
        g = await startChild({ roles: ['intake', 'api'], label: 'intake+api', extraConfig: { dkim: { signingThreads: 0 } } }, dir, prefix);
        await startChild({ roles: ['worker'], label: 'worker', deliveryConcurrency: concurrency, waitForHttp: false }, dir, prefix);
      } else {
        console.log(`\n[e2e] gateway roles intake+api+worker, delivery.concurrency ${concurrency}`);
        const flags = PROFILE && runIndex === 0 ? ['--cpu-prof', `--cpu-prof-dir=${join(profDir, `e2e-c${concurrency}`)}`] : [];
        g = await startChild(
          { roles: ['intake', 'api', 'worker'], label: `e2e-${concurrency}`, deliveryConcurrency: concurrency, nodeFlags: flags },
          dir,
          prefix,
        );
      }
      const client = new HttpClient(g.httpPort, CLIENT_CONCURRENCY);
      sink.reset();
      // A fresh process runs its first thousands of messages markedly slower while V8 compiles: the warm-up
      // goes on until that is over (bench/warm-up.ts), and prints what each block of it cost.
      const warm = await warmUp({
        pids: children.map((c) => c.pid),
        sink,
        total: E2E_WARMUP,
        block: Math.max(100, Math.round(E2E_WARMUP / 10)),
        send: async (count) => {
          const r = await httpClosedLoop(client, count, CLIENT_CONCURRENCY, seq, deadline);
          seq += count;
          return r;
        },
      });
      console.log(`  warm-up (untimed): ${describeWarmUp(warm)}`);
      warmUps[tag] = warm;

      let ids: string[] = [];
      const setup = split ? `, 2 processes (intake+api; worker)` : '';
      await phase(
        `4. end to end, ${N_E2E} msgs via HTTP c${CLIENT_CONCURRENCY}, delivery.concurrency ${concurrency}${setup}`,
        '≥ 400 delivered/s',
        async () => {
          const e = await endToEnd(client, N_E2E);
          ids = e.ids;
          return e;
        },
      );

      const finished = await finishedSample(prefix, ids);
      const foot = await redisFootprint(redis, prefix);
      const msgs = foot.msg?.keys ?? 1;
      // Other kinds with about one key per message (e.g. the Message-ID index) count per message too.
      const perMessage = Object.entries(foot).filter(([k, e]) => !['msg', 'rcpt', 'events'].includes(k) && e.keys >= 0.9 * msgs);
      const extra = perMessage.reduce((sum, [, e]) => sum + e.bytes / msgs, 0);
      const perFinished = finished.totalBytes + extra;
      const perKind = Object.fromEntries(Object.entries(foot).map(([k, e]) => [k, { keys: e.keys, bytes: e.bytes, bytesPerMessage: e.bytes / msgs }]));
      memory[`finished_${tag}`] = { bytesPerFinishedMessage: perFinished, sample: finished, scan: { messages: msgs, perKind } };
      console.log(
        `  Redis per finished message: ${perFinished.toFixed(0)} bytes = message hash ${finished.msgBytes.toFixed(0)} + events ${finished.eventsBytes.toFixed(0)} ` +
          `(MEMORY USAGE SAMPLES 0 of ${finished.sampled} sampled messages)` +
          perMessage.map(([k, e]) => ` + ${k} ${(e.bytes / msgs).toFixed(0)} (average of all ${e.keys} keys)`).join('') +
          `; bodies left ${finished.bodiesLeft}; retention TTL ≥ ${finished.minTtlSeconds} s`,
      );
      console.log(
        `  every key under the prefix: ${Object.entries(foot)
          .map(([k, e]) => (e.keys >= 0.9 * msgs ? `${k} ${e.keys} keys, ${(e.bytes / msgs).toFixed(0)} B/msg` : `${k} ${e.keys} keys, ${e.bytes} B in all`))
          .join('; ')}`,
      );

      if (runIndex === 0 && left() > PACED_SECONDS * 1000 + 40_000) {
        sink.reset();
        await phase(`3b. HTTP paced ${PACED_RATE}/s for ${PACED_SECONDS} s, worker delivering in the same process`, 'p99 < 100 ms', async () => {
          client.lastError = '';
          const r = await httpPaced(client, PACED_RATE, PACED_SECONDS, seq);
          seq += PACED_RATE * PACED_SECONDS;
          const all = await sink.waitForUnique(r.count, 15_000);
          return {
            stats: r,
            notes: [
              `max client scheduling lag ${r.maxLagMs.toFixed(1)} ms; ${all ? 'all' : 'NOT all'} delivered (${sink.unique}/${r.count})`,
              ...(r.errors ? [`last error: ${client.lastError}`] : []),
            ],
          };
        });
      }
      client.close();
      await stopChildren();
      await dropPrefix(prefix);
    }

    // ---- Shaping (issue 3): overhead on end-to-end throughput ------------------------------------
    if (SHAPING_ROUNDS > 0 && !ONE_PHASE && left() > 60_000) {
      console.log(
        `\n[shaping overhead] gateway roles intake+api+worker, delivery.concurrency 20; end to end alternately to plain.test ` +
          `(MX mx.plain.test: provider other, no limits = shaping off) and dest.test (MX mx.dest.test: provider bench, perMinute 6,000,000, ` +
          `maxConnections 40, adaptive = shaping on), both the same sink`,
      );
      const g = await startChild(
        { roles: ['intake', 'api', 'worker'], label: 'shaping', deliveryConcurrency: 20, extraConfig: shapingConfig(20) },
        dir,
        prefix,
      );
      const client = new HttpClient(g.httpPort, CLIENT_CONCURRENCY);
      // A longer warm-up than the other phases': the first thousands of messages of a fresh process run slower
      // (JIT, heap growth), which would count against whichever side goes first.
      sink.reset();
      for (let i = 0; i < 4; i++) {
        await httpClosedLoop(client, SHAPE_WARMUP / 2, CLIENT_CONCURRENCY, seq, deadline, { domain: i % 2 ? 'dest.test' : 'plain.test' });
        seq += SHAPE_WARMUP / 2;
      }
      await sink.waitForUnique(2 * SHAPE_WARMUP, 30_000);
      const runs: Record<'off' | 'on', PhaseResult[]> = { off: [], on: [] };
      /** msg/s of each round's two sides: a round is a pair for the verdict (bench/paired-rounds.ts). */
      const rounds: Array<Partial<Record<'off' | 'on', number>>> = [];
      // off, on, on, off, … (or on, off, off, on, …; which side starts is random per run): a drift over time
      // (heap, Redis size) or a slower first phase does not favour one side.
      const first: 'off' | 'on' = (process.env.BENCH_SHAPING_FIRST ?? (Math.random() < 0.5 ? 'off' : 'on')) === 'on' ? 'on' : 'off';
      const second: 'off' | 'on' = first === 'on' ? 'off' : 'on';
      for (let round = 1; round <= SHAPING_ROUNDS; round++) {
        const order = round % 2 ? [first, second] : [second, first];
        for (const mode of order) {
          if (left() < 40_000) {
            console.log(`  round ${round}, shaping ${mode}: skipped, time budget spent`);
            continue;
          }
          sink.reset();
          const before = await shapingCounters(g.httpPort);
          const r = await phase(
            `5. end to end, ${N_SHAPE} msgs via HTTP c${CLIENT_CONCURRENCY}, delivery.concurrency 20, shaping ${mode === 'on' ? 'on (provider bench)' : 'off (provider other)'}, round ${round}`,
            mode === 'on' ? 'overhead < 10 %' : undefined,
            async () => {
              const e = await endToEnd(client, N_SHAPE, { domain: mode === 'on' ? 'dest.test' : 'plain.test' });
              e.notes.push(`shaping counters during the phase: ${counterDiff(before, await shapingCounters(g.httpPort))}`);
              return e;
            },
          );
          runs[mode].push(r);
          (rounds[round - 1] ??= {})[mode] = r.stats.perSecond;
        }
      }
      client.close();
      await stopChildren();
      await dropPrefix(prefix);
      if (runs.off.length && runs.on.length) {
        const agg = (rs: PhaseResult[]) => {
          const count = rs.reduce((n, r) => n + r.stats.count, 0);
          const seconds = rs.reduce((n, r) => n + r.stats.seconds, 0);
          return {
            phases: rs.length,
            perSecond: count / seconds,
            perRound: rs.map((r) => Math.round(r.stats.perSecond)),
            gatewayCpuMsPerMsg: (rs.reduce((n, r) => n + r.cpu.gateway, 0) * 1000) / count,
            redisCpuMsPerMsg: (rs.reduce((n, r) => n + r.cpu.redis, 0) * 1000) / count,
            redisCommandsPerMsg: rs.reduce((n, r) => n + r.redisCommands, 0) / count,
            disturbed: rs.filter((r) => r.cpu.other > 0.25 * r.cpu.wall).length,
          };
        };
        const off = agg(runs.off);
        const on = agg(runs.on);
        const overheadPct = (1 - on.perSecond / off.perSecond) * 100;
        const cpuPct = ((on.gatewayCpuMsPerMsg + on.redisCpuMsPerMsg) / (off.gatewayCpuMsPerMsg + off.redisCpuMsPerMsg) - 1) * 100;
        const whole = rounds.filter((r): r is Record<'off' | 'on', number> => r.off !== undefined && r.on !== undefined);
        const paired = pairedDrops(
          whole.map((r) => r.off),
          whole.map((r) => r.on),
        );
        const verdict = overheadVerdict(overheadPct, paired, 10);
        shapingResults.overhead = { off, on, throughputOverheadPct: overheadPct, cpuOverheadPct: cpuPct, paired, verdict };
        console.log(
          `  shaping overhead: off ${off.perSecond.toFixed(0)} msg/s (${off.perRound.join(', ')}), on ${on.perSecond.toFixed(0)} msg/s (${on.perRound.join(', ')}) → ` +
            `${overheadPct.toFixed(1)} % fewer msg/s (${describePairs(paired)}; target < 10 %: ${verdict})` +
            `${off.disturbed + on.disturbed ? ` ⚠ ${off.disturbed + on.disturbed} disturbed phase(s)` : ''}`,
        );
        console.log(
          `  per message: gateway CPU ${off.gatewayCpuMsPerMsg.toFixed(2)} → ${on.gatewayCpuMsPerMsg.toFixed(2)} ms, Redis CPU ${off.redisCpuMsPerMsg.toFixed(2)} → ${on.redisCpuMsPerMsg.toFixed(2)} ms ` +
            `(gateway+Redis ${cpuPct >= 0 ? '+' : ''}${cpuPct.toFixed(1)} %), Redis commands ${off.redisCommandsPerMsg.toFixed(1)} → ${on.redisCommandsPerMsg.toFixed(1)}`,
        );
      }
    } else if (SHAPING_ROUNDS > 0 && !ONE_PHASE) console.log('\n[shaping overhead] skipped: time budget spent');

    // ---- Issue 10: rspamd sampling, placement and confirmations on vs off ------------------------
    if (FEATURES_ROUNDS > 0 && !LATENCY_ONLY && left() > 60_000) {
      shapingResults.features = await featuresPhase({
        rounds: FEATURES_ROUNDS,
        messages: N_SHAPE,
        initialWarmup: E2E_WARMUP,
        warmup: SHAPE_WARMUP,
        clientConcurrency: CLIENT_CONCURRENCY,
        deadline,
        left,
        sink,
        dnsAddress: dns.address,
        basePrefix: prefix,
        takeSeq: (count) => (seq += count) - count,
        dnsQueries: () => dns.queries.length,
        profDir: PROFILE ? profDir : undefined,
        startChild: async (opts, p) => {
          const child = await startChild(opts, dir, p);
          publishDkim(dir); // the first child generated the key when the accept phases did not run
          return child;
        },
        stopChildren: () => stopChildren(),
        phase: (name, target, fn, only, redisStats) => phase(name, target, fn, { only, redisStats }),
      });
    } else if (FEATURES_ROUNDS > 0 && !LATENCY_ONLY) console.log('\n[features overhead] skipped: time budget spent');

    // ---- Shaping (issue 3): verification latency under a bulk backlog ----------------------------
    if (BACKLOG > 0 && !FEATURES_ONLY && left() > 50_000) {
      console.log(
        `\n[latency] ${BACKLOG} bulk messages to dest.test accepted with no worker running (roles intake+api), then one gateway with all roles ` +
          `(delivery.concurrency 20, provider bench as above) drains them while verification messages to dest.test arrive at ${VERIFY_RATE}/s`,
      );
      await waitForQuiet(20_000);
      const acc = await startChild({ roles: ['intake', 'api'], label: 'backlog-intake', extraConfig: shapingConfig(20) }, dir, prefix);
      const c1 = new HttpClient(acc.httpPort, CLIENT_CONCURRENCY);
      const queued = await httpClosedLoop(c1, BACKLOG, CLIENT_CONCURRENCY, seq, deadline, { priority: 'bulk' });
      seq += BACKLOG;
      c1.close();
      await stopChildren();
      const backlog = queued.ids.length;
      console.log(`  queued ${backlog} bulk messages in ${queued.stats.seconds.toFixed(1)} s (${queued.stats.errors} errors)`);
      await waitForQuiet(20_000);
      sink.reset();
      const g = await startChild(
        { roles: ['intake', 'api', 'worker'], label: 'latency', deliveryConcurrency: 20, extraConfig: shapingConfig(20) },
        dir,
        prefix,
      );
      const client = new HttpClient(g.httpPort, 4);
      // No wait for an idle machine here: the gateway is already draining the backlog.
      await phase(
        `6. verification latency, ${VERIFY_RATE}/s while ${backlog} queued bulk messages drain, delivery.concurrency 20`,
        'p99 < 2 s',
        async () => {
          const r = await verificationUnderBacklog(client, backlog);
          shapingResults.latency = r.summary;
          return r;
        },
        { waitQuiet: false },
      );
      const all = await sink.waitForUnique(backlog, Math.max(0, Math.min(30_000, left() - 15_000)));
      console.log(`  ${all ? 'the whole backlog arrived' : `NOT all of the backlog arrived (${sink.unique})`}; ${sink.received - sink.unique} duplicates`);
      client.close();
      await stopChildren();
      await dropPrefix(prefix);
    } else if (BACKLOG > 0 && !FEATURES_ONLY) console.log('\n[latency] skipped: time budget spent');

    // ---- Issue 13: Postfix + OpenDKIM side by side (same load, same sink, one run) ---------------
    reserved = 0;
    if (POSTFIX && (!POSTFIX_RUNS || left() > 60_000)) {
      if (POSTFIX_RUNS) await waitForQuiet(20_000);
      onInterrupt(() => stopChildren(3000));
      postfixResult = await postfixPhase({
        sink,
        dns,
        dir,
        messages: N_POSTFIX,
        sessions: (process.env.BENCH_POSTFIX_SESSIONS ?? '20,50')
          .split(',')
          .map(Number)
          .filter((n) => n > 0),
        deadline,
        left,
        takeSeq: (count) => (seq += count) - count,
        startChild: (opts, p) => startChild(opts, dir, p),
        stopChildren: () => stopChildren(),
      });
    } else if (POSTFIX) console.log('\n[postfix] skipped: time budget spent');
  } finally {
    await stopChildren(5000);
    await dropPrefix(prefix).catch(() => undefined);
    await sink?.close();
    await dns?.close();
    await redis?.quit();
    if (PROFILE) {
      for (const sub of readdirSync(profDir)) {
        // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the main thread.
        for (const f of readdirSync(join(profDir, sub)).filter((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f))) {
          console.log(`\nCPU profile of the gateway child's main thread, ${sub} (${join(profDir, sub, f)}):`);
          printProfile(summarizeProfile(join(profDir, sub, f), 25));
        }
      }
    }
    if (!process.env.BENCH_CPU_PROF_DIR) rmSync(dir, { recursive: true, force: true });
  }

  console.log('\n| phase | target | ok | errors | msgs/s | p50 ms | p99 ms | peak RSS MiB | CPU s gateway / redis / bench / other | wall s |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
  for (const r of results) {
    const s = r.stats;
    console.log(
      `| ${r.phase}${r.cpu.other > 0.25 * r.cpu.wall ? ' ⚠ disturbed' : ''} | ${r.target ?? ''} | ${s.count} | ${s.errors} | ${s.perSecond.toFixed(0)} | ${s.p50.toFixed(1)} | ${s.p99.toFixed(1)} | ${r.peakRssMiB.toFixed(0)} | ${r.cpu.gateway.toFixed(1)} / ${r.cpu.redis.toFixed(1)} / ${r.cpu.bench.toFixed(1)} / ${r.cpu.other.toFixed(1)} | ${r.cpu.wall.toFixed(1)} |`,
    );
  }
  console.log('(e2e rows: msgs/s = delivered/s from first submit to last delivery; p50/p99 = accept latency of the submissions)');
  console.log('(row 6: ok = verification messages delivered, msgs/s = bulk drain rate meanwhile, p50/p99 = verification submit → arrival at the MX)');
  console.log('(⚠ disturbed: other processes used more than a quarter of a core during the phase; the numbers are then low)');
  const q = memory.queued as { bytesPerMessage: number } | undefined;
  const finishedRuns = Object.entries(memory).filter(([k]) => k.startsWith('finished_')) as Array<[string, { bytesPerFinishedMessage: number }]>;
  console.log(
    `\nmemory: gateway idle RSS ${memory.idleRssMiB !== undefined ? (memory.idleRssMiB as number).toFixed(0) : '?'} MiB; Redis per queued message ${q ? q.bytesPerMessage.toFixed(0) : '?'} B; ` +
      `per finished message ${finishedRuns.map(([k, v]) => `${v.bytesPerFinishedMessage.toFixed(0)} B (${k.slice(9)})`).join(', ')}`,
  );
  const finishedBytes = finishedRuns[0]?.[1].bytesPerFinishedMessage;
  // MEMORY USAGE of the keys alone; `npm run bench:redis` (phase memory) adds what INFO used_memory sees besides.
  if (q && finishedBytes)
    console.log(
      `projection: 1,000,000 queued messages ≈ ${((q.bytesPerMessage * 1e6) / 2 ** 30).toFixed(2)} GiB of Redis; 1,000,000 finished ones kept for the retention ≈ ${((finishedBytes * 1e6) / 2 ** 30).toFixed(2)} GiB`,
    );
  console.log(`total ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
  console.log(
    `\nJSON ${JSON.stringify({ scale: SCALE, childNoDelay: CHILD_NODELAY, date: new Date().toISOString(), results, warmUps, memory, shaping: shapingResults, postfix: postfixResult })}`,
  );
}

const watchdog = setTimeout(() => {
  console.error('benchmark exceeded its time budget: stopping');
  for (const c of children) c.proc.kill('SIGKILL');
  const bail = setTimeout(() => process.exit(1), 5000);
  // The features phase's two gateways use a redis-server of its own (bench/features-phase.ts).
  void Promise.all([stopAllPostfix(), dropPrefix(prefix).catch(() => undefined), stopFeaturesRedis().catch(() => undefined)]).finally(() => {
    clearTimeout(bail);
    process.exit(1);
  });
}, BUDGET_MS + 20_000);

main()
  .then(() => {
    clearTimeout(watchdog);
    process.exit(0);
  })
  .catch(async (err: unknown) => {
    console.error(err);
    for (const c of children) c.proc.kill('SIGKILL');
    await stopAllPostfix();
    process.exit(1);
  });
