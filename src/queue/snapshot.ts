import type { Clock } from '../lib/clock.js';
import type { QueueSnapshot } from '../metrics/metrics.js';
import type { ProviderMap } from '../metrics/provider.js';
import { type DeliveryQueue, type JOB_STATES, PRIORITY_RANK, type QueuedJob } from './delivery-queue.js';

const PRIORITIES = Object.keys(PRIORITY_RANK) as Array<keyof typeof PRIORITY_RANK>;
const SAMPLE = 500;

type Counts = Record<keyof typeof PRIORITY_RANK, number>;

/**
 * Splits a state's total over priorities from a sample of its jobs: exact up to SAMPLE jobs, then
 * proportional (largest remainder), so a deep delayed backlog costs one bounded read per scrape.
 */
function split(total: number, sample: QueuedJob[]): Counts {
  const seen: Counts = { verification: 0, normal: 0, bulk: 0 };
  for (const job of sample) seen[job.data.priority] += 1;
  const n = seen.verification + seen.normal + seen.bulk;
  if (n === 0 || n === total) return n === 0 ? { verification: 0, normal: total, bulk: 0 } : seen;
  const out: Counts = { verification: 0, normal: 0, bulk: 0 };
  const rest = PRIORITIES.map((p) => {
    const exact = (seen[p] / n) * total;
    out[p] = Math.floor(exact);
    return { p, frac: exact - out[p] };
  }).sort((a, b) => b.frac - a.frac);
  let left = total - (out.verification + out.normal + out.bulk);
  for (const r of rest) if (left-- > 0) out[r.p] += 1;
  return out;
}

/**
 * Queue depth by state and priority, and the age of the oldest waiting verification job overall and per
 * provider of its recipient domain, for the metrics scrape. Waiting (ready) counts are exact per priority;
 * delayed, active and failed are split by priority from a bounded sample.
 */
export async function queueSnapshot(queue: DeliveryQueue, clock: Clock, providers?: ProviderMap): Promise<QueueSnapshot> {
  const jobs: QueueSnapshot['jobs'] = [];
  const { states, readyByPriority } = await queue.counts();
  for (const p of PRIORITIES) jobs.push({ state: 'waiting', priority: p, count: readyByPriority[p] });
  const samples: Partial<Record<(typeof JOB_STATES)[number], QueuedJob[]>> = {};
  for (const state of ['delayed', 'active', 'failed'] as const) {
    const total = states[state];
    if (total) samples[state] = await queue.sample(state, SAMPLE);
    const byPriority = total ? split(total, samples[state] ?? []) : { verification: 0, normal: 0, bulk: 0 };
    for (const p of PRIORITIES) jobs.push({ state, priority: p, count: byPriority[p] });
  }
  // Verification jobs run first, so the oldest waiting one is among the first ready jobs; delayed ones are sampled.
  const now = clock.now();
  let oldest = 0;
  const byProvider: Record<string, number> = {};
  const waiting = readyByPriority.verification ? await queue.sample('waiting', SAMPLE) : [];
  for (const job of [...waiting, ...(samples.delayed ?? [])]) {
    if (job.data.priority !== 'verification') continue;
    const age = (now - job.timestamp) / 1000;
    oldest = Math.max(oldest, age);
    // One stalled provider must page as that provider, not as "a verification message somewhere".
    if (providers) {
      const provider = providers.byDomain(job.data.domain);
      byProvider[provider] = Math.max(byProvider[provider] ?? 0, age);
    }
  }
  return { jobs, oldestVerificationAgeSeconds: oldest, ...(providers ? { oldestVerificationAgeByProvider: byProvider } : {}) };
}

/**
 * {@link queueSnapshot} over several queues (the main Redis and each `redis.shards` shard): counts summed per state
 * and priority, the oldest verification ages the largest of any. A queue that does not answer is left out (its
 * outage shows in kurir_redis_up and KurirRedisShardDown); when none answers, the first one's error is thrown.
 */
export async function combinedQueueSnapshot(queues: ReadonlyArray<DeliveryQueue>, clock: Clock, providers?: ProviderMap): Promise<QueueSnapshot> {
  const answers = await Promise.allSettled(queues.map((q) => queueSnapshot(q, clock, providers)));
  const snaps = answers.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
  if (!snaps.length) throw (answers[0] as PromiseRejectedResult | undefined)?.reason ?? new Error('no queue to count');
  if (snaps.length === 1) return snaps[0];
  const sums = new Map<string, QueueSnapshot['jobs'][number]>();
  for (const s of snaps) {
    for (const j of s.jobs) {
      const key = `${j.state}\u0000${j.priority}`;
      const had = sums.get(key);
      if (had) had.count += j.count;
      else sums.set(key, { ...j });
    }
  }
  const byProvider: Record<string, number> = {};
  for (const s of snaps) for (const [p, age] of Object.entries(s.oldestVerificationAgeByProvider ?? {})) byProvider[p] = Math.max(byProvider[p] ?? 0, age);
  return {
    jobs: [...sums.values()],
    oldestVerificationAgeSeconds: Math.max(...snaps.map((s) => s.oldestVerificationAgeSeconds)),
    ...(providers ? { oldestVerificationAgeByProvider: byProvider } : {}),
  };
}
