/**
 * Two phases of `npm run bench:redis` (bench/redis-phases.ts), each on a redis-server of its own:
 *
 *   smtp50   SMTP submission with 50 sessions (STARTTLS + AUTH PLAIN, 4 KB, RSA-2048 DKIM) into one gateway with
 *            all roles, delivered to the loopback sink: accepted and delivered msg/s, accept p50/p99, peak RSS.
 *   shards   with `redis.shards` (example.test on a shard): Redis commands and CPU per message on the main Redis
 *            and on the shard, i.e. how much of the work a shard takes off the main Redis.
 *   memory   Redis memory per queued message (accepted, no worker) and per finished message (delivered, body
 *            dropped, kept for the retention), from INFO used_memory and from MEMORY USAGE of every key, and
 *            what a 1,000,000-message backlog and 1,000,000 finished messages need.
 */
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { startPrivateRedis } from '../tests/helpers/private-redis.js';
import { cpuSecondsOf, type GatewayChild, memoryOf, resetPeak } from './gateway-child.js';
import { HttpClient, httpClosedLoop } from './load.js';
import { smtpLoad } from './smtp-pipelined.js';
import type { Sink } from './sink.js';

/** What the phases need from the benchmark that runs them. */
export interface ScalePhaseContext {
  sink: Sink;
  /** The Redis key prefix of the gateway children. */
  prefix: string;
  /** Starts a gateway child on `redisUrl` (`redis` merged into its `redis` section), stopped by `stopAll`. */
  child(
    redisUrl: string,
    o: { roles: Array<'intake' | 'api' | 'worker'>; label: string; waitForHttp?: boolean; deliveryConcurrency?: number; redis?: Record<string, unknown> },
  ): Promise<GatewayChild>;
  stopAll(): Promise<void>;
  /** Waits until no message body is left in Redis (every delivered message final). */
  waitFinalized(r: Redis, ms: number): Promise<boolean>;
  /** Reserves `count` message numbers (fresh recipients) and answers the first. */
  takeSeq(count: number): number;
}

/**
 * Bytes and keys under `prefix` per key kind, from MEMORY USAGE … SAMPLES 0 of every key. The delivery queue's keys
 * are `queue`; BullMQ's (webhooks) are `bullmq`, except its events stream, `bullmq-events`: capped (about 10,000
 * entries), so a fixed cost, not one per message.
 */
export async function redisFootprint(r: Redis, prefix: string): Promise<Record<string, { keys: number; bytes: number }>> {
  const out: Record<string, { keys: number; bytes: number }> = {};
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 2000);
    cursor = next;
    if (!keys.length) continue;
    const p = r.pipeline();
    for (const k of keys) p.call('MEMORY', 'USAGE', k, 'SAMPLES', '0');
    const res = (await p.exec()) ?? [];
    keys.forEach((k, i) => {
      const rest = k.slice(prefix.length + 1);
      const kind = rest.startsWith('{dq}:') ? 'queue' : rest.startsWith('q:') ? (rest.endsWith(':events') ? 'bullmq-events' : 'bullmq') : rest.split(':')[0];
      const e = (out[kind] ??= { keys: 0, bytes: 0 });
      e.keys++;
      e.bytes += Number(res[i]?.[1] ?? 0);
    });
  } while (cursor !== '0');
  return out;
}

const usedMemory = async (r: Redis): Promise<number> => Number(/^used_memory:(\d+)/m.exec(await r.info('memory'))?.[1] ?? NaN);
const redisCpu = async (r: Redis): Promise<number> => {
  const info = await r.info('cpu');
  const v = (k: string): number => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
  return v('used_cpu_user') + v('used_cpu_sys');
};
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(2)} GiB`;

/** 50 SMTP sessions into one gateway with all roles, end to end. */
export async function smtpSessionsPhase(
  ctx: ScalePhaseContext,
  o: { n: number; sessions: number; deliveryConcurrency: number },
): Promise<Record<string, number>> {
  const redis = await startPrivateRedis({ appendfsync: 'everysec' });
  const r = new Redis(redis.url);
  try {
    const g = await ctx.child(redis.url, { roles: ['intake', 'api', 'worker'], label: 'smtp50', deliveryConcurrency: o.deliveryConcurrency });
    // Untimed: JIT warm-up and the one-time keys.
    ctx.sink.reset();
    const warm = Math.min(500, o.n);
    await smtpLoad(g.smtpPort, warm, o.sessions, ctx.takeSeq(warm), Date.now() + 60_000);
    await ctx.sink.waitForUnique(warm + o.sessions, 30_000);
    const loadAtStart = load();
    resetPeak(g.pid);
    let t0 = 0;
    let cpu0 = 0;
    let redis0 = 0;
    const res = await smtpLoad(g.smtpPort, o.n, o.sessions, ctx.takeSeq(o.n), Date.now() + 300_000, async () => {
      // The sessions' own warm-up messages arrive first; then the clock starts.
      await ctx.sink.waitForUnique(warm + 2 * o.sessions, 30_000);
      ctx.sink.reset();
      cpu0 = cpuSecondsOf(g.pid);
      redis0 = await redisCpu(r);
      t0 = performance.now();
    });
    const all = await ctx.sink.waitForUnique(res.count, 120_000);
    const seconds = ((all ? ctx.sink.lastUniqueAt : performance.now()) - t0) / 1000;
    const out = {
      sessions: o.sessions,
      accepted: res.count,
      errors: res.errors,
      delivered: ctx.sink.unique,
      duplicates: ctx.sink.received - ctx.sink.unique,
      unsigned: ctx.sink.unsigned,
      acceptPerSecond: res.perSecond,
      acceptP50Ms: res.p50,
      acceptP99Ms: res.p99,
      deliveredPerSecond: ctx.sink.unique / seconds,
      peakRssMiB: memoryOf(g.pid).hwmMiB,
      gatewayCpuMsPerMsg: ((cpuSecondsOf(g.pid) - cpu0) * 1000) / Math.max(1, ctx.sink.unique),
      redisCpuSecondsPer1000: ((await redisCpu(r)) - redis0) / (Math.max(1, ctx.sink.unique) / 1000),
    };
    console.log(
      `  ${out.accepted} accepted over ${o.sessions} sessions at ${out.acceptPerSecond.toFixed(0)} msg/s (accept p50 ${out.acceptP50Ms.toFixed(1)} ms, p99 ${out.acceptP99Ms.toFixed(1)} ms; ${out.errors} errors${res.lastError ? `, last ${res.lastError}` : ''}); ` +
        `${out.delivered} delivered at ${out.deliveredPerSecond.toFixed(0)} msg/s end to end (${out.duplicates} duplicates, ${out.unsigned} without DKIM-Signature); ` +
        `peak gateway RSS ${out.peakRssMiB.toFixed(0)} MiB (target < 400); gateway CPU ${out.gatewayCpuMsPerMsg.toFixed(2)} ms/msg; ` +
        `Redis CPU ${out.redisCpuSecondsPer1000.toFixed(2)} s per 1,000 msgs; load average ${loadAtStart} → ${load()}`,
    );
    return out;
  } finally {
    await ctx.stopAll();
    r.disconnect();
    await redis.destroy();
  }
}

/** Redis memory per queued and per finished message, and the projection to a million of each. */
export async function memoryPhase(ctx: ScalePhaseContext, o: { n: number; retentionDays: number }): Promise<Record<string, unknown>> {
  const redis = await startPrivateRedis({ appendfsync: 'everysec' });
  const r = new Redis(redis.url);
  try {
    const intake = await ctx.child(redis.url, { roles: ['intake', 'api'], label: 'mem-intake' });
    const client = new HttpClient(intake.httpPort, 20);
    // One-time keys (secrets, shaping state, BullMQ's fixed keys) first, through a worker that then stops.
    const w0 = await ctx.child(redis.url, { roles: ['worker'], label: 'mem-warm', waitForHttp: false });
    ctx.sink.reset();
    await httpClosedLoop(client, 50, 20, ctx.takeSeq(50), Date.now() + 60_000);
    await ctx.sink.waitForUnique(50, 30_000);
    await ctx.waitFinalized(r, 10_000);
    await w0.stop(10_000);
    const m0 = await usedMemory(r);
    const f0 = await redisFootprint(r, ctx.prefix);
    const sub = await httpClosedLoop(client, o.n, 20, ctx.takeSeq(o.n), Date.now() + 300_000);
    const accepted = sub.ids.length;
    const m1 = await usedMemory(r);
    const f1 = await redisFootprint(r, ctx.prefix);
    // Reset before the worker starts: it delivers during the child's start-up wait.
    ctx.sink.reset();
    await ctx.child(redis.url, { roles: ['worker'], label: 'mem-worker', waitForHttp: false });
    const delivered = await ctx.sink.waitForUnique(accepted, 120_000);
    const finalized = await ctx.waitFinalized(r, 30_000);
    const m2 = await usedMemory(r);
    const f2 = await redisFootprint(r, ctx.prefix);
    client.close();
    const perKind = (a: typeof f0, b: typeof f0) =>
      Object.fromEntries(
        Object.keys(b)
          .map((k) => [k, ((b[k]?.bytes ?? 0) - (a[k]?.bytes ?? 0)) / accepted] as const)
          .filter(([, v]) => Math.abs(v) >= 1)
          .sort((x, y) => y[1] - x[1]),
      );
    const sum = (m: Record<string, number>): number => Object.values(m).reduce((s, v) => s + v, 0);
    const queuedKinds = perKind(f0, f1);
    const finishedKinds = perKind(f0, f2);
    // The events stream stops growing at its cap: its growth here is left out of the per-message figures.
    const perMessage = (m: number, kinds: Record<string, number>) => {
      const { 'bullmq-events': stream = 0, ...own } = kinds;
      return { usedMemoryBytes: m / accepted - stream, keyBytes: sum(own), byKind: own, eventsStreamBytes: stream };
    };
    const out = {
      messages: accepted,
      delivered: ctx.sink.unique,
      finalized: delivered && finalized,
      queued: perMessage(m1 - m0, queuedKinds),
      finished: perMessage(m2 - m0, finishedKinds),
    };
    const line = (what: string, x: typeof out.queued): string =>
      `  per ${what} message: ${x.usedMemoryBytes.toFixed(0)} B of used_memory, ${x.keyBytes.toFixed(0)} B in its keys (MEMORY USAGE: ${Object.entries(x.byKind)
        .map(([k, v]) => `${k} ${v.toFixed(0)}`)
        .join(
          ', ',
        )}; BullMQ's capped events stream ${x.eventsStreamBytes.toFixed(0)} B more, left out) → ${gib(x.usedMemoryBytes * 1e6)} per 1,000,000 (${gib(x.keyBytes * 1e6)} by the keys alone)`;
    console.log(
      `  ${accepted} messages of 4 KB (one recipient) accepted with no worker, then delivered${out.finalized ? '' : ' (NOT all delivered and finalized)'}`,
    );
    console.log(line('queued', out.queued));
    console.log(line('finished', out.finished));
    console.log(
      `  a backlog of 1,000,000 queued messages needs about ${gib(out.queued.usedMemoryBytes * 1e6)} of Redis memory; finished messages are kept ${o.retentionDays} days ` +
        `(retention.days), so 1,000,000 a day keeps ${gib(out.finished.usedMemoryBytes * 1e6 * o.retentionDays)} (used_memory; add the allocator's fragmentation for RSS)`,
    );
    return out;
  } finally {
    await ctx.stopAll();
    r.disconnect();
    await redis.destroy();
  }
}

/** Commands and CPU per delivered message on the main Redis and on the shard holding example.test's messages. */
export async function shardSplitPhase(ctx: ScalePhaseContext, o: { n: number }): Promise<Record<string, unknown>> {
  const [main, shard] = await Promise.all([startPrivateRedis({ appendfsync: 'everysec' }), startPrivateRedis({ appendfsync: 'everysec' })]);
  const rm = new Redis(main.url);
  const rs = new Redis(shard.url);
  try {
    const redis = { shards: [{ name: 'bench-shard', url: shard.url, senderDomains: ['example.test'] }] };
    const g = await ctx.child(main.url, { roles: ['intake', 'api', 'worker'], label: 'shards', redis });
    const client = new HttpClient(g.httpPort, 20);
    ctx.sink.reset();
    await httpClosedLoop(client, 100, 20, ctx.takeSeq(100), Date.now() + 60_000);
    await ctx.sink.waitForUnique(100, 30_000);
    await ctx.waitFinalized(rs, 10_000);
    const counters = async (r: Redis) => {
      const info = await r.info('all');
      const v = (k: string): number => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
      const byName = Object.fromEntries([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1], Number(m[2])]));
      const commands = Object.values(byName).reduce((sum, n) => sum + n, 0);
      return { commands, byName, cpu: v('used_cpu_user') + v('used_cpu_sys') };
    };
    ctx.sink.reset();
    const [m0, s0] = [await counters(rm), await counters(rs)];
    const sub = await httpClosedLoop(client, o.n, 20, ctx.takeSeq(o.n), Date.now() + 300_000);
    await ctx.sink.waitForUnique(sub.ids.length, 120_000);
    const finalized = await ctx.waitFinalized(rs, 30_000);
    const [m1, s1] = [await counters(rm), await counters(rs)];
    client.close();
    type Counters = Awaited<ReturnType<typeof counters>>;
    const per = (a: Counters, b: Counters) => ({
      commandsPerMsg: (b.commands - a.commands) / ctx.sink.unique,
      cpuSecondsPer1000: (b.cpu - a.cpu) / (ctx.sink.unique / 1000),
      byCommand: Object.fromEntries(
        Object.entries(b.byName)
          .map(([k, n]) => [k, Number(((n - (a.byName[k] ?? 0)) / ctx.sink.unique).toFixed(2))] as const)
          .filter(([, n]) => n >= 0.05)
          .sort((x, y) => y[1] - x[1]),
      ),
    });
    const out = { delivered: ctx.sink.unique, finalized, main: per(m0, m1), shard: per(s0, s1) };
    console.log(
      `  ${out.delivered} delivered${finalized ? '' : ' (NOT all finalized)'}; main Redis ${out.main.commandsPerMsg.toFixed(1)} commands and ${out.main.cpuSecondsPer1000.toFixed(2)} s CPU per 1,000 msgs; ` +
        `shard ${out.shard.commandsPerMsg.toFixed(1)} commands and ${out.shard.cpuSecondsPer1000.toFixed(2)} s CPU per 1,000 msgs`,
    );
    console.log(
      `  on the main Redis per message: ${Object.entries(out.main.byCommand)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')}`,
    );
    return out;
  } finally {
    await ctx.stopAll();
    rm.disconnect();
    rs.disconnect();
    await Promise.all([main.destroy(), shard.destroy()]);
  }
}
