/**
 * Benchmark phase 7 (issue 10): end-to-end throughput with rspamd sampling, the placement role and
 * confirmations on, against the same set-up with them off, alternating in one run (`npm run bench`).
 *
 * Two gateway children run side by side on their own Redis prefixes, both warmed up, and take turns:
 * - off: roles intake+api+worker, scoring off, no seeds; the load client only submits;
 * - on: roles intake+api+worker+placement, `scoring.rspamd` enabled with `sampleEvery: 10` against a real
 *   rspamd (tests/helpers/rspamd.ts), one seed whose IMAP port refuses connections (so the scheduler runs
 *   and tries it; a probe is one message per seed per `intervalSeconds`, 600 s by default, nothing next to
 *   the load), and the load client POSTs `/v1/messages/:id/confirm` for every second accepted message as
 *   soon as it has arrived at the sink. The phase's time runs until the last delivery and the last
 *   confirmation answer, whichever is later.
 * Both sides submit `verification` mail (the class that gets confirmed).
 */
import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import { rspamdAvailable, startRspamd, type Rspamd } from '../tests/helpers/rspamd.js';
import { freePort, type ChildOptions, type GatewayChild } from './gateway-child.js';
import { confirm, counters, diff, rspamdCpuSeconds } from './features-helpers.js';
import { httpClosedLoop, HttpClient, type Stats } from './load.js';
import type { Sink } from './sink.js';

type Mode = 'off' | 'on';

/** For attributing the overhead: every Nth delivered message is confirmed on the `on` side (0: none). */
const CONFIRM_EVERY = Number(process.env.BENCH_FEATURES_CONFIRM_EVERY ?? 2);
/** `scoring.rspamd.sampleEvery` on the `on` side (0: scoring off there too). */
const SAMPLE_EVERY = Number(process.env.BENCH_FEATURES_SAMPLE_EVERY ?? 10);

/** What the phase needs from bench/run.ts. */
export interface FeaturesContext {
  rounds: number;
  /** Messages per measured phase and per side's warm-up. */
  messages: number;
  warmup: number;
  clientConcurrency: number;
  deadline: number;
  left(): number;
  sink: Sink;
  dnsAddress: string;
  basePrefix: string;
  /** Takes `count` message numbers; returns the first. */
  takeSeq(count: number): number;
  startChild(opts: Omit<ChildOptions, 'dir' | 'prefix' | 'dnsAddress' | 'mxPort'>, prefix: string): Promise<GatewayChild>;
  stopChildren(): Promise<void>;
  dropPrefix(prefix: string): Promise<void>;
  /** run.ts's measured phase, on the given children only. */
  phase(
    name: string,
    target: string | undefined,
    fn: () => Promise<{ stats: Stats; notes?: string[] }>,
    only: GatewayChild[],
  ): Promise<{ stats: Stats; cpu: { gateway: number; redis: number; bench: number; other: number; wall: number }; redisCommands: number }>;
}

/** Per-mode configuration merged into the child's. */
function featuresConfig(rspamd: Rspamd, refusedImapPort: number): Record<string, unknown> {
  return {
    scoring: {
      // refuse: false: the scoring call costs the same; the benchmark's Lorem ipsum must not be refused.
      rspamd: { enabled: SAMPLE_EVERY > 0, url: rspamd.url, sampleEvery: Math.max(1, SAMPLE_EVERY), sendingIp: '192.0.2.10', refuse: false },
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
 * Submits `n` verification messages (closed loop) and, when `confirmEvery` > 0, confirms every
 * `confirmEvery`-th accepted one once it has reached the sink. Time: first submit → last delivery or last
 * confirmation answer.
 */
async function run(ctx: FeaturesContext, g: GatewayChild, n: number, confirmEvery: number): Promise<{ stats: Stats; notes: string[] }> {
  const { sink } = ctx;
  const client = new HttpClient(g.httpPort, ctx.clientConcurrency);
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const t0 = performance.now();
  const accepted: string[] = [];
  let lastConfirmAt = t0;
  const statuses = new Map<number, number>();
  let submitting = true;
  const confirmer = async (): Promise<void> => {
    let next = 0;
    for (;;) {
      const id = accepted[next];
      if (id === undefined || sink.arrivedAt(id) === undefined) {
        if (!submitting && id === undefined) return;
        if (performance.now() - t0 > 90_000) return;
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      next += confirmEvery;
      const status = await confirm(agent, g.httpPort, id);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      lastConfirmAt = performance.now();
    }
  };
  // The closed loop hands out ids only at its end: collect them as they come by wrapping submit.
  const submit = client.submit.bind(client);
  client.submit = async (body: string) => {
    const r = await submit(body);
    if (r.status === 202 && r.id) accepted.push(r.id);
    return r;
  };
  const confirming = confirmEvery > 0 ? confirmer() : Promise.resolve();
  const sub = await httpClosedLoop(client, n, ctx.clientConcurrency, ctx.takeSeq(n), ctx.deadline, { priority: 'verification' });
  submitting = false;
  const all = await sink.waitForUnique(sub.ids.length, Math.min(90_000, ctx.left() - 20_000));
  await confirming;
  const end = Math.max(all ? sink.lastUniqueAt : performance.now(), confirmEvery > 0 ? lastConfirmAt : 0);
  const seconds = (end - t0) / 1000;
  client.close();
  agent.destroy();
  const notes = [
    `submitted ${sub.stats.count} (accept p50 ${sub.stats.p50.toFixed(1)} ms, p99 ${sub.stats.p99.toFixed(1)} ms, ${sub.stats.errors} errors); ` +
      `${all ? 'all' : 'NOT all'} delivered (${sink.unique} distinct, ${sink.received - sink.unique} duplicates)`,
  ];
  if (confirmEvery > 0) notes.push(`confirmations: ${[...statuses].map(([s, c]) => `${c} × HTTP ${s}`).join(', ') || 'none'}`);
  if (sub.stats.errors) notes.push(`last submit error: ${client.lastError}`);
  return { stats: { ...sub.stats, count: sink.unique, seconds, perSecond: sink.unique / seconds }, notes };
}

/** Runs the phase; returns its summary (for the JSON line), or a skip reason. */
export async function featuresPhase(ctx: FeaturesContext): Promise<Record<string, unknown>> {
  const avail = rspamdAvailable();
  if (!avail.ok) {
    console.log(`\n[features overhead] skipped: ${avail.reason}`);
    return { skipped: avail.reason };
  }
  console.log(
    `\n[features overhead] two gateways (roles intake+api+worker, delivery.concurrency 20), alternately: off = no scoring, no seeds, ` +
      `no confirmations; on = + role placement with one seed (IMAP port refuses), scoring.rspamd sampleEvery 10 against a real rspamd, ` +
      `POST /v1/messages/:id/confirm for every second delivered message. Verification mail to dest.test. ` +
      `Placement probes are one message per seed per 10 min: not load. rspamd's CPU counts under "other".`,
  );
  if (CONFIRM_EVERY !== 2 || SAMPLE_EVERY !== 10) {
    console.log(`  EXPERIMENT: on = confirm every ${CONFIRM_EVERY || 'no'} message(s), rspamd sampleEvery ${SAMPLE_EVERY || 'off'}`);
  }
  console.log(
    `  load average: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const rspamd = await startRspamd({ dnsAddress: ctx.dnsAddress, timeoutMs: 60_000 });
  const prefixes: Record<Mode, string> = { off: `${ctx.basePrefix}-foff`, on: `${ctx.basePrefix}-fon` };
  try {
    const refusedPort = await freePort(); // nothing listens there
    const base = { roles: ['intake', 'api', 'worker'] as ChildOptions['roles'], deliveryConcurrency: 20 };
    const gw: Record<Mode, GatewayChild> = {
      off: await ctx.startChild({ ...base, label: 'features-off' }, prefixes.off),
      on: await ctx.startChild(
        {
          ...base,
          roles: [...base.roles, 'placement'],
          label: 'features-on',
          extraConfig: featuresConfig(rspamd, refusedPort),
          env: { BENCH_SEED_PASSWORD: 'bench-seed-password' },
        },
        prefixes.on,
      ),
    };
    // Warm-up per side (JIT, heap, rspamd's first scans), untimed.
    for (const mode of ['off', 'on'] as const) {
      ctx.sink.reset();
      await run(ctx, gw[mode], ctx.warmup, mode === 'on' ? CONFIRM_EVERY : 0);
    }
    const per: Record<
      Mode,
      Array<{ stats: Stats; cpu: { gateway: number; redis: number; bench: number; other: number; wall: number }; redisCommands: number }>
    > = {
      off: [],
      on: [],
    };
    const first: Mode = Math.random() < 0.5 ? 'off' : 'on';
    const second: Mode = first === 'on' ? 'off' : 'on';
    const rspamdCpu: Record<Mode, number> = { off: 0, on: 0 };
    const watched = ['kurir_scoring', 'kurir_confirmations', 'kurir_placement'];
    for (let round = 1; round <= ctx.rounds; round++) {
      for (const mode of round % 2 ? [first, second] : [second, first]) {
        if (ctx.left() < 30_000) {
          console.log(`  round ${round}, features ${mode}: skipped, time budget spent`);
          continue;
        }
        ctx.sink.reset();
        const before = await counters(gw[mode].httpPort, watched);
        const r = await ctx.phase(
          `7. end to end, ${ctx.messages} verification msgs via HTTP c${ctx.clientConcurrency}, delivery.concurrency 20, features ${mode}, round ${round}`,
          mode === 'on' ? 'overhead < 5 %' : undefined,
          async () => {
            const r0 = rspamdCpuSeconds();
            const e = await run(ctx, gw[mode], ctx.messages, mode === 'on' ? CONFIRM_EVERY : 0);
            rspamdCpu[mode] += rspamdCpuSeconds() - r0;
            if (mode === 'on') e.notes.push(`counters during the phase: ${diff(before, await counters(gw[mode].httpPort, watched))}`);
            e.notes.push(`rspamd CPU during the phase: ${(rspamdCpuSeconds() - r0).toFixed(2)} s (part of "other")`);
            return e;
          },
          [gw[mode]],
        );
        per[mode].push(r);
      }
    }
    if (!per.off.length || !per.on.length) return { skipped: 'time budget spent' };
    const agg = (rs: typeof per.off) => {
      const count = rs.reduce((n, r) => n + r.stats.count, 0);
      const seconds = rs.reduce((n, r) => n + r.stats.seconds, 0);
      return {
        phases: rs.length,
        perSecond: count / seconds,
        perRound: rs.map((r) => Math.round(r.stats.perSecond)),
        gatewayCpuMsPerMsg: (rs.reduce((n, r) => n + r.cpu.gateway, 0) * 1000) / count,
        redisCpuMsPerMsg: (rs.reduce((n, r) => n + r.cpu.redis, 0) * 1000) / count,
        otherCpuMsPerMsg: (rs.reduce((n, r) => n + r.cpu.other, 0) * 1000) / count,
        benchCpuMsPerMsg: (rs.reduce((n, r) => n + r.cpu.bench, 0) * 1000) / count,
        redisCommandsPerMsg: rs.reduce((n, r) => n + r.redisCommands, 0) / count,
        count,
      };
    };
    const off = agg(per.off);
    const on = agg(per.on);
    const overheadPct = (1 - on.perSecond / off.perSecond) * 100;
    const rspamdMsPerMsg = (rspamdCpu.on * 1000) / on.count;
    const kurirCpuPct = ((on.gatewayCpuMsPerMsg + on.redisCpuMsPerMsg) / (off.gatewayCpuMsPerMsg + off.redisCpuMsPerMsg) - 1) * 100;
    const load = loadavg()[0];
    console.log(
      `  features overhead: off ${off.perSecond.toFixed(0)} msg/s (${off.perRound.join(', ')}), on ${on.perSecond.toFixed(0)} msg/s (${on.perRound.join(', ')}) → ` +
        `${overheadPct.toFixed(1)} % fewer msg/s (target < 5 %: ${overheadPct < 5 ? 'met' : 'NOT met'}); first side ${first}; load average ${load.toFixed(2)}${load > 1.5 ? ' (noisy)' : ''}`,
    );
    console.log(
      `  per message: gateway CPU ${off.gatewayCpuMsPerMsg.toFixed(2)} → ${on.gatewayCpuMsPerMsg.toFixed(2)} ms, Redis CPU ${off.redisCpuMsPerMsg.toFixed(2)} → ` +
        `${on.redisCpuMsPerMsg.toFixed(2)} ms, other ${off.otherCpuMsPerMsg.toFixed(2)} → ${on.otherCpuMsPerMsg.toFixed(2)} ms ` +
        `(of which rspamd ${rspamdMsPerMsg.toFixed(2)} ms on), ` +
        `benchmark process (load client, sink, and the DNS server that also answers rspamd's lookups) ${off.benchCpuMsPerMsg.toFixed(2)} → ${on.benchCpuMsPerMsg.toFixed(2)} ms, ` +
        `Redis commands ${off.redisCommandsPerMsg.toFixed(1)} → ${on.redisCommandsPerMsg.toFixed(1)}; Kurir's own (gateway+Redis) CPU per message ${kurirCpuPct >= 0 ? '+' : ''}${kurirCpuPct.toFixed(1)} %`,
    );
    return {
      confirmEvery: CONFIRM_EVERY,
      sampleEvery: SAMPLE_EVERY,
      off,
      on,
      rspamdCpuMsPerMsg: rspamdMsPerMsg,
      kurirCpuOverheadPct: kurirCpuPct,
      throughputOverheadPct: overheadPct,
      first,
      loadAverage: load,
    };
  } finally {
    await ctx.stopChildren();
    await rspamd.close();
    for (const p of Object.values(prefixes)) await ctx.dropPrefix(p);
  }
}
