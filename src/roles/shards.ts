/**
 * Wiring of `redis.shards` (docs/scale-out.md) for the composition root (src/roles/core.ts, worker.ts): one connection, message store and
 * queue producer per shard, the routing store and producer the rest of the gateway uses, and on role `worker`
 * a delivery worker and a reconciler per shard. Without shards it builds exactly the single-Redis objects.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import { Reconciler, type ReconcilerDeps } from '../delivery/reconciler.js';
import { startDeliveryWorker, type DeliveryWorker } from '../delivery/worker.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { DeliveryQueue } from '../queue/delivery-queue.js';
import { ShardedDeliveryQueue } from '../queue/sharded-delivery-queue.js';
import type { ProviderShaper } from '../shaping/provider-shaper.js';
import type { SourceIps } from '../shaping/source-ips.js';
import type { Keys } from '../store/keys.js';
import { LiveIndex } from '../store/live-index.js';
import { MessageStore } from '../store/message-store.js';
import type { EventSink } from '../store/message-store-types.js';
import { closeRedis, createRedis, waitReady } from '../store/redis.js';
import { type MessageShard, ShardRouter } from '../store/shard-router.js';
import { ShardedMessageStore } from '../store/sharded-message-store.js';
import { type ShardDown, ShardHealth } from './shard-health.js';

type WorkerDeps = Parameters<typeof startDeliveryWorker>[0];

/** What the gateway gets: the store and producer to use everywhere, and the shards' workers. */
export interface ShardSet {
  /** The store for every caller that does not know which shard holds a message. */
  messages: MessageStore;
  /** The main Redis's own store: the main worker's (its queue holds only messages stored there). */
  main: MessageStore;
  queue: DeliveryQueue;
  /** The Redis holding message `id` (the main one without shards, or when no shard has it). */
  locate(id: string): Promise<Redis>;
  /** {@link locate} for many ids: one round trip per shard, answers in the order of `ids`. */
  locateMany(ids: readonly string[]): Promise<Redis[]>;
  /** Starts a delivery worker (with `deps`, but the shard's own store) and a reconciler on every shard besides the main one. */
  startWorkers(deps: WorkerDeps, shaper: ProviderShaper, sources: SourceIps, reconcile: Omit<ReconcilerDeps, 'live' | 'queue' | 'messages'>): void;
  /** The shards (besides the main Redis) whose connection is down now: for /readyz. */
  unreachable(): ShardDown[];
  /** The store of each Redis holding messages, the main one first: one webhook outbox relay each. */
  stores: readonly MessageStore[];
  /** Each shard's own delivery queue (besides the main Redis's), by name: for GET /v1/queue. */
  shardQueues: ReadonlyArray<{ name: string; queue: DeliveryQueue }>;
  /** Stops the shards' workers (bounded grace), their producers and connections. */
  close(graceMs?: number): Promise<void>;
}

interface OpenShard extends MessageShard {
  url: string;
  queueRedis: Redis;
  queue: DeliveryQueue;
}

/** Connects to every shard (failing start-up when one does not answer) and builds the routing objects. */
export async function openShards(o: {
  config: Config;
  keys: Keys;
  logger: Logger;
  clock: Clock;
  redis: Redis;
  queueRedis: Redis;
  sink?: EventSink;
  /** For kurir_redis_up{redis="<shard>"}. */
  metrics?: Metrics;
}): Promise<ShardSet> {
  const retention = o.config.retention.days * 86400;
  const storeOpts = { outboxGraceMs: o.config.webhooks.outboxGraceSeconds * 1000 };
  const main: MessageShard = { name: 'main', redis: o.redis, messages: new MessageStore(o.redis, o.keys, retention, o.sink, storeOpts) };
  const others: OpenShard[] = [];
  const workers: DeliveryWorker[] = [];
  const reconcilers: Reconciler[] = [];
  const connections: Redis[] = [];
  const health = new ShardHealth(o.logger, o.metrics, o.clock);
  const close = async (graceMs?: number): Promise<void> => {
    health.close();
    for (const r of reconcilers) await r.close();
    await Promise.all(workers.map((w) => w.close(graceMs)));
    // The last jobs' webhook acknowledgements, so the relay does not queue those webhooks again.
    for (const store of [main.messages, ...others.map((s) => s.messages)]) await store.outbox.flush();
    for (const s of others) await s.queue.close().catch(() => undefined);
    for (const c of connections) await closeRedis(c);
  };
  // Messages stored by a Kurir before 2026-11-29 move into the one-hash layout before anything reads them.
  const migrate = async (name: string, store: MessageStore): Promise<void> => {
    const moved = await store.migrateLayoutOnce();
    if (moved) o.logger.info({ redis: name, moved }, 'messages moved to the one-hash layout');
  };
  await migrate('main', main.messages);
  try {
    for (const s of o.config.redis.shards) {
      const redis = createRedis(s.url, 'command');
      const queueRedis = createRedis(s.url, 'command');
      connections.push(redis, queueRedis);
      for (const c of [redis, queueRedis]) c.on('error', (err) => o.logger.debug({ err: err.message, shard: s.name }, 'redis shard connection error'));
      await waitReady(redis, 10_000);
      await waitReady(queueRedis, 10_000);
      health.watch(s.name, redis);
      others.push({
        name: s.name,
        url: s.url,
        redis,
        queueRedis,
        messages: new MessageStore(redis, o.keys, retention, o.sink, storeOpts),
        queue: new DeliveryQueue(queueRedis, o.keys),
      });
      await migrate(s.name, others[others.length - 1].messages);
    }
  } catch (err) {
    await close();
    throw err;
  }
  if (!others.length)
    return {
      messages: main.messages,
      main: main.messages,
      queue: new DeliveryQueue(o.queueRedis, o.keys),
      locate: async () => o.redis,
      locateMany: async (ids) => ids.map(() => o.redis),
      startWorkers: () => undefined,
      unreachable: () => [],
      stores: [main.messages],
      shardQueues: [],
      close,
    };
  const senders = new Map(o.config.redis.shards.flatMap((s) => s.senderDomains.map((d) => [d, s.name] as const)));
  const router = new ShardRouter(main, others, senders, o.keys);
  o.logger.info({ shards: o.config.redis.shards.map((s) => ({ name: s.name, senderDomains: s.senderDomains })) }, 'message data sharded by sender domain');
  return {
    messages: new ShardedMessageStore(o.redis, o.keys, retention, router),
    main: main.messages,
    queue: new ShardedDeliveryQueue(o.queueRedis, o.keys, router, new Map(others.map((s) => [s.name, s.queue]))),
    locate: async (id) => (await router.locate(id)).redis,
    locateMany: async (ids) => (await router.locateMany(ids)).map((s) => s.redis),
    unreachable: () => health.unreachable(),
    stores: [main.messages, ...others.map((s) => s.messages)],
    shardQueues: others.map((s) => ({ name: s.name, queue: s.queue })),
    startWorkers(deps, shaper, sources, reconcile) {
      for (const s of others) {
        const blocking = createRedis(s.url, 'blocking');
        blocking.on('error', (err) => o.logger.debug({ err: err.message, shard: s.name }, 'redis shard worker connection error'));
        connections.push(blocking);
        workers.push(startDeliveryWorker({ ...deps, messages: s.messages }, blocking, o.keys, shaper, sources));
        const reconciler = new Reconciler({ ...reconcile, live: new LiveIndex(s.redis, o.keys), queue: s.queue, messages: s.messages });
        reconciler.start();
        reconcilers.push(reconciler);
      }
    },
    close,
  };
}
