/**
 * The delivery queue's producer over several Redis shards (`redis.shards`): a message's jobs go to the queue
 * on the Redis that holds the message, so each shard's worker finds record, body and job together. The other
 * producer operations (presence, failed jobs, counts) are those of the main Redis's queue; the shards'
 * producers are closed by their owner (src/roles/shards.ts).
 */
import type { Redis } from 'ioredis';
import type { Priority } from '../config/schema.js';
import type { Keys } from '../store/keys.js';
import type { ShardRouter } from '../store/shard-router.js';
import { DeliveryQueue } from './delivery-queue.js';

/** A {@link DeliveryQueue} whose `enqueue`, `queueFor` and `queuesFor` go to the message's shard. */
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

  /** {@link DeliveryQueue.enqueue} on the queue of the shard holding the message; throws as {@link queueFor} does. */
  override async enqueue(messageId: string, priority: Priority, domains: string[], now = Date.now()): Promise<number> {
    const queue = await this.queueFor(messageId);
    return queue === this ? super.enqueue(messageId, priority, domains, now) : queue.enqueue(messageId, priority, domains, now);
  }

  /**
   * The producer of the shard holding the message (this one for the main Redis, or a message found on no shard);
   * throws as {@link ShardRouter.locate} does.
   */
  override async queueFor(messageId: string): Promise<DeliveryQueue> {
    return (await this.queuesFor([messageId]))[0];
  }

  /** One pipeline of look-ups per shard for the messages the process does not remember, whatever their number. */
  override async queuesFor(messageIds: readonly string[]): Promise<DeliveryQueue[]> {
    return (await this.router.locateMany(messageIds)).map((shard) => this.shardQueues.get(shard.name) ?? this);
  }
}
