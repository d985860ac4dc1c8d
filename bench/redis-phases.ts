/**
 * `npm run bench:redis`: what Kurir asks of Redis, on a redis-server of the benchmark's own (never the
 * shared one, so the counts hold only Kurir's commands). Three phases, each optional:
 *
 *   cost        Redis commands (INFO commandstats, commands inside Lua scripts included) and bytes
 *               (INFO stats net input/output) per message: accept (intake+api alone), then delivery
 *               (a worker drains what was accepted), each by command name.
 *   durability  end to end with `redis.durability: standard` (AOF everysec) and `fsync` (AOF always).
 *   scale       end to end with 1, 2 and 4 gateway processes (roles split intake+api / worker) on one
 *               Redis; Redis CPU seconds per 1,000 messages (= cores of Redis at 1,000 msg/s).
 *   smtp50      50 SMTP sessions end to end, peak RSS; shards: main Redis vs shard work per message with
 *               `redis.shards`; memory: Redis bytes per queued and finished message and the 1,000,000-message
 *               projection (all three in bench/scale-phases.ts).
 *
 * Env: BENCH_REDIS_PHASES (comma list, default "cost,durability,scale,smtp50,shards,memory"), BENCH_REDIS_N (messages per
 * measured run, default 500), BENCH_REDIS_PROCS (default "1,2,4"), BENCH_REDIS_CONFIG (JSON merged into
 * every gateway's configuration, e.g. '{"shaping":{"enabled":false}}'), BENCH_REDIS_SMTP_N (default 3000),
 * BENCH_REDIS_SMTP_SESSIONS (default 50), BENCH_REDIS_SMTP_CONCURRENCY (delivery.concurrency, default 20), BENCH_SMTP_CLIENT
 * (the SMTP load client: `pipelining`, the default, or `nodemailer`),
 * BENCH_REDIS_MEMORY_N (default 2000).
 */
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { dnsRecordFor, loadPrivateKey } from '../src/dkim/keys.js';
import { startDnsServer, type DnsServer } from '../tests/helpers/dns-server.js';
import { startPrivateRedis, type PrivateRedis } from '../tests/helpers/private-redis.js';
import { cpuSecondsOf, startGatewayChild, type ChildOptions, type GatewayChild } from './gateway-child.js';
import { httpClosedLoop, HttpClient } from './load.js';
import { SMTP_CLIENT } from './smtp-pipelined.js';
import { memoryPhase, type ScalePhaseContext, shardSplitPhase, smtpSessionsPhase } from './scale-phases.js';
import { startSink, type Sink } from './sink.js';

const PHASES = new Set((process.env.BENCH_REDIS_PHASES ?? 'cost,durability,scale,smtp50,shards,memory').split(','));
const N = Number(process.env.BENCH_REDIS_N ?? 500);
const PROCS = (process.env.BENCH_REDIS_PROCS ?? '1,2,4').split(',').map(Number);
/** Merged into every child's configuration, e.g. '{"shaping":{"enabled":false}}'. */
const EXTRA = JSON.parse(process.env.BENCH_REDIS_CONFIG ?? '{}') as Record<string, unknown>;
const CONCURRENCY = 20;
const WARMUP = 50;

let sink: Sink;
let dns: DnsServer;
let dir: string;
let seq = 0;
let children: GatewayChild[] = [];
const report: Record<string, unknown> = {};

interface RedisStats {
  commands: Record<string, number>;
  total: number;
  netIn: number;
  netOut: number;
  /** Read events Redis processed: about one per client round trip (a pipeline is one; requests that reach one connection together can share one). */
  reads: number;
  cpu: number;
}

/** INFO commandstats + stats + cpu of a Redis, as numbers. */
export async function redisStats(r: Redis): Promise<RedisStats> {
  const info = await r.info('all');
  const commands: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commands[m[1]] = Number(m[2]);
  const v = (k: string): number => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
  return {
    commands,
    total: Object.values(commands).reduce((a, b) => a + b, 0),
    netIn: v('total_net_input_bytes'),
    netOut: v('total_net_output_bytes'),
    reads: v('total_reads_processed'),
    cpu: v('used_cpu_user') + v('used_cpu_sys'),
  };
}

/** b − a per message, with the commands sorted by count. */
function perMessage(a: RedisStats, b: RedisStats, messages: number) {
  const byCommand = Object.entries(b.commands)
    .map(([k, n]) => [k, (n - (a.commands[k] ?? 0)) / messages] as const)
    .filter(([, n]) => n > 0)
    .sort((x, y) => y[1] - x[1]);
  return {
    commands: (b.total - a.total) / messages,
    roundTrips: (b.reads - a.reads) / messages,
    bytesIn: (b.netIn - a.netIn) / messages,
    bytesOut: (b.netOut - a.netOut) / messages,
    redisCpuMs: ((b.cpu - a.cpu) * 1000) / messages,
    byCommand: Object.fromEntries(byCommand.map(([k, n]) => [k, Number(n.toFixed(2))])),
  };
}

const PRELOAD = [pathToFileURL(resolve('bench/redis-roundtrips-preload.ts')).href];

/** Client-side round trips and commands of a child so far (bench/redis-roundtrips-preload.ts). */
function clientCounts(label: string): { roundTrips: number; commands: number } {
  try {
    return JSON.parse(readFileSync(join(dir, `rt-${label}.json`), 'utf8')) as { roundTrips: number; commands: number };
  } catch {
    return { roundTrips: 0, commands: 0 };
  }
}

/** Writes every command the Redis at `url` runs to `file` (MONITOR), until the returned connection is closed. */
async function traceCommands(url: string, file: string): Promise<{ disconnect(): void }> {
  const out = createWriteStream(file);
  const m = await new Redis(url).monitor();
  m.on('monitor', (_time: string, args: string[], source: string) =>
    out.write(`${source.includes('lua') ? 'lua ' : ''}${args.map((a) => a.slice(0, 60)).join(' ')}\n`),
  );
  return {
    disconnect: () => {
      m.disconnect();
      out.end();
    },
  };
}

async function child(
  redisUrl: string,
  o: Omit<ChildOptions, 'dir' | 'prefix' | 'dnsAddress' | 'mxPort'>,
  durability = 'standard',
  redisExtra: Record<string, unknown> = {},
): Promise<GatewayChild> {
  const c = await startGatewayChild({
    ...o,
    dir,
    prefix: 'kb',
    dnsAddress: dns.address,
    mxPort: sink.port,
    preload: PRELOAD,
    env: { BENCH_RT_FILE: join(dir, `rt-${o.label}.json`) },
    extraConfig: { ...EXTRA, ...o.extraConfig, redis: { ...redisExtra, url: redisUrl, durability } },
  });
  children.push(c);
  // The first child generates the DKIM key; the DNS must publish it for verifiers (not needed for counting).
  const key = loadPrivateKey(readFileSync(join(dir, 'dkim-rsa.pem'), 'utf8'));
  dns.set('bench._domainkey.example.test', 'TXT', [dnsRecordFor('rsa', key.publicKeyBase64)]);
  return c;
}

async function stopAll(): Promise<void> {
  const list = children;
  children = [];
  await Promise.all(list.map((c) => c.stop(10_000)));
}

/** Waits until the live index is empty (every delivered message finalized, its body dropped), at most `ms`. */
async function waitFinalized(r: Redis, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await r.zcard('kb:live')) === 0) return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

/** Submits `n` messages over `clients` (split evenly) and waits for all at the sink. */
async function submitAll(clients: HttpClient[], n: number): Promise<{ accepted: number; seconds: number }> {
  const t0 = performance.now();
  const share = Math.ceil(n / clients.length);
  const runs = clients.map((c, i) => {
    const start = seq + i * share;
    return httpClosedLoop(c, Math.min(share, n - i * share), CONCURRENCY, start, Date.now() + 120_000);
  });
  const res = await Promise.all(runs);
  seq += n;
  const accepted = res.reduce((s, r) => s + r.ids.length, 0);
  return { accepted, seconds: (performance.now() - t0) / 1000 };
}

async function costPhase(): Promise<void> {
  const redis = await startPrivateRedis({ appendfsync: 'everysec' });
  const r = new Redis(redis.url);
  try {
    const intake = await child(redis.url, { roles: ['intake', 'api'], label: 'cost-intake' });
    const client = new HttpClient(intake.httpPort, CONCURRENCY);
    // Warm-up through a worker, so one-time keys (VERP secret, shaping state, live-index marker) are made.
    const w0 = await child(redis.url, { roles: ['worker'], label: 'cost-warm', waitForHttp: false });
    sink.reset();
    await submitAll([client], WARMUP);
    await sink.waitForUnique(WARMUP, 30_000);
    await waitFinalized(r, 10_000);
    await w0.stop(10_000);
    children = children.filter((c) => c !== w0);

    // A worker's own start-up round trips (scripts, reconciler pass, BullMQ set-up), to subtract below.
    const idle = await child(redis.url, { roles: ['worker'], label: 'cost-idle', waitForHttp: false });
    await idle.stop(10_000);
    children = children.filter((x) => x !== idle);
    const startup = clientCounts('cost-idle');
    const ca = clientCounts('cost-intake');
    // BENCH_REDIS_MONITOR=file: every command Redis runs from here on (scripts' commands included), one per line.
    const monitor = process.env.BENCH_REDIS_MONITOR ? await traceCommands(redis.url, process.env.BENCH_REDIS_MONITOR) : undefined;
    const a = await redisStats(r);
    const sub = await submitAll([client], N);
    const b = await redisStats(r);
    await new Promise((res) => setTimeout(res, 300));
    const cb = clientCounts('cost-intake');
    sink.reset();
    const dnsBefore = dns.queries.length;
    const worker = await child(redis.url, { roles: ['worker'], label: 'cost-worker', waitForHttp: false });
    const all = await sink.waitForUnique(sub.accepted, 60_000);
    const finalized = await waitFinalized(r, 20_000);
    const c = await redisStats(r);
    await new Promise((res) => setTimeout(res, 300));
    const w1 = clientCounts('cost-worker');
    const client1 = {
      accept: { roundTrips: (cb.roundTrips - ca.roundTrips) / sub.accepted, commands: (cb.commands - ca.commands) / sub.accepted },
      // From the worker's start, less an idle worker's start-up and 3 s of waiting.
      delivery: { roundTrips: (w1.roundTrips - startup.roundTrips) / sink.unique, commands: (w1.commands - startup.commands) / sink.unique },
    };
    const accept = perMessage(a, b, sub.accepted);
    const delivery = perMessage(b, c, sink.unique);
    const total = perMessage(a, c, sink.unique);
    const dnsPerMessage = (dns.queries.length - dnsBefore) / sink.unique;
    if (process.env.BENCH_DNS_DEBUG) console.log(dns.queries.slice(dnsBefore, dnsBefore + 12));
    report.cost = { messages: sub.accepted, delivered: sink.unique, finalized, accept, delivery, total, client: client1, dnsPerMessage };
    console.log(`\n[cost] ${sub.accepted} accepted, ${sink.unique} delivered${all && finalized ? '' : ' (NOT all delivered/finalized)'}`);
    const line = (name: string, p: ReturnType<typeof perMessage>): void =>
      console.log(
        `  ${name}: ${p.commands.toFixed(1)} commands, ${p.roundTrips.toFixed(1)} round trips (read events), ${p.bytesIn.toFixed(0)} B in, ${p.bytesOut.toFixed(0)} B out per message; ` +
          Object.entries(p.byCommand)
            .map(([k, n]) => `${k} ${n}`)
            .join(', '),
      );
    line('accept', accept);
    line('delivery', delivery);
    line('total', total);
    console.log(
      `  client side (gateway processes): accept ${client1.accept.roundTrips.toFixed(1)} round trips with ${client1.accept.commands.toFixed(1)} commands, ` +
        `delivery ${client1.delivery.roundTrips.toFixed(1)} round trips with ${client1.delivery.commands.toFixed(1)} commands per message (scripts count as one command here)`,
    );
    console.log(`  DNS queries per delivered message: ${dnsPerMessage.toFixed(2)}`);
    client.close();
    void worker;
    monitor?.disconnect();
  } finally {
    await stopAll();
    r.disconnect();
    await redis.destroy();
  }
}

/** One end-to-end run on a fresh private Redis: `intakes` intake+api processes and `workers` worker processes (or one with all roles). */
async function e2eRun(label: string, opts: { appendfsync: 'everysec' | 'always'; durability: string; procs: number }): Promise<Record<string, number>> {
  const redis: PrivateRedis = await startPrivateRedis({ appendfsync: opts.appendfsync });
  const r = new Redis(redis.url);
  try {
    const intakes: GatewayChild[] = [];
    if (opts.procs === 1) intakes.push(await child(redis.url, { roles: ['intake', 'api', 'worker'], label: `${label}-all` }, opts.durability));
    else {
      for (let i = 0; i < opts.procs / 2; i++) {
        intakes.push(await child(redis.url, { roles: ['intake', 'api'], label: `${label}-intake${i}` }, opts.durability));
        await child(redis.url, { roles: ['worker'], label: `${label}-worker${i}`, waitForHttp: false }, opts.durability);
      }
    }
    const clients = intakes.map((g) => new HttpClient(g.httpPort, CONCURRENCY));
    sink.reset();
    await submitAll(clients, WARMUP * clients.length);
    await sink.waitForUnique(WARMUP * clients.length, 30_000);
    sink.reset();
    const pids = children.map((c) => c.pid);
    const gw0 = pids.reduce((s, p) => s + cpuSecondsOf(p), 0);
    const a = await redisStats(r);
    const t0 = performance.now();
    const sub = await submitAll(clients, N);
    await sink.waitForUnique(sub.accepted, 60_000);
    const seconds = (sink.lastUniqueAt - t0) / 1000;
    const b = await redisStats(r);
    const gw1 = pids.reduce((s, p) => s + cpuSecondsOf(p), 0);
    const p = perMessage(a, b, sink.unique);
    const out = {
      accepted: sub.accepted,
      delivered: sink.unique,
      msgPerSecond: sink.unique / seconds,
      acceptPerSecond: sub.accepted / sub.seconds,
      redisCpuSecondsPer1000: p.redisCpuMs,
      gatewayCpuMsPerMsg: ((gw1 - gw0) * 1000) / sink.unique,
      commandsPerMsg: p.commands,
    };
    console.log(
      `  ${label}: ${out.delivered}/${out.accepted} delivered at ${out.msgPerSecond.toFixed(0)} msg/s (accepted at ${out.acceptPerSecond.toFixed(0)}/s); ` +
        `Redis CPU ${out.redisCpuSecondsPer1000.toFixed(2)} s per 1,000 msgs (= cores of Redis at 1,000 msg/s); gateway CPU ${out.gatewayCpuMsPerMsg.toFixed(2)} ms/msg; ` +
        `${out.commandsPerMsg.toFixed(1)} Redis commands/msg; one Redis core would carry about ${(1000 / out.redisCpuSecondsPer1000).toFixed(0)} msg/s of this load`,
    );
    for (const c of clients) c.close();
    return out;
  } finally {
    await stopAll();
    r.disconnect();
    await redis.destroy();
  }
}

async function main(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'kurir-bench-redis-'));
  sink = await startSink({ tls: true });
  // Negative answers carry an SOA (negative TTL 300 s) as real authoritative servers' do: mx.dest.test has no AAAA.
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } }, { negativeTtl: 300 });
  console.log(`Kurir Redis benchmark: ${cpus().length} CPUs, ${N} messages per run, node ${process.version} (timings are noisy when other processes run)`);
  try {
    if (PHASES.has('cost')) await costPhase();
    if (PHASES.has('durability')) {
      console.log('\n[durability] one gateway, all roles, delivery.concurrency 20, its own redis-server');
      report.durability = {
        standard: await e2eRun('standard (appendfsync everysec)', { appendfsync: 'everysec', durability: 'standard', procs: 1 }),
        fsync: await e2eRun('fsync (appendfsync always)', { appendfsync: 'always', durability: 'fsync', procs: 1 }),
      };
    }
    if (PHASES.has('scale')) {
      console.log('\n[scale] 1 process (all roles), 2 (intake+api, worker), 4 (2 × intake+api, 2 × worker) on one redis-server');
      const scale: Record<string, unknown> = {};
      for (const procs of PROCS)
        scale[procs] = await e2eRun(`${procs} process${procs > 1 ? 'es' : ''}`, { appendfsync: 'everysec', durability: 'standard', procs });
      report.scale = scale;
    }
    const ctx: ScalePhaseContext = {
      sink,
      prefix: 'kb',
      child: (url, { redis, ...o }) => child(url, o, 'standard', redis),
      stopAll,
      waitFinalized,
      takeSeq: (count) => (seq += count) - count,
    };
    if (PHASES.has('smtp50')) {
      const sessions = Number(process.env.BENCH_REDIS_SMTP_SESSIONS ?? 50);
      const concurrency = Number(process.env.BENCH_REDIS_SMTP_CONCURRENCY ?? 20);
      console.log(
        `\n[smtp50] ${sessions} SMTP sessions (STARTTLS, AUTH PLAIN, client TCP_NODELAY, load client ${SMTP_CLIENT}), 4 KB, RSA-2048 DKIM; one gateway, all roles, delivery.concurrency ${concurrency}`,
      );
      report.smtp50 = await smtpSessionsPhase(ctx, { n: Number(process.env.BENCH_REDIS_SMTP_N ?? 3000), sessions, deliveryConcurrency: concurrency });
    }
    if (PHASES.has('shards')) {
      console.log('\n[shards] one gateway, all roles, redis.shards: example.test on a shard; work per message on the main Redis and on the shard');
      report.shards = await shardSplitPhase(ctx, { n: N });
    }
    if (PHASES.has('memory')) {
      console.log('\n[memory] Redis memory per queued and per finished message, and for a million of them');
      report.memory = await memoryPhase(ctx, { n: Number(process.env.BENCH_REDIS_MEMORY_N ?? 2000), retentionDays: 7 });
    }
  } finally {
    await stopAll();
    await sink.close();
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nJSON ${JSON.stringify({ date: new Date().toISOString(), n: N, ...report })}`);
}

main()
  .then(() => process.exit(0))
  .catch((err: unknown) => {
    console.error(err);
    for (const c of children) c.proc.kill('SIGKILL');
    process.exit(1);
  });
