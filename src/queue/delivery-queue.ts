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

/** Deterministic job id, so an enqueue repeated after a crash or an idempotent retry adds nothing. */
export function deliveryJobId(messageId: string, domain: string): string {
  return `${messageId}_${domain}`;
}

/** The producer side of the delivery queue. */
export class DeliveryQueue {
  readonly queue: Queue<DeliveryJobData>;

  constructor(connection: Redis, keys: Keys) {
    this.queue = new Queue<DeliveryJobData>(DELIVERY_QUEUE, {
      connection,
      prefix: keys.bullPrefix(),
      skipWaitingForReady: true,
      defaultJobOptions: { removeOnComplete: true, removeOnFail: { age: 7 * 86400 }, attempts: 1 },
    });
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

  /** Job counts by state, for metrics and readiness. */
  async counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized', 'failed');
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
