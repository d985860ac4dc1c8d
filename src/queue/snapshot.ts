import type { Queue } from 'bullmq';
import type { Clock } from '../lib/clock.js';
import type { QueueSnapshot } from '../metrics/metrics.js';
import { PRIORITY_RANK, type DeliveryJobData } from './delivery-queue.js';

const RANK_TO_PRIORITY = new Map(Object.entries(PRIORITY_RANK).map(([p, r]) => [r, p as keyof typeof PRIORITY_RANK]));

/**
 * Queue depth by state and priority, and the age of the oldest waiting verification job, for the metrics
 * scrape. Counts come from BullMQ's per-priority counters; the scan is bounded to the first jobs.
 */
export async function queueSnapshot(queue: Queue<DeliveryJobData>, clock: Clock): Promise<QueueSnapshot> {
  const jobs: QueueSnapshot['jobs'] = [];
  const ranks = [...RANK_TO_PRIORITY.keys()];
  const prioritized = await queue.getCountsPerPriority(ranks);
  for (const [rank, count] of Object.entries(prioritized)) {
    jobs.push({ state: 'prioritized', priority: RANK_TO_PRIORITY.get(Number(rank)) ?? 'normal', count });
  }
  const counts = await queue.getJobCounts('waiting', 'delayed', 'active');
  for (const state of ['waiting', 'delayed', 'active'] as const) {
    jobs.push({ state, priority: 'normal', count: counts[state] ?? 0 });
  }
  const now = clock.now();
  let oldest = 0;
  const waiting = await queue.getJobs(['prioritized', 'waiting', 'delayed'], 0, 200, true);
  for (const job of waiting) {
    if (job?.data.priority === 'verification') oldest = Math.max(oldest, (now - job.timestamp) / 1000);
  }
  return { jobs, oldestVerificationAgeSeconds: oldest };
}
