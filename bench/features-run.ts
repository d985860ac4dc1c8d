/**
 * Phase 7's settings (from the environment, defaulting to the production configuration), the `on` side's
 * configuration, and one measured (or warm-up) run of either side: bench/features-phase.ts drives them.
 */
import { Agent } from 'node:http';
import { configSchema } from '../src/config/schema.js';
import type { Rspamd } from '../tests/helpers/rspamd.js';
import type { ChildOptions, GatewayChild } from './gateway-child.js';
import { collectAccepted, startConfirmer } from './features-confirmer.js';
import type { FeaturesRun } from './features-helpers.js';
import { httpClosedLoop, HttpClient } from './load.js';
import type { Stats } from './loops.js';
import type { Sink } from './sink.js';

export type Mode = 'off' | 'on';

/** For attributing the overhead: every Nth delivered message is confirmed on the `on` side (0: none). */
export const CONFIRM_EVERY = Number(process.env.BENCH_FEATURES_CONFIRM_EVERY ?? 2);
/** The default of CONFIRM_BATCH_MS: a booking system that reports what its applicants confirmed ten times a second. */
export const DEFAULT_CONFIRM_BATCH_MS = 100;
/** > 0: the on side reports its confirmations in batches (POST /v1/confirmations) every this many ms; 0: one request each. */
export const CONFIRM_BATCH_MS = Number(process.env.BENCH_FEATURES_CONFIRM_BATCH_MS ?? DEFAULT_CONFIRM_BATCH_MS);
/** Runs of phase 7b (both sides at once, bench/features-together.ts) after the rounds; 0 skips them. */
export const TOGETHER_RUNS = Number(process.env.BENCH_FEATURES_TOGETHER ?? 2);
/** A fresh, warmed-up pair of gateways for each round of phase 7 (BENCH_FEATURES_FRESH=0: one pair for all). */
export const FRESH_PAIRS = process.env.BENCH_FEATURES_FRESH !== '0';
/** The production default of `scoring.rspamd.sampleEvery`: what the `on` side uses unless told otherwise. */
export const DEFAULT_SAMPLE_EVERY = configSchema.parse({}).scoring.rspamd.sampleEvery;
/** The production default of `scoring.rspamd.maxPerSecond`; BENCH_FEATURES_MAX_PER_SECOND overrides it (`none`: no cap). */
export const DEFAULT_MAX_PER_SECOND = configSchema.parse({}).scoring.rspamd.maxPerSecond;
export const MAX_PER_SECOND =
  process.env.BENCH_FEATURES_MAX_PER_SECOND === undefined
    ? DEFAULT_MAX_PER_SECOND
    : process.env.BENCH_FEATURES_MAX_PER_SECOND === 'none'
      ? null
      : Number(process.env.BENCH_FEATURES_MAX_PER_SECOND);
/** `scoring.rspamd.sampleEvery` on the `on` side (0: scoring off there too). */
export const SAMPLE_EVERY = Number(process.env.BENCH_FEATURES_SAMPLE_EVERY ?? DEFAULT_SAMPLE_EVERY);

/** What the phase needs from bench/run.ts. */
export interface FeaturesContext {
  rounds: number;
  /** Messages per measured phase. */
  messages: number;
  /** Untimed messages per side before a round on a fresh pair of gateways (V8 compiles for thousands of messages: bench/warm-up.ts). */
  initialWarmup: number;
  /** Untimed messages per side before each of its rounds is a third of this. */
  warmup: number;
  clientConcurrency: number;
  deadline: number;
  left(): number;
  sink: Sink;
  dnsAddress: string;
  /** Where the children write CPU profiles (BENCH_CPU_PROF=1), one folder per side; run.ts prints them. */
  profDir?: string;
  /** Queries the loopback DNS server has answered so far (rspamd's lookups go there too). */
  dnsQueries(): number;
  basePrefix: string;
  /** Takes `count` message numbers; returns the first. */
  takeSeq(count: number): number;
  startChild(opts: Omit<ChildOptions, 'dir' | 'prefix' | 'dnsAddress' | 'mxPort'>, prefix: string): Promise<GatewayChild>;
  stopChildren(): Promise<void>;
  /** run.ts's measured phase, on the given children only, Redis CPU and commands from `redisStats`. */
  phase(
    name: string,
    target: string | undefined,
    fn: () => Promise<{ stats: Stats; notes?: string[] }>,
    only: GatewayChild[],
    redisStats: () => Promise<{ cpu: number; commands: number }>,
  ): Promise<Omit<FeaturesRun, 'roundTrips' | 'scored' | 'confirmed' | 'dnsQueries'>>;
}

/** Per-mode configuration merged into the child's. */
export function featuresConfig(rspamd: Rspamd, refusedImapPort: number): Record<string, unknown> {
  return {
    scoring: {
      // refuse: false: the scoring call costs the same; the benchmark's Lorem ipsum must not be refused.
      rspamd: {
        enabled: SAMPLE_EVERY > 0,
        url: rspamd.url,
        sampleEvery: Math.max(1, SAMPLE_EVERY),
        maxPerSecond: MAX_PER_SECOND,
        sendingIp: '192.0.2.10',
        refuse: false,
      },
    },
    placement: {
      seeds: [
        {
          name: 'bench-seed',
          provider: 'other',
          address: 'seed@seed.test',
          imap: { host: '127.0.0.1', port: refusedImapPort, tls: false, verifyTls: false },
          auth: { method: 'password', passwordEnv: 'BENCH_SEED_PASSWORD' },
        },
      ],
    },
  };
}

/**
 * Submits `n` verification messages (closed loop) and, when `confirmEvery` > 0, confirms every `confirmEvery`-th
 * accepted one once it has reached the sink (alone, or batched). Time: first submit → last delivery or confirmation.
 */
export async function run(ctx: FeaturesContext, g: GatewayChild, n: number, confirmEvery: number): Promise<{ stats: Stats; notes: string[]; ids: string[] }> {
  const { sink } = ctx;
  const client = new HttpClient(g.httpPort, ctx.clientConcurrency);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const t0 = performance.now();
  const accepted = collectAccepted(client);
  let submitting = true;
  const confirmer = startConfirmer({
    sink,
    agent,
    port: g.httpPort,
    accepted,
    every: confirmEvery,
    batchMs: CONFIRM_BATCH_MS,
    submitting: () => submitting,
  });
  const sub = await httpClosedLoop(client, n, ctx.clientConcurrency, ctx.takeSeq(n), ctx.deadline, { priority: 'verification' });
  submitting = false;
  const all = await sink.waitForUnique(sub.ids.length, Math.min(90_000, ctx.left() - 20_000));
  await confirmer.done;
  // Mail throughput counts to the last delivery, on both sides alike. The confirmer reports every batchMs, so its
  // last batch can be answered up to that long after the last delivery (5–14 ms measured): a wait the off side
  // does not have. Its CPU stays in the phase's figures.
  const lastDelivery = all ? sink.lastUniqueAt : performance.now();
  const seconds = (lastDelivery - t0) / 1000;
  client.close();
  agent.destroy();
  const notes = [
    `submitted ${sub.stats.count} (accept p50 ${sub.stats.p50.toFixed(1)} ms, p99 ${sub.stats.p99.toFixed(1)} ms, ${sub.stats.errors} errors); ` +
      `${all ? 'all' : 'NOT all'} delivered (${sink.unique} distinct, ${sink.received - sink.unique} duplicates)`,
  ];
  if (confirmEvery > 0) {
    const tail = confirmer.lastAnswerAt() - lastDelivery;
    notes.push(
      `confirmations: ${[...confirmer.statuses].map(([s, c]) => `${c} × HTTP ${s}`).join(', ') || 'none'}; the last answered ${tail.toFixed(0)} ms after the last delivery` +
        (tail > 3 * CONFIRM_BATCH_MS + 200 ? ' (more than a few batch intervals: the gateway lagged behind the confirmations)' : ''),
    );
  }
  if (sub.stats.errors) notes.push(`last submit error: ${client.lastError}`);
  return { stats: { ...sub.stats, count: sink.unique, seconds, perSecond: sink.unique / seconds }, notes, ids: accepted };
}

export function confirmWhich(n: number): string {
  return n === 0 ? 'no' : n === 1 ? 'every' : n === 2 ? 'every second' : `every ${n}th`;
}
