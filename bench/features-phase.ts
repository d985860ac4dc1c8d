/**
 * Benchmark phase 7 (issue 10): end-to-end throughput with rspamd sampling, the placement role and
 * confirmations on, against the same set-up with them off, alternating in one run (`npm run bench`).
 *
 * Two gateway children run side by side on their own Redis prefixes, both warmed up, and take turns, each
 * measured phase preceded by an untimed burst on its side (a gateway that sat idle runs its first seconds slower);
 * each round has a pair of its own, started and warmed up anew (BENCH_FEATURES_FRESH=0: one pair for all rounds):
 * - off: roles intake+api+worker, scoring off, no seeds; the load client only submits;
 * - on: roles intake+api+worker+placement, `scoring.rspamd` enabled with the default `sampleEvery` (100) and
 *   `maxPerSecond` (2; BENCH_FEATURES_MAX_PER_SECOND, `none` for no cap) against a real
 *   rspamd (tests/helpers/rspamd.ts), one seed whose IMAP port refuses connections (so the scheduler runs
 *   and tries it; a probe is one message per seed per `intervalSeconds`, 600 s by default, nothing next to
 *   the load), and the load client confirms every second accepted message once it has arrived at the sink,
 *   reporting them every 100 ms in one `POST /v1/confirmations` (the integration docs/placement.md recommends
 *   at volume); `BENCH_FEATURES_CONFIRM_BATCH_MS=0` sends one `POST /v1/messages/:id/confirm` each instead.
 *   msg/s count to the last delivery on both sides; the last confirmations are still waited for (their CPU counts),
 *   and how long after the last delivery the last one was answered is printed.
 * Both sides submit `verification` mail (the class that gets confirmed).
 *
 * Figures that stay meaningful when other work shares the machine: both children use a redis-server of the
 * phase's own (its CPU and `total_commands_processed` are theirs alone, Lua-internal commands included),
 * each child counts its Redis round trips client-side (bench/redis-roundtrips-preload.ts), and the phase
 * prints CPU milliseconds and Redis commands per message for each side, with the difference attributed
 * per confirmation and per scored message, and the DNS queries rspamd sent per scored message. After the
 * rounds, confirmations are measured alone (bench/confirm-cost.ts).
 */
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startPrivateRedis, type PrivateRedis } from '../tests/helpers/private-redis.js';
import { rspamdAvailable, startRspamd } from '../tests/helpers/rspamd.js';
import { freePort, type ChildOptions, type GatewayChild } from './gateway-child.js';
import { type CachingResolver, dnsmasqPath, startCachingResolver } from './caching-resolver.js';
import { confirmationCost, describeConfirmCost } from './confirm-cost.js';
import { togetherRuns } from './features-together.js';
import { counters, diff, privateRedisStats, roundTrips, rspamdCpuSeconds, summarize, type FeaturesRun } from './features-helpers.js';
import { describePairs, overheadVerdict, pairedDrops } from './paired-rounds.js';

import {
  CONFIRM_BATCH_MS,
  CONFIRM_EVERY,
  confirmWhich,
  DEFAULT_CONFIRM_BATCH_MS,
  DEFAULT_MAX_PER_SECOND,
  DEFAULT_SAMPLE_EVERY,
  type FeaturesContext,
  featuresConfig,
  FRESH_PAIRS,
  MAX_PER_SECOND,
  type Mode,
  run,
  SAMPLE_EVERY,
  TOGETHER_RUNS,
} from './features-run.js';

export type { FeaturesContext };

/** The phase's own redis-server while it runs (the watchdog of bench/run.ts stops it). */
let ownRedis: PrivateRedis | undefined;

/** rspamd's caching resolver while the phase runs. */
let ownCache: CachingResolver | undefined;

/** Stops the phase's redis-server and rspamd's caching resolver, if they are running. */
export async function stopFeaturesRedis(): Promise<void> {
  await ownRedis?.destroy();
  ownRedis = undefined;
  await ownCache?.close();
  ownCache = undefined;
}

/** Runs the phase; returns its summary (for the JSON line), or a skip reason. */
export async function featuresPhase(ctx: FeaturesContext): Promise<Record<string, unknown>> {
  const avail = rspamdAvailable();
  if (!avail.ok) {
    console.log(`\n[features overhead] skipped: ${avail.reason}`);
    return { skipped: avail.reason };
  }
  console.log(
    `\n[features overhead] two gateways (roles intake+api+worker, delivery.concurrency 20) on a redis-server of the phase's own, alternately: ` +
      `off = no scoring, no seeds, no confirmations; on = + role placement with one seed (IMAP port refuses), scoring.rspamd ` +
      `sampleEvery ${SAMPLE_EVERY || 'off'} (at most ${MAX_PER_SECOND ?? 'any number of'} a second) against a real rspamd, ${CONFIRM_BATCH_MS > 0 ? `confirmations of ${confirmWhich(CONFIRM_EVERY)} delivered message reported every ${CONFIRM_BATCH_MS} ms in one POST /v1/confirmations` : `POST /v1/messages/:id/confirm for ${confirmWhich(CONFIRM_EVERY)} delivered message`}. ` +
      `Verification mail to dest.test. Placement probes are one message per seed per 10 min: not load. rspamd's CPU counts under "other".`,
  );
  if (
    CONFIRM_EVERY !== 2 ||
    SAMPLE_EVERY !== DEFAULT_SAMPLE_EVERY ||
    CONFIRM_BATCH_MS !== DEFAULT_CONFIRM_BATCH_MS ||
    MAX_PER_SECOND !== DEFAULT_MAX_PER_SECOND
  ) {
    console.log(
      `  EXPERIMENT: not the default on side (confirm every second message in batches every ${DEFAULT_CONFIRM_BATCH_MS} ms, sampleEvery ${DEFAULT_SAMPLE_EVERY}, maxPerSecond ${DEFAULT_MAX_PER_SECOND})`,
    );
  }
  console.log(
    `  load average: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  // rspamd's resolver: a caching dnsmasq in front of the benchmark's DNS, as rspamd asks for in production, unless
  // BENCH_RSPAMD_DNS=direct or dnsmasq is not installed (then every lookup costs the benchmark process an answer).
  const dnsmasq = process.env.BENCH_RSPAMD_DNS === 'direct' ? undefined : dnsmasqPath();
  const cache = (ownCache = dnsmasq ? await startCachingResolver(dnsmasq, ctx.dnsAddress) : undefined);
  const resolver = cache ? "a caching dnsmasq in front of the benchmark's DNS server" : "the benchmark's DNS server, uncached";
  console.log(
    `  rspamd's DNS: ${resolver}${cache || process.env.BENCH_RSPAMD_DNS === 'direct' ? '' : ' (dnsmasq not installed: apt-get install dnsmasq-base)'}`,
  );
  const rspamd = await startRspamd({ dnsAddress: cache?.address ?? ctx.dnsAddress, timeoutMs: 60_000 }).catch(async (err: unknown) => {
    await stopFeaturesRedis();
    throw err;
  });
  // No AOF, like the shared server the other phases use.
  const redis = (ownRedis = await startPrivateRedis({ extraArgs: ['--appendonly', 'no'] }));
  const redisStats = privateRedisStats(redis.url);
  const prefixes: Record<Mode, string> = { off: `${ctx.basePrefix}-foff`, on: `${ctx.basePrefix}-fon` };
  const rtFiles: Record<Mode, string> = { off: join(redis.dir, 'rt-off.json'), on: join(redis.dir, 'rt-on.json') };
  const preload = [pathToFileURL(resolve('bench/redis-roundtrips-preload.ts')).href];
  try {
    const refusedPort = await freePort(); // nothing listens there
    const prof = (mode: Mode) => (ctx.profDir ? { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${join(ctx.profDir, `features-${mode}`)}`] } : {});
    const base = { roles: ['intake', 'api', 'worker'] as ChildOptions['roles'], deliveryConcurrency: 20, preload };
    const own = { redis: { url: redis.url } };
    // A pair of gateways, started and warmed up (JIT, heap, rspamd's first scans), untimed.
    const startPair = async (): Promise<Record<Mode, GatewayChild>> => {
      const pair: Record<Mode, GatewayChild> = {
        off: await ctx.startChild({ ...base, ...prof('off'), label: 'features-off', extraConfig: own, env: { BENCH_RT_FILE: rtFiles.off } }, prefixes.off),
        on: await ctx.startChild(
          {
            ...base,
            ...prof('on'),
            roles: [...base.roles, 'placement'],
            label: 'features-on',
            extraConfig: { ...own, ...featuresConfig(rspamd, refusedPort) },
            env: { BENCH_SEED_PASSWORD: 'bench-seed-password', BENCH_RT_FILE: rtFiles.on },
          },
          prefixes.on,
        ),
      };
      for (const mode of ['off', 'on'] as const) {
        ctx.sink.reset();
        await run(ctx, pair[mode], ctx.initialWarmup, mode === 'on' ? CONFIRM_EVERY : 0);
      }
      return pair;
    };
    let gw = await startPair();
    const per: Record<Mode, FeaturesRun[]> = { off: [], on: [] };
    const first: Mode = Math.random() < 0.5 ? 'off' : 'on';
    const second: Mode = first === 'on' ? 'off' : 'on';
    const rspamdCpu: Record<Mode, number> = { off: 0, on: 0 };
    const watched = ['kurir_rspamd', 'kurir_placement'];
    let lastOnIds: string[] = [];
    for (let round = 1; round <= ctx.rounds; round++) {
      // A process keeps a speed of its own for its life (±5–18 % on the shared benchmark machines): with one pair for
      // every round, each round would carry the same bias and their spread would understate the noise.
      if (FRESH_PAIRS && round > 1) {
        if (ctx.left() > 90_000) {
          await ctx.stopChildren();
          gw = await startPair();
        } else console.log(`  round ${round}: the same two gateways as round ${round - 1} (time budget)`);
      }
      for (const mode of round % 2 ? [first, second] : [second, first]) {
        if (ctx.left() < 30_000) {
          console.log(`  round ${round}, features ${mode}: skipped, time budget spent`);
          continue;
        }
        // The side about to be measured sat idle through the other side's phase, and a gateway's first seconds
        // after idling run slower (every such phase was, in this machine's runs): an untimed burst first.
        ctx.sink.reset();
        await run(ctx, gw[mode], Math.max(50, Math.round(ctx.warmup / 3)), mode === 'on' ? CONFIRM_EVERY : 0);
        ctx.sink.reset();
        const before = await counters(gw[mode].httpPort, watched);
        const rt0 = await roundTrips(rtFiles[mode]);
        const dns0 = ctx.dnsQueries();
        let extra = { scored: 0, confirmed: 0, dnsQueries: 0, roundTrips: 0 };
        const r = await ctx.phase(
          `7. end to end, ${ctx.messages} verification msgs via HTTP c${ctx.clientConcurrency}, delivery.concurrency 20, features ${mode}, round ${round}`,
          mode === 'on' ? 'overhead < 5 %' : undefined,
          async () => {
            const r0 = rspamdCpuSeconds();
            const e = await run(ctx, gw[mode], ctx.messages, mode === 'on' ? CONFIRM_EVERY : 0);
            if (mode === 'on') lastOnIds = e.ids;
            rspamdCpu[mode] += rspamdCpuSeconds() - r0;
            const after = await counters(gw[mode].httpPort, watched);
            const sum = (name: string): number => [...after].filter(([k]) => k.startsWith(name)).reduce((n, [k, v]) => n + v - (before.get(k) ?? 0), 0);
            extra = {
              scored: sum('kurir_rspamd_checks_total'),
              confirmed: sum('kurir_placement_confirmations_total'),
              dnsQueries: ctx.dnsQueries() - dns0,
              roundTrips: (await roundTrips(rtFiles[mode])).roundTrips - rt0.roundTrips,
            };
            if (mode === 'on') e.notes.push(`counters during the phase: ${diff(before, after)}`);
            e.notes.push(
              `rspamd CPU during the phase: ${(rspamdCpuSeconds() - r0).toFixed(2)} s (part of "other"); DNS queries answered by the benchmark: ${extra.dnsQueries}; ` +
                `Redis round trips of the gateway: ${(extra.roundTrips / e.stats.count).toFixed(1)} per message`,
            );
            return e;
          },
          [gw[mode]],
          redisStats,
        );
        per[mode].push({ ...r, ...extra });
      }
    }
    if (!per.off.length || !per.on.length) return { skipped: 'time budget spent' };
    const summary = summarize(per.off, per.on, rspamdCpu.on);
    const { off, on } = summary;
    const load = loadavg()[0];
    // Rounds are pairs (both sides back to back): their spread is the noise the verdict must clear.
    const paired = pairedDrops(off.perRound, on.perRound);
    const verdict = overheadVerdict(summary.throughputOverheadPct, paired, 5);
    console.log(
      `  features overhead: off ${off.perSecond.toFixed(0)} msg/s (${off.perRound.join(', ')}), on ${on.perSecond.toFixed(0)} msg/s (${on.perRound.join(', ')}) → ` +
        `${summary.throughputOverheadPct.toFixed(1)} % fewer msg/s (${describePairs(paired)}; target < 5 %: ${verdict}); first side ${first}; ` +
        `load average ${load.toFixed(2)}${load > 1.5 ? ' (noisy: msg/s say little, the per-message figures below hold)' : ''}`,
    );
    for (const line of summary.lines) console.log(`  ${line}`);
    // The delivered messages of the last `on` round that its client did not confirm, confirmed alone.
    const unconfirmed = lastOnIds.filter((_, i) => CONFIRM_EVERY === 0 || i % CONFIRM_EVERY !== 0).slice(0, 2000);
    const half = Math.ceil(unconfirmed.length / 2);
    const costOf = (ids: string[], batch: number, concurrency: number) =>
      ids.length ? confirmationCost({ port: gw.on.httpPort, pid: gw.on.pid, ids, concurrency, redisStats, rtFile: rtFiles.on, batch }) : undefined;
    // One request each (half of them), then in batches of 50 (the other half): what each way costs per confirmation.
    const alone = await costOf(unconfirmed.slice(0, half), 1, ctx.clientConcurrency);
    const batched = await costOf(unconfirmed.slice(half), 50, 2);
    if (alone) {
      console.log(
        `  ${describeConfirmCost(`confirmations alone, one request each (closed loop c${ctx.clientConcurrency}, on side, nothing else sent)`, alone.first)}`,
      );
      console.log(`  ${describeConfirmCost('the same again (repeats: answered from the first)', alone.repeat)}`);
    }
    if (batched) console.log(`  ${describeConfirmCost('confirmations alone, in batches of 50 (2 clients)', batched.first)}`);
    const together = await togetherRuns(ctx, gw, { runs: TOGETHER_RUNS, confirmEvery: CONFIRM_EVERY, batchMs: CONFIRM_BATCH_MS });
    return {
      confirmEvery: CONFIRM_EVERY,
      sampleEvery: SAMPLE_EVERY,
      rspamdResolver: cache ? 'dnsmasq' : 'direct',
      ...summary,
      lines: undefined,
      paired,
      verdict,
      confirmAlone: alone,
      confirmBatched: batched?.first,
      together,
      first,
      loadAverage: load,
    };
  } finally {
    await ctx.stopChildren();
    await rspamd.close();
    redisStats.close();
    await stopFeaturesRedis(); // the prefixes go with it, and the resolver
  }
}
