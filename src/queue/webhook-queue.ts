import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Keys } from '../store/keys.js';

export const WEBHOOK_QUEUE = 'webhooks';

/**
 * A webhook job: ids only. The payload is rebuilt from the message record and its timeline event at
 * send time; the URL and secret come from config. Never a body, address list or secret in Redis.
 */
export interface WebhookJobData {
  messageId: string;
  /** Position of the event in the message's timeline. */
  eventIndex: number;
  /** Name of the API key the message belongs to. */
  owner: string;
}

/** Deterministic job id (one per timeline event), so a repeated enqueue adds nothing. */
export function webhookJobId(messageId: string, eventIndex: number): string {
  return `${messageId}_${eventIndex}`;
}

export interface WebhookQueueOptions {
  maxAttempts: number;
  backoffSeconds: number;
}

/** The producer side of the webhook queue: retries with exponential backoff are BullMQ's. */
export class WebhookQueue {
  readonly queue: Queue<WebhookJobData>;

  constructor(connection: Redis, keys: Keys, opts: WebhookQueueOptions) {
    this.queue = new Queue<WebhookJobData>(WEBHOOK_QUEUE, {
      connection,
      prefix: keys.bullPrefix(),
      skipWaitingForReady: true,
      defaultJobOptions: {
        attempts: opts.maxAttempts,
        backoff: { type: 'exponential', delay: Math.round(opts.backoffSeconds * 1000) },
        removeOnComplete: true,
        removeOnFail: { age: 7 * 86400 },
      },
    });
    // As for the delivery queue: connection errors are seen on the gateway's own connections; without a
    // listener BullMQ prints each one to stderr.
    this.queue.on('error', () => undefined);
  }

  /** Adds one job per event of a message. */
  async enqueue(messageId: string, owner: string, eventIndexes: number[]): Promise<void> {
    if (!eventIndexes.length) return;
    await this.queue.addBulk(
      eventIndexes.map((eventIndex) => ({ name: 'webhook', data: { messageId, eventIndex, owner }, opts: { jobId: webhookJobId(messageId, eventIndex) } })),
    );
  }

  /** Closes the BullMQ queue; the Redis connection it was given stays open (its owner closes it). */
  async close(): Promise<void> {
    await this.queue.close();
  }
}
