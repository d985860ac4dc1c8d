/**
 * The Kurir sides of phase 8 (bench/postfix-phase.ts): for each Redis AOF mode and process layout, a redis-server
 * of its own and the gateway processes on it.
 *
 * Layouts (BENCH_POSTFIX_KURIR_SPLIT): `one` process with every role, as `npm start` runs it, and `split`, roles
 * intake+api in one process and worker in another on the same Redis, the layout docs/scale-out.md recommends on two
 * cores. Unset: both; `0`: one only; `1`: split only. The split intake's `dkim.signingThreads` is the product's
 * default (`auto`: one thread on two cores) unless BENCH_POSTFIX_SPLIT_THREADS sets it; BENCH_POSTFIX_WORKER_NICE
 * runs the split worker under `nice -n` that value (a lower CPU priority than intake's).
 */
import { Redis } from 'ioredis';
import { startPrivateRedis, type PrivateRedis } from '../tests/helpers/private-redis.js';
import { cpuSecondsOf, syscallsOf, type ChildOptions, type GatewayChild } from './gateway-child.js';
import type { PostfixInstance } from './postfix-instance.js';

export type AofMode = 'everysec' | 'always';
export type KurirLayout = 'one' | 'split';

/** One side of the comparison: where to submit, and the CPU seconds of its own processes. */
export interface Side {
  name: string;
  port: number;
  /** CPU seconds of the side's own processes, by process. */
  cpu(): Promise<Record<string, number>>;
  /** Kurir: read and write system calls of its gateway processes so far (all threads). */
  syscalls?(): { reads: number; writes: number };
  /** Kurir: forks and AOF rewrites of its redis-server so far, and how long the latest fork stalled it (µs). */
  redisForks?(): Promise<RedisForks>;
}

/** Counters of a redis-server's forks (INFO stats and persistence). */
export interface RedisForks {
  forks: number;
  aofRewrites: number;
  latestForkUsec: number;
}

/** The layouts phase 8 runs, from BENCH_POSTFIX_KURIR_SPLIT. */
export function kurirLayouts(env = process.env.BENCH_POSTFIX_KURIR_SPLIT): KurirLayout[] {
  if (env === '1') return ['split'];
  if (env === '0') return ['one'];
  return ['one', 'split'];
}

const SPLIT_THREADS_ENV = process.env.BENCH_POSTFIX_SPLIT_THREADS;
/** BENCH_POSTFIX_WORKER_NICE: the split worker runs under `nice -n` this (docs/scale-out.md); unset or 0: as started. */
const WORKER_NICE = Number(process.env.BENCH_POSTFIX_WORKER_NICE ?? 0) || undefined;

/** The split intake's signing threads: BENCH_POSTFIX_SPLIT_THREADS, else the configuration's default. */
const SPLIT_THREADS = SPLIT_THREADS_ENV === undefined ? undefined : Number(SPLIT_THREADS_ENV);

/** A started side with what must be stopped with it. */
export interface StartedSide {
  side: Side;
  redis: PrivateRedis;
  client: Redis;
}

/** Starts the redis-server and gateway processes of one Kurir side. */
export async function startKurirSide(o: {
  mode: AofMode;
  layout: KurirLayout;
  delivery: number;
  guard: PostfixInstance['guard'];
  startChild(opts: Omit<ChildOptions, 'dir' | 'prefix' | 'dnsAddress' | 'mxPort'>, prefix: string): Promise<GatewayChild>;
}): Promise<StartedSide> {
  const redis = await startPrivateRedis({ appendfsync: o.mode });
  const client = new Redis(redis.url);
  o.guard.trackPid(Number(/^process_id:(\d+)/m.exec(await client.info('server'))?.[1]));
  o.guard.trackDir(redis.dir);
  const durability = o.mode === 'always' ? 'fsync' : 'standard';
  const redisConfig = { redis: { url: redis.url, durability } };
  const label = `vs-postfix-${o.mode}-${o.layout}`;
  const children =
    o.layout === 'split'
      ? [
          await o.startChild(
            {
              roles: ['intake', 'api'],
              label: `${label}-intake`,
              extraConfig: SPLIT_THREADS === undefined ? redisConfig : { ...redisConfig, dkim: { signingThreads: SPLIT_THREADS } },
            },
            'kurir-bench-pf',
          ),
          await o.startChild(
            {
              roles: ['worker'],
              label: `${label}-worker`,
              deliveryConcurrency: o.delivery,
              waitForHttp: false,
              extraConfig: redisConfig,
              nice: WORKER_NICE,
            },
            'kurir-bench-pf',
          ),
        ]
      : [await o.startChild({ roles: ['intake', 'api', 'worker'], label, deliveryConcurrency: o.delivery, extraConfig: redisConfig }, 'kurir-bench-pf')];
  for (const c of children) o.guard.trackPid(c.pid);
  const redisCpu = async (): Promise<number> => {
    const info = await client.info('cpu');
    const v = (k: string): number => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
    return v('used_cpu_user') + v('used_cpu_sys');
  };
  const redisForks = async (): Promise<RedisForks> => {
    const info = `${await client.info('stats')}\n${await client.info('persistence')}`;
    const v = (k: string): number => Number(new RegExp(`^${k}:([0-9]+)`, 'm').exec(info)?.[1] ?? 0);
    return { forks: v('total_forks'), aofRewrites: v('aof_rewrites'), latestForkUsec: v('latest_fork_usec') };
  };
  const threads = `${SPLIT_THREADS === undefined ? 'default signing threads' : `${SPLIT_THREADS} signing threads`}${WORKER_NICE === undefined ? '' : `, worker nice ${WORKER_NICE}`}`;
  return {
    side: {
      name: `Kurir (AOF ${o.mode}, durability ${durability}${o.layout === 'split' ? `, 2 processes, ${threads}` : ''})`,
      port: children[0].smtpPort,
      cpu: async () => ({ gateway: children.reduce((sum, c) => sum + cpuSecondsOf(c.pid), 0), redis: await redisCpu() }),
      redisForks,
      syscalls: () =>
        children.map((c) => syscallsOf(c.pid)).reduce((a, b) => ({ reads: a.reads + b.reads, writes: a.writes + b.writes }), { reads: 0, writes: 0 }),
    },
    redis,
    client,
  };
}
