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
  roundTrips: number;
  perSecond: number;
}

export interface ConfirmCostOptions {
  port: number;
  pid: number;
  ids: string[];
  concurrency: number;
  redisStats: () => Promise<{ cpu: number; commands: number }>;
  /** The child's round-trip counts (bench/redis-roundtrips-preload.ts). */
  rtFile: string;
  /** > 1: confirm in batches of this many per POST /v1/confirmations; figures stay per confirmation. */
  batch?: number;
}

async function pass(o: ConfirmCostOptions): Promise<ConfirmCost> {
  const agent = new Agent({ keepAlive: true, maxSockets: o.concurrency });
  const statuses: Record<number, number> = {};
  const rt0 = await roundTrips(o.rtFile);
  const r0 = await o.redisStats();
  const c0 = cpuSecondsOf(o.pid);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (next < o.ids.length) {
        const size = Math.max(1, o.batch ?? 1);
        const ids = o.ids.slice(next, next + size);
        next += ids.length;
        const got = size > 1 ? await confirmBatch(agent, o.port, ids) : [await confirm(agent, o.port, ids[0])];
        for (const status of got) statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const c1 = cpuSecondsOf(o.pid);
  const r1 = await o.redisStats();
  const rt1 = await roundTrips(o.rtFile);
  agent.destroy();
  const n = o.ids.length;
  return {
    requests: n,
    statuses,
    gatewayCpuMs: ((c1 - c0) * 1000) / n,
    redisCpuMs: ((r1.cpu - r0.cpu) * 1000) / n,
    // Two INFO commands of the measurement itself.
    redisCommands: (r1.commands - r0.commands - 2) / n,
    roundTrips: (rt1.roundTrips - rt0.roundTrips) / n,
    perSecond: n / seconds,
  };
}

/** First confirmations of `ids`, then the same again (each a repeat). */
export async function confirmationCost(o: ConfirmCostOptions): Promise<{ first: ConfirmCost; repeat: ConfirmCost }> {
  const first = await pass(o);
  const repeat = await pass(o);
  return { first, repeat };
}

/** One line for the phase's output. */
export function describeConfirmCost(label: string, c: ConfirmCost): string {
  const s = Object.entries(c.statuses)
    .map(([k, v]) => `${v} × HTTP ${k}`)
    .join(', ');
  return (
    `${label}: ${c.requests} confirmations (${s}), ${c.perSecond.toFixed(0)}/s; per confirmation gateway CPU ${c.gatewayCpuMs.toFixed(3)} ms, ` +
    `Redis CPU ${c.redisCpuMs.toFixed(3)} ms, Redis commands ${c.redisCommands.toFixed(1)}, round trips ${c.roundTrips.toFixed(1)}`
  );
}
