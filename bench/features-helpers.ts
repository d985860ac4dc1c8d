/**
 * Helpers of the features phase (bench/features-phase.ts): the confirmation request, rspamd's CPU from /proc,
 * counters from a gateway child's /metrics, the phase's own Redis and round-trip counts, and the summary.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { type Agent, request } from 'node:http';
import { Redis } from 'ioredis';
import { BENCH_API_KEY, cpuSecondsOf } from './gateway-child.js';
import type { Stats } from './loops.js';

/** One measured phase of one side. */
export interface FeaturesRun {
  stats: Stats;
  cpu: { gateway: number; redis: number; bench: number; other: number; wall: number };
  /** Commands the phase's own redis-server processed (Lua-internal ones included). */
  redisCommands: number;
  /** Round trips the gateway child sent (a pipeline, MULTI or script is one). */
  roundTrips: number;
  scored: number;
  confirmed: number;
  /** Queries the benchmark's DNS server answered (rspamd's, and the gateway's MX look-ups). */
  dnsQueries: number;
}

/** POST /v1/messages/:id/confirm; resolves with the status (0 on a socket error), never rejects. */
export function confirm(agent: Agent, port: number, id: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/v1/messages/${encodeURIComponent(id)}/confirm`,
        agent,
        headers: { authorization: `Bearer ${BENCH_API_KEY}`, 'content-length': 0 },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** POST /v1/confirmations with `ids`; resolves with the status of each item (all 0 on a socket error), never rejects. */
export function confirmBatch(agent: Agent, port: number, ids: string[]): Promise<number[]> {
  const body = JSON.stringify({ items: ids.map((id) => ({ id })) });
  return new Promise((resolve) => {
    const failed = (): void => resolve(ids.map(() => 0));
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/confirmations',
        agent,
        headers: { authorization: `Bearer ${BENCH_API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { results?: Array<{ status: number }> };
            resolve(answer.results ? answer.results.map((r) => r.status) : ids.map(() => res.statusCode ?? 0));
          } catch {
            failed();
          }
        });
        res.on('error', failed);
      },
    );
    req.on('error', failed);
    req.end(body);
  });
}

/** Busy CPU seconds of the rspamd processes descended from this benchmark (its main process and workers). */
export function rspamdCpuSeconds(): number {
  const parent = new Map<number, { ppid: number; comm: string }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      parent.set(Number(d), { ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), comm });
    } catch {
      /* the process ended meanwhile */
    }
  }
  const ours = (pid: number): boolean => {
    for (let p = parent.get(pid)?.ppid, hops = 0; p && hops < 5; p = parent.get(p)?.ppid, hops++) if (p === process.pid) return true;
    return false;
  };
  let sum = 0;
  for (const [pid, { comm }] of parent) {
    if (!comm.startsWith('rspamd') || !ours(pid)) continue;
    try {
      sum += cpuSecondsOf(pid);
    } catch {
      /* ended */
    }
  }
  return sum;
}

/** Counter (`…_total`) values of a child's /metrics whose name starts with one of `names`. */
export async function counters(port: number, names: string[]): Promise<Map<string, number>> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const name = line.split(/[{ ]/)[0];
    if (!name.endsWith('_total') || !names.some((n) => name.startsWith(n))) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The counters that changed from `a` to `b`, as `name value` pairs. */
export function diff(a: Map<string, number>, b: Map<string, number>): string {
  const d = [...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const).filter(([, v]) => v !== 0);
  return d.length ? d.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

/** CPU seconds and commands processed of the redis-server at `url` (INFO), through one connection kept open. */
export function privateRedisStats(url: string): (() => Promise<{ cpu: number; commands: number }>) & { close(): void } {
  let client: Redis | undefined;
  const stats = async () => {
    client ??= new Redis(url, { maxRetriesPerRequest: 1 });
    const info = await client.info();
    const v = (k: string): number => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
    return { cpu: v('used_cpu_user') + v('used_cpu_sys'), commands: v('total_commands_processed') };
  };
  // Closed with the phase's Redis: a client left behind would reconnect to a dead port for the rest of the run.
  return Object.assign(stats, { close: () => client?.disconnect() });
}

/** The round-trip counts a child's preload (bench/redis-roundtrips-preload.ts) last wrote; it writes every 200 ms. */
export async function roundTrips(file: string): Promise<{ roundTrips: number; commands: number }> {
  await new Promise((r) => setTimeout(r, 250));
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { roundTrips: number; commands: number };
  } catch {
    return { roundTrips: 0, commands: 0 };
  }
}

function aggregate(rs: FeaturesRun[]) {
  const count = rs.reduce((n, r) => n + r.stats.count, 0);
  const seconds = rs.reduce((n, r) => n + r.stats.seconds, 0);
  const per = (f: (r: FeaturesRun) => number, scale = 1): number => (rs.reduce((n, r) => n + f(r), 0) * scale) / count;
  return {
    phases: rs.length,
    count,
    perSecond: count / seconds,
    perRound: rs.map((r) => Math.round(r.stats.perSecond)),
    gatewayCpuMsPerMsg: per((r) => r.cpu.gateway, 1000),
    redisCpuMsPerMsg: per((r) => r.cpu.redis, 1000),
    benchCpuMsPerMsg: per((r) => r.cpu.bench, 1000),
    otherCpuMsPerMsg: per((r) => r.cpu.other, 1000),
    redisCommandsPerMsg: per((r) => r.redisCommands),
    roundTripsPerMsg: per((r) => r.roundTrips),
    scoredPerMsg: per((r) => r.scored),
    confirmedPerMsg: per((r) => r.confirmed),
    dnsQueriesPerMsg: per((r) => r.dnsQueries),
  };
}

const pct = (a: number, b: number): string => `${b >= a ? '+' : ''}${((b / a - 1) * 100).toFixed(1)} %`;

/**
 * Off and on side per message, what the difference costs per confirmation or per scored message (when
 * only one of them is on), and the drop in msg/s that the CPU per message implies on a CPU-bound machine.
 */
export function summarize(offRuns: FeaturesRun[], onRuns: FeaturesRun[], rspamdCpuOn: number) {
  const off = aggregate(offRuns);
  const on = aggregate(onRuns);
  const rspamdCpuMsPerMsg = (rspamdCpuOn * 1000) / on.count;
  const kurir = (s: typeof off): number => s.gatewayCpuMsPerMsg + s.redisCpuMsPerMsg;
  const all = (s: typeof off, rspamd: number): number => kurir(s) + s.benchCpuMsPerMsg + rspamd;
  // On a machine whose cores are the limit, msg/s falls as CPU per message rises.
  const cpuBoundDropAllPct = (1 - all(off, 0) / all(on, rspamdCpuMsPerMsg)) * 100;
  const cpuBoundDropKurirPct = (1 - kurir(off) / kurir(on)) * 100;
  const d = {
    kurirCpuMs: kurir(on) - kurir(off),
    redisCommands: on.redisCommandsPerMsg - off.redisCommandsPerMsg,
    roundTrips: on.roundTripsPerMsg - off.roundTripsPerMsg,
  };
  const lines = [
    `per message, off → on: gateway CPU ${off.gatewayCpuMsPerMsg.toFixed(3)} → ${on.gatewayCpuMsPerMsg.toFixed(3)} ms, Redis CPU ${off.redisCpuMsPerMsg.toFixed(3)} → ` +
      `${on.redisCpuMsPerMsg.toFixed(3)} ms, Kurir's own (gateway + Redis) ${kurir(off).toFixed(3)} → ${kurir(on).toFixed(3)} ms (${pct(kurir(off), kurir(on))}); ` +
      `Redis commands ${off.redisCommandsPerMsg.toFixed(1)} → ${on.redisCommandsPerMsg.toFixed(1)}, gateway round trips ${off.roundTripsPerMsg.toFixed(1)} → ${on.roundTripsPerMsg.toFixed(1)}; ` +
      `benchmark process (load client, sink, DNS server) ${off.benchCpuMsPerMsg.toFixed(3)} → ${on.benchCpuMsPerMsg.toFixed(3)} ms; rspamd ${rspamdCpuMsPerMsg.toFixed(3)} ms`,
    `on side: ${on.confirmedPerMsg.toFixed(2)} confirmations and ${on.scoredPerMsg.toFixed(3)} scored per message; DNS queries per message ${off.dnsQueriesPerMsg.toFixed(2)} → ` +
      `${on.dnsQueriesPerMsg.toFixed(2)}${on.scoredPerMsg > 0 ? ` (${((on.dnsQueriesPerMsg - off.dnsQueriesPerMsg) / on.scoredPerMsg).toFixed(1)} per scored message, rspamd's)` : ''}`,
  ];
  if (on.confirmedPerMsg > 0 && on.scoredPerMsg === 0) {
    const c = on.confirmedPerMsg;
    lines.push(
      `per confirmation: Kurir's CPU ${(d.kurirCpuMs / c).toFixed(3)} ms, Redis commands ${(d.redisCommands / c).toFixed(1)}, round trips ${(d.roundTrips / c).toFixed(1)}`,
    );
  } else if (on.scoredPerMsg > 0 && on.confirmedPerMsg === 0) {
    const n = on.scoredPerMsg;
    lines.push(
      `per scored message: Kurir's CPU ${(d.kurirCpuMs / n).toFixed(3)} ms, rspamd ${(rspamdCpuMsPerMsg / n).toFixed(2)} ms, benchmark process ` +
        `${((on.benchCpuMsPerMsg - off.benchCpuMsPerMsg) / n).toFixed(2)} ms (mostly answering rspamd's DNS queries)`,
    );
  } else if (on.scoredPerMsg > 0) {
    lines.push('(both on: BENCH_FEATURES_SAMPLE_EVERY=0 or BENCH_FEATURES_CONFIRM_EVERY=0 separates what a confirmation and a scored message cost)');
  }
  lines.push(
    `CPU-bound estimate from CPU per message: ${cpuBoundDropAllPct.toFixed(1)} % fewer msg/s with everything on the same cores (gateway, Redis, ` +
      `benchmark process, rspamd), ${cpuBoundDropKurirPct.toFixed(1)} % counting Kurir's own CPU only (rspamd, its resolver and the booking system elsewhere)`,
  );
  const throughputOverheadPct = (1 - on.perSecond / off.perSecond) * 100;
  return { off, on, rspamdCpuMsPerMsg, throughputOverheadPct, cpuBoundDropAllPct, cpuBoundDropKurirPct, lines };
}
