import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Priority } from '../config/schema.js';
import type { Keys } from '../store/keys.js';

export const DELIVERY_QUEUE = 'delivery';

/** A delivery job: ids only, never bodies or secrets. One job per message and destination domain. */
export interface DeliveryJobData {
  messageId: string;
  domain: string;
  priority: Priority;
}

/** BullMQ priority: lower runs first, so verification mail overtakes everything else. */
export const PRIORITY_RANK: Record<Priority, number> = { verification: 1, normal: 5, bulk: 10 };

/**
 * A job that throws (Redis not answering, a timeout, a bug) is retried with this back-off, never parked:
 * whether a message is final is decided only by its own state machine (delivered, bounced, expired,
 * cancelled), and a message whose TTL passes while its job keeps failing is expired by the next run.
 */
export const INFRA_BACKOFF = 'infrastructure';
const INFRA_ATTEMPTS = 1_000_000;
const INFRA_BACKOFF_MAX_MS = 60_000;

/** Delay before the `attemptsMade`th retry of a job that threw: 1 s doubling to 60 s, with ±20 % jitter. */
export function infrastructureBackoff(attemptsMade: number): number {
  const base = Math.min(INFRA_BACKOFF_MAX_MS, 1000 * 2 ** Math.max(0, Math.min(attemptsMade - 1, 16)));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** What the queue holds for one delivery job: live (waiting, delayed, active…), failed, or nothing. */
export type JobPresence = 'live' | 'failed' | 'missing';

/** Deterministic job id, so an enqueue repeated after a crash or an idempotent retry adds nothing. */
export function deliveryJobId(messageId: string, domain: string): string {
  return `${messageId}_${domain}`;
}

/** The producer side of the delivery queue. */
export class DeliveryQueue {
  readonly queue: Queue<DeliveryJobData>;

  constructor(
    private readonly connection: Redis,
    keys: Keys,
  ) {
    this.queue = new Queue<DeliveryJobData>(DELIVERY_QUEUE, {
      connection,
      prefix: keys.bullPrefix(),
      skipWaitingForReady: true,
      defaultJobOptions: {
        removeOnComplete: true,
        removeOnFail: { age: 7 * 86400 },
        attempts: INFRA_ATTEMPTS,
        backoff: { type: INFRA_BACKOFF },
      },
    });
    // Connection errors are seen (and logged, and in kurir_redis_up) on the gateway's own connections;
    // without a listener BullMQ prints each one to stderr.
    this.queue.on('error', () => undefined);
  }

  /** Adds one job per destination domain of a message. */
  async enqueue(messageId: string, priority: Priority, domains: string[]): Promise<void> {
    await this.queue.addBulk(
      domains.map((domain) => ({
        name: 'deliver',
        data: { messageId, domain, priority },
        opts: { jobId: deliveryJobId(messageId, domain), priority: PRIORITY_RANK[priority] },
      })),
    );
  }

  /** The BullMQ queue holding a message's jobs (with `redis.shards`, the one on the message's shard). */
  async queueFor(_messageId: string): Promise<Queue<DeliveryJobData>> {
    return this.queue;
  }

  /** Whether each job exists, and whether it sits in the failed set, in one round trip. */
  async presence(jobIds: string[]): Promise<JobPresence[]> {
    if (!jobIds.length) return [];
    const tx = this.connection.pipeline();
    for (const id of jobIds) tx.exists(this.queue.toKey(id)).zscore(this.queue.keys.failed, id);
    const res = (await tx.exec()) ?? [];
    return jobIds.map((_, i) => {
      const [errExists, exists] = res[2 * i] ?? [];
      const [errFailed, failedScore] = res[2 * i + 1] ?? [];
      if (errExists || errFailed) throw errExists ?? errFailed;
      if (failedScore !== null && failedScore !== undefined) return 'failed';
      return exists ? 'live' : 'missing';
    });
  }

  /** Ids of up to `limit` jobs in the failed set, oldest first. */
  async failedIds(limit: number): Promise<string[]> {
    return this.connection.zrange(this.queue.keys.failed, '0', String(limit - 1));
  }

  /** Moves a failed job back to wait (its priority kept, its failure count reset). False if it is not failed. */
  async retryFailed(jobId: string): Promise<boolean> {
    const job = await this.queue.getJob(jobId);
    if (!job) return false;
    return job.retry('failed', { resetAttemptsMade: true }).then(
      () => true,
      () => false,
    );
  }

  /** Removes a job that is not running (a failed job of a message that is final). */
  async removeJob(jobId: string): Promise<void> {
    await this.queue.remove(jobId);
  }

  /** Job counts by state, for metrics and readiness. */
  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'failed');
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
