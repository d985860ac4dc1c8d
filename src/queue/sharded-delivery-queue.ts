/**
 * The delivery queue's producer over several Redis shards (`redis.shards`): a message's jobs go to the queue
 * on the Redis that holds the message, so each shard's worker finds record, body and job together. The other
 * producer operations (presence, failed jobs, counts, `queue`) are those of the main Redis's queue; the shards'
 * producers are closed by their owner (src/roles/shards.ts).
 */
import type { Redis } from 'ioredis';
import type { Priority } from '../config/schema.js';
import type { Keys } from '../store/keys.js';
import type { ShardRouter } from '../store/shard-router.js';
import type { Queue } from 'bullmq';
import { type DeliveryJobData, DeliveryQueue } from './delivery-queue.js';

/** A {@link DeliveryQueue} whose `enqueue` and `queueFor` go to the message's shard. */
export class ShardedDeliveryQueue extends DeliveryQueue {
  constructor(
    connection: Redis,
    keys: Keys,
    private readonly router: ShardRouter,
    /** The producer of each shard other than the main one, by shard name. */
    private readonly shardQueues: ReadonlyMap<string, DeliveryQueue>,
  ) {
    super(connection, keys);
  }

  override async enqueue(messageId: string, priority: Priority, domains: string[]): Promise<void> {
    const shard = await this.router.locate(messageId);
    const queue = this.shardQueues.get(shard.name);
    if (queue) await queue.enqueue(messageId, priority, domains);
    else await super.enqueue(messageId, priority, domains);
  }

  override async queueFor(messageId: string): Promise<Queue<DeliveryJobData>> {
    const shard = await this.router.locate(messageId);
    return this.shardQueues.get(shard.name)?.queue ?? this.queue;
  }
}
