/**
 * Phase 7b (issue 10): the features' cost measured with both sides at once. The alternating rounds of phase 7
 * compare two stretches of time, and on a shared two-core machine a slow stretch (another tenant, steal time)
 * lands on one side and moves a round by ±10 %, more than the effect measured. Here the off and on gateways take
 * the same load at the same moment, so whatever slows the machine slows both; each side's rate is counted over
 * the same window: from the common start until the first side has delivered all of its messages.
 */
import { Agent } from 'node:http';
import { collectAccepted, startConfirmer } from './features-confirmer.js';
import { cpuSecondsOf, type GatewayChild } from './gateway-child.js';
import { HttpClient, httpClosedLoop } from './load.js';
import { describePairs, overheadVerdict, type PairedDrops, pairedDrops } from './paired-rounds.js';
import type { Sink } from './sink.js';

export interface TogetherRun {
  /** Messages delivered within the window, per side. */
  delivered: { off: number; on: number };
  /** The window (s): common start → the first side's last delivery. */
  seconds: number;
  perSecond: { off: number; on: number };
  /** 1 − on/off, in %. */
  dropPct: number;
  errors: number;
  /** Each gateway's CPU (ms) per message it delivered, over the whole run (both sides deliver all of theirs). */
  gatewayCpuMsPerMessage: { off: number; on: number };
}

interface Side {
  ids: string[];
  lastArrival: number;
  errors: number;
}

/** Waits until every id has reached the sink (or `ms` pass); returns the last arrival time (performance.now()). */
async function lastArrivalOf(sink: Sink, ids: readonly string[], ms: number): Promise<number> {
  const end = performance.now() + ms;
  for (;;) {
    let last = 0;
    let missing = false;
    for (const id of ids) {
      const at = sink.arrivedAt(id);
      if (at === undefined) {
        missing = true;
        break;
      }
      if (at > last) last = at;
    }
    if (!missing) return last;
    if (performance.now() > end) return performance.now();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Submits `n` verification messages to each side at once (closed loop, `concurrency` clients each), the on side
 * also confirming every `confirmEvery`-th in batches every `batchMs`; returns each side's delivered rate in the window.
 */
export async function runTogether(o: {
  sink: Sink;
  gw: { off: GatewayChild; on: GatewayChild };
  n: number;
  concurrency: number;
  takeSeq: (count: number) => number;
  deadline: number;
  confirmEvery: number;
  batchMs: number;
}): Promise<TogetherRun> {
  o.sink.reset();
  const cpu0 = { off: cpuSecondsOf(o.gw.off.pid), on: cpuSecondsOf(o.gw.on.pid) };
  const t0 = performance.now();
  const side = async (mode: 'off' | 'on'): Promise<Side> => {
    const g = o.gw[mode];
    const client = new HttpClient(g.httpPort, o.concurrency);
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const accepted = collectAccepted(client);
    let submitting = true;
    const confirmer = startConfirmer({
      sink: o.sink,
      agent,
      port: g.httpPort,
      accepted,
      every: mode === 'on' ? o.confirmEvery : 0,
      batchMs: o.batchMs,
      submitting: () => submitting,
    });
    try {
      const sub = await httpClosedLoop(client, o.n, o.concurrency, o.takeSeq(o.n), o.deadline, { priority: 'verification' });
      submitting = false;
      const lastArrival = await lastArrivalOf(o.sink, sub.ids, 90_000);
      await confirmer.done;
      return { ids: sub.ids, lastArrival, errors: sub.stats.errors };
    } finally {
      client.close();
      agent.destroy();
    }
  };
  const [off, on] = await Promise.all([side('off'), side('on')]);
  const cpuMs = (mode: 'off' | 'on', s: Side): number => ((cpuSecondsOf(o.gw[mode].pid) - cpu0[mode]) * 1000) / Math.max(1, s.ids.length);
  const gatewayCpuMsPerMessage = { off: cpuMs('off', off), on: cpuMs('on', on) };
  const windowEnd = Math.min(off.lastArrival, on.lastArrival);
  const seconds = (windowEnd - t0) / 1000;
  const within = (s: Side): number => s.ids.filter((id) => (o.sink.arrivedAt(id) ?? Number.POSITIVE_INFINITY) <= windowEnd).length;
  const delivered = { off: within(off), on: within(on) };
  const perSecond = { off: delivered.off / seconds, on: delivered.on / seconds };
  return { delivered, seconds, perSecond, dropPct: (1 - perSecond.on / perSecond.off) * 100, errors: off.errors + on.errors, gatewayCpuMsPerMessage };
}

/** Phase 7b: `o.runs` runs with both sides at once; prints each and the pooled drop. */
export async function togetherRuns(
  ctx: { messages: number; clientConcurrency: number; left(): number; sink: Sink; takeSeq(count: number): number; deadline: number },
  gw: { off: GatewayChild; on: GatewayChild },
  o: { runs: number; confirmEvery: number; batchMs: number },
): Promise<{ runs: TogetherRun[]; dropPct: number; paired: PairedDrops; verdict: string } | undefined> {
  if (o.runs <= 0) return undefined;
  console.log(
    `  7b. both sides at once: ${ctx.messages} verification messages to each (HTTP c${ctx.clientConcurrency} each), counted from the common start until the first side has all of its messages delivered`,
  );
  const runs: TogetherRun[] = [];
  for (let i = 1; i <= o.runs; i++) {
    if (ctx.left() < 40_000) {
      console.log(`    run ${i}: skipped, time budget spent`);
      continue;
    }
    const r = await runTogether({
      sink: ctx.sink,
      gw,
      n: ctx.messages,
      concurrency: ctx.clientConcurrency,
      takeSeq: ctx.takeSeq,
      deadline: ctx.deadline,
      confirmEvery: o.confirmEvery,
      batchMs: o.batchMs,
    });
    runs.push(r);
    console.log(
      `    run ${i}: off ${r.perSecond.off.toFixed(0)} msg/s, on ${r.perSecond.on.toFixed(0)} msg/s over ${r.seconds.toFixed(1)} s ` +
        `(${r.delivered.off} and ${r.delivered.on} delivered; ${r.errors} submit errors) → ${r.dropPct.toFixed(1)} % fewer msg/s; ` +
        `gateway CPU per message off ${r.gatewayCpuMsPerMessage.off.toFixed(2)} ms, on ${r.gatewayCpuMsPerMessage.on.toFixed(2)} ms`,
    );
  }
  if (!runs.length) return undefined;
  const sum = (f: (r: TogetherRun) => number): number => runs.reduce((a, r) => a + f(r), 0);
  const dropPct = (1 - sum((r) => r.delivered.on) / sum((r) => r.delivered.off)) * 100;
  // Each run is a pair; with their spread, as phase 7's rounds (bench/paired-rounds.ts).
  const paired = pairedDrops(
    runs.map((r) => r.perSecond.off),
    runs.map((r) => r.perSecond.on),
  );
  const verdict = overheadVerdict(dropPct, paired, 5);
  console.log(
    `    both sides at once, all runs: ${dropPct.toFixed(1)} % fewer msg/s with the features on (${describePairs(paired)}; target < 5 %: ${verdict})`,
  );
  return { runs, dropPct, paired, verdict };
}
