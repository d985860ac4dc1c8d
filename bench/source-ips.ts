/**
 * `npx tsx bench/source-ips.ts`: what choosing a source IP costs a delivery (src/shaping/source-ips.ts), 20 picks
 * in flight against the local Redis: a priority without a pool, a pool address without a warm-up cap (no Redis),
 * an address under an hourly and daily cap (one Lua script), and that pick given back again (a second round trip,
 * as when the provider's gate then says wait). Env BENCH_IPS_SECONDS (per run, default 2), BENCH_IPS_ROUNDS (3).
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config/load.js';
import { systemClock } from '../src/lib/clock.js';
import { createMetrics } from '../src/metrics/metrics.js';
import { SourceIps } from '../src/shaping/source-ips.js';
import { createKeys } from '../src/store/keys.js';
import { dropPrefix } from '../tests/helpers/test-gateway.js';

const SECONDS = Number(process.env.BENCH_IPS_SECONDS ?? 2);
const ROUNDS = Number(process.env.BENCH_IPS_ROUNDS ?? 3);
const IN_FLIGHT = 20;
const prefix = `kurir-bench-ips-${process.pid}`;
const today = new Date().toISOString().slice(0, 10);
const huge = 1_000_000_000;

async function rate(step: () => Promise<unknown>): Promise<number> {
  const end = performance.now() + SECONDS * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        await step();
        done++;
      }
    }),
  );
  return done / SECONDS;
}

async function main(): Promise<void> {
  const redis = new Redis('redis://127.0.0.1:6379');
  const ipPools = {
    pools: {
      plain: [{ address: '127.0.0.2', helo: 'a.example' }],
      warm: [{ address: '127.0.0.3', helo: 'b.example', warmupStart: today, warmup: { perHour: [huge], perDay: [huge] } }],
    },
    priorities: { verification: 'plain', bulk: 'warm' },
  };
  const config = loadConfig({ file: 'config/default.yaml', overrides: { delivery: { ipPools } } });
  const sources = new SourceIps({ redis, keys: createKeys(prefix), config, clock: systemClock, metrics: createMetrics({ defaultMetrics: false }) });
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['no pool (normal)', () => sources.pick('normal', 'example.test')],
    ['pool address, no cap', () => sources.pick('verification', 'example.test')],
    ['capped address (Lua pick)', () => sources.pick('bulk', 'example.test')],
    [
      'capped, then given back',
      async () => {
        const a = await sources.pick('bulk', 'example.test');
        if (a.go) await sources.giveBack(a.reservation);
      },
    ],
  ];
  console.log(`source-IP picks/s, ${IN_FLIGHT} in flight, ${SECONDS} s x ${ROUNDS}; ${cpus().length} × ${cpus()[0]?.model}; load ${loadavg()[0].toFixed(2)}`);
  for (const [name, step] of cases) {
    const runs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) runs.push(await rate(step));
    runs.sort((a, b) => a - b);
    console.log(`  ${name.padEnd(28)} median ${runs[Math.floor(runs.length / 2)].toFixed(0)} (min ${runs[0].toFixed(0)}, max ${runs.at(-1)?.toFixed(0)})`);
  }
  await dropPrefix(prefix);
  await redis.quit();
}

await main();
