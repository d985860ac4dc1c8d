/**
 * What one confirmation costs the gateway, measured alone (bench/features-phase.ts runs it after its rounds):
 * delivered messages that were not confirmed yet are confirmed in a closed loop, then once more (repeats),
 * and the gateway child's CPU, the phase's own Redis' CPU and commands, and the child's round trips are
 * divided by the number of requests. Nothing else runs on that child meanwhile, so the figures are the
 * confirmation's own even when other work shares the machine (only slower).
 */
import { Agent } from 'node:http';
import { confirm, confirmBatch, roundTrips } from './features-helpers.js';
import { cpuSecondsOf } from './gateway-child.js';

/** Per confirmation (per request, unless confirmed in batches). */
export interface ConfirmCost {
  requests: number;
  statuses: Record<number, number>;
  gatewayCpuMs: number;
  redisCpuMs: number;
  redisCommands: number;
  /** Redis round trips per confirmation; NaN without `rtFile`. */
  roundTrips: number;
  perSecond: number;
  /** The longest request (one batch when batched), ms: it bounds how long one request's scripts held Redis. */
  longestMs: number;
}

export interface ConfirmCostOptions {
  port: number;
  pid: number;
  ids: string[];
  concurrency: number;
  redisStats: () => Promise<{ cpu: number; commands: number }>;
  /** The child's round-trip counts (bench/redis-roundtrips-preload.ts), when it was preloaded. */
  rtFile?: string;
  /** > 1: confirm in batches of this many per POST /v1/confirmations; figures stay per confirmation. */
  batch?: number;
}

/** One closed-loop pass over `o.ids`, measured. */
export async function confirmPass(o: ConfirmCostOptions): Promise<ConfirmCost> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  const statuses: Record<number, number> = {};
  const rt0 = o.rtFile ? await roundTrips(o.rtFile) : undefined;
  const r0 = await o.redisStats();
  const c0 = cpuSecondsOf(o.pid);
  const t0 = performance.now();
  let next = 0;
  let longestMs = 0;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (next < o.ids.length) {
        const size = Math.max(1, o.batch ?? 1);
        const ids = o.ids.slice(next, next + size);
        next += ids.length;
        const started = performance.now();
        const got = size > 1 ? await confirmBatch(agent, o.port, ids) : [await confirm(agent, o.port, ids[0])];
        longestMs = Math.max(longestMs, performance.now() - started);
        for (const status of got) statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const c1 = cpuSecondsOf(o.pid);
  const r1 = await o.redisStats();
  const rt1 = o.rtFile ? await roundTrips(o.rtFile) : undefined;
  agent.destroy();
  const n = o.ids.length;
  return {
    requests: n,
    statuses,
    gatewayCpuMs: ((c1 - c0) * 1000) / n,
    redisCpuMs: ((r1.cpu - r0.cpu) * 1000) / n,
    // Two INFO commands of the measurement itself.
    redisCommands: (r1.commands - r0.commands - 2) / n,
    roundTrips: rt0 && rt1 ? (rt1.roundTrips - rt0.roundTrips) / n : Number.NaN,
    perSecond: n / seconds,
    longestMs,
  };
}

/** First confirmations of `ids`, then the same again (each a repeat). */
export async function confirmationCost(o: ConfirmCostOptions): Promise<{ first: ConfirmCost; repeat: ConfirmCost }> {
  const first = await confirmPass(o);
  const repeat = await confirmPass(o);
  return { first, repeat };
}

/** One line for the phase's output. */
export function describeConfirmCost(label: string, c: ConfirmCost): string {
  const s = Object.entries(c.statuses)
    .map(([k, v]) => `${v} × HTTP ${k}`)
    .join(', ');
  return (
    `${label}: ${c.requests} confirmations (${s}), ${c.perSecond.toFixed(0)}/s; per confirmation gateway CPU ${c.gatewayCpuMs.toFixed(3)} ms, ` +
    `Redis CPU ${c.redisCpuMs.toFixed(3)} ms, Redis commands ${c.redisCommands.toFixed(1)}` +
    `${Number.isNaN(c.roundTrips) ? '' : `, round trips ${c.roundTrips.toFixed(1)}`}; longest request ${c.longestMs.toFixed(1)} ms`
  );
}
