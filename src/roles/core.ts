/**
 * What every role of a gateway process shares: Redis connections, metrics, the stores, the delivery and
 * webhook queues, credentials kept current from Redis, shaping state and the feedback rules. Built once
 * from the validated config by createCore(); closed last, after the roles (closeCore).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { poolAddresses } from '../config/ip-pools-schema.js';
import type { Config } from '../config/schema.js';
import type { PolicyFetcher } from '../delivery/mta-sts-fetch.js';
import type { DnsResolver } from '../delivery/resolver.js';
import type { HttpGet } from '../esp/sns-signature.js';
import { type BounceRules, loadBounceRules, rulesClassifier } from '../feedback/classify/rules.js';
import { SuppressionPolicy } from '../feedback/suppression/policy.js';
import { CredentialRegistry } from '../intake/credentials.js';
import { RuntimeCredentials } from '../intake/runtime-credentials.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { kurirVersion } from '../lib/version.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { createProviderMap, type ProviderMap } from '../metrics/provider.js';
import { combineSinks, VerificationDeliveries } from '../placement/confirmations.js';
import type { DeliveryQueue } from '../queue/delivery-queue.js';
import { combinedQueueSnapshot } from '../queue/snapshot.js';
import { WebhookQueue } from '../queue/webhook-queue.js';
import { ProviderShaper } from '../shaping/provider-shaper.js';
import { SourceIps } from '../shaping/source-ips.js';
import { loadThrottleRules } from '../shaping/throttle-rules.js';
import { loadOrCreateTls, type TlsMaterial } from '../smtp/tls-material.js';
import { CredentialStore } from '../store/credential-store.js';
import { FsyncGuard } from '../store/durability.js';
import { IncidentBuffer } from '../store/incident-buffer.js';
import { IncidentStore } from '../store/incident-store.js';
import { createKeys, type Keys } from '../store/keys.js';
import type { MessageStore } from '../store/message-store.js';
import { PlacementStore } from '../store/placement-store.js';
import { closeRedis, createRedis, waitReady } from '../store/redis.js';
import { SuppressionStore } from '../store/suppression-store.js';
import { WebhookStore } from '../store/webhook-store.js';
import { openShards, type ShardSet } from './shards.js';
import { WebhookProducer, webhookTargetResolver, type WebhookTargetOf } from '../webhooks/events.js';

export interface GatewayOptions {
  clock?: Clock;
  resolver?: DnsResolver;
  metrics?: Metrics;
  /** HTTP GET for SNS signing certificates and SubscribeURL confirmations (default: fetch). Tests stay on loopback. */
  espHttpGet?: HttpGet;
  /** Fetch of MTA-STS policies (default: HTTPS on port 443 through `resolver`). Tests serve them on loopback. */
  mtaStsFetch?: PolicyFetcher;
  /** PEM certificates trusted besides the system's roots for outbound TLS and policy fetches. Tests pass their CA. */
  trustedCa?: readonly string[];
  /** The process environment, for secrets named in the config (placement.seeds[].auth.passwordEnv). Default: none. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The shared dependencies every role is started with. */
export interface Core {
  config: Config;
  logger: Logger;
  opts: GatewayOptions;
  clock: Clock;
  rules: BounceRules;
  keys: Keys;
  redis: Redis;
  /** BullMQ producers' own fail-fast connection (see createCore). */
  queueRedis: Redis;
  providers: ProviderMap;
  metrics: Metrics;
  fsyncGuard: FsyncGuard | undefined;
  credentials: CredentialRegistry;
  credentialStore: CredentialStore;
  hmacKey: string;
  runtimeCredentials: RuntimeCredentials;
  webhookStore: WebhookStore;
  webhookTargetOf: WebhookTargetOf;
  webhookQueue: WebhookQueue;
  /** Queues webhooks of committed events (the store's sink; the outbox relay's producer). */
  webhookSink: WebhookProducer;
  /** Reads of the incident window (GET /v1/incidents) and writes that must not wait. */
  incidents: IncidentStore;
  /** Writes of the incident window from the delivery path and the bounce MX, gathered and written once a second. */
  incidentWrites: IncidentBuffer;
  /** The message store every caller uses: with `redis.shards`, it routes each message to its shard. */
  messages: MessageStore;
  /** One Redis, or message data sharded by sender domain (redis.shards). */
  shards: ShardSet;
  suppressions: SuppressionStore;
  classify: ReturnType<typeof rulesClassifier>;
  policy: SuppressionPolicy;
  queue: DeliveryQueue;
  shaper: ProviderShaper;
  /** Source-IP pools and their warm-up caps (delivery.ipPools), shared by the worker and the admin API. */
  sources: SourceIps;
  placementStore: PlacementStore;
  /** The SMTP listeners' certificate and key, loaded (or created) once on first use. */
  tls(): Promise<TlsMaterial>;
  /** The VERP signing secret (config, else shared through Redis so every process signs and checks alike). */
  verpSecret(): Promise<string>;
}

/** Opens Redis and fails start-up when `redis.durability: fsync` is not guaranteed by the server. */
async function openRedis(config: Config, logger: Logger, metrics: Metrics, redis: Redis): Promise<FsyncGuard | undefined> {
  redis.on('ready', () => metrics.redisUp.set({ redis: 'main' }, 1));
  redis.on('close', () => metrics.redisUp.set({ redis: 'main' }, 0));
  await waitReady(redis, 10_000);
  metrics.redisUp.set({ redis: 'main' }, 1);
  if (config.redis.durability !== 'fsync') return undefined;
  // Refuse to start (and, after a reconnect, to accept) unless Redis fsyncs every write.
  let logged: string | null = null;
  const guard = new FsyncGuard(redis, (problem) => {
    metrics.redisFsyncOk.set(problem ? 0 : 1);
    // Checked every 2 s: a lasting problem is logged once, and its end too.
    if (problem === logged) return;
    if (problem) logger.error({ problem }, 'redis.durability fsync is not guaranteed: intake refuses messages');
    else logger.info('redis.durability fsync is guaranteed again: intake accepts messages');
    logged = problem;
  });
  const problem = await guard.check();
  if (problem) {
    await closeRedis(redis);
    throw new ConfigError(
      `redis.durability is fsync but ${problem} (e.g. redis-cli CONFIG SET appendfsync always, and in redis.conf), or set redis.durability: standard`,
    );
  }
  guard.watch();
  return guard;
}

/** Builds the shared dependencies from a validated config; throws (with Redis closed) when Redis is not usable. */
export async function createCore(config: Config, logger: Logger, opts: GatewayOptions): Promise<Core> {
  const clock = opts.clock ?? systemClock;
  // Read and validated once, before anything connects or listens: a bad rules file stops start-up here.
  const rules = loadBounceRules(config.feedback.rulesFile);
  const keys = createKeys(config.redis.prefix);
  const redis = createRedis(config.redis.url, 'command');
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error'));
  // Provider buckets (built-in rules after `shaping.providers`): the bounded `provider` label and the unit of shaping.
  const providers = createProviderMap(config.shaping.providers);
  const metrics =
    opts.metrics ??
    createMetrics({
      version: kurirVersion(),
      providers: providers.names(),
      senderDomains: config.domains.map((d) => d.name),
      sourceIps: poolAddresses(config.delivery.ipPools).map((a) => ({ ip: a.address, pool: a.pool })),
      redisShards: config.redis.shards.map((s) => s.name),
      fsyncDurability: config.redis.durability === 'fsync',
    });
  const fsyncGuard = await openRedis(config, logger, metrics, redis);
  // Queue producers (delivery, BullMQ's webhooks) get their own fail-fast connection: BullMQ defines dozens of Lua commands on the
  // client it is given, and ioredis copies them into every MULTI the stores run on a shared one.
  const queueRedis = createRedis(config.redis.url, 'command');
  queueRedis.on('error', (err) => logger.debug({ err: err.message }, 'redis queue connection error'));
  await waitReady(queueRedis, 10_000).catch(async (err: unknown) => {
    await closeRedis(redis);
    throw err;
  });

  // Webhooks hook into the MessageStore: every committed timeline event (delivery, bounce, complaint)
  // passes its EventSink, which queues a webhook job when the message's API key has a webhook.
  const webhookStore = new WebhookStore(redis, keys, config.webhooks.historySize);
  // Config credentials and runtime ones (/v1/credentials), kept current from Redis in every process (a
  // worker needs a runtime key's webhook as much as the API needs the key).
  const credentials = new CredentialRegistry(config);
  const credentialStore = new CredentialStore(redis, keys);
  const hmacKey = await credentialStore.secret(config.credentials.secret);
  const runtimeCredentials = new RuntimeCredentials({
    store: credentialStore,
    registry: credentials,
    hmacKey,
    refreshSeconds: config.credentials.refreshSeconds,
    logger,
  });
  const webhookTargetOf = webhookTargetResolver(config, (owner) => credentials.runtimeWebhook(owner));
  // Always a queue: a runtime key may get a webhook at any time.
  const webhookQueue = new WebhookQueue(queueRedis, keys, config.webhooks);
  const webhookSink = new WebhookProducer({ config, queue: webhookQueue, store: webhookStore, metrics, logger, targetOf: webhookTargetOf });
  // The per-provider rolling window of GET /v1/incidents, written where outcomes are recorded.
  const incidents = new IncidentStore(redis, keys);
  const incidentWrites = new IncidentBuffer({ store: incidents, keys, logger });
  incidentWrites.start();
  // Delivered verification messages are the denominator of the confirmation rate (src/placement/confirmations.ts).
  const eventSink = combineSinks(
    webhookSink,
    new VerificationDeliveries({ metrics, providers, smarthost: config.delivery.smarthost !== null, incidents: incidentWrites }),
  );
  // One Redis, or message data sharded by sender domain (redis.shards): `messages` and `queue` route by message.
  const shards = await openShards({ config, keys, logger, clock, redis, queueRedis, sink: eventSink, metrics }).catch(async (err: unknown) => {
    await closeRedis(queueRedis);
    await closeRedis(redis);
    throw err;
  });
  const { messages, queue } = shards;
  const suppressions = new SuppressionStore(redis, keys);
  // Per-provider shaping state in Redis, shared by the worker (slots, adaptive rate) and the admin API.
  const shaper = new ProviderShaper({ redis, keys, config, providers, rules: loadThrottleRules(config.shaping.throttleRulesFile), metrics, logger, clock });
  // The queue gauges count every Redis holding delivery jobs: the main one and each shard's (redis.shards).
  const allQueues = [queue, ...shards.shardQueues.map((s) => s.queue)];
  metrics.setQueueProvider(() => combinedQueueSnapshot(allQueues, clock, providers));
  let tlsMaterial: Promise<TlsMaterial> | undefined;
  let verp: Promise<string> | undefined;
  return {
    config,
    logger,
    opts,
    clock,
    rules,
    keys,
    redis,
    queueRedis,
    providers,
    metrics,
    fsyncGuard,
    credentials,
    credentialStore,
    hmacKey,
    runtimeCredentials,
    webhookStore,
    webhookTargetOf,
    webhookQueue,
    webhookSink,
    incidents,
    incidentWrites,
    messages,
    shards,
    suppressions,
    // One suppression rule for synchronous bounces (worker) and reports at the bounce MX (feedback role).
    classify: rulesClassifier(rules),
    policy: new SuppressionPolicy({ redis, keys, suppressions, metrics, logger, config: config.feedback }),
    queue,
    shaper,
    sources: new SourceIps({ redis, keys, config, clock, metrics }),
    placementStore: new PlacementStore(redis, keys, config.placement.historySize),
    tls: () => (tlsMaterial ??= loadOrCreateTls(config, logger)),
    verpSecret: () => (verp ??= sharedVerpSecret(config, redis, keys.verpSecret())),
  };
}

async function sharedVerpSecret(config: Config, redis: Redis, key: string): Promise<string> {
  if (config.bounce.secret) return config.bounce.secret;
  // Shared through Redis so every gateway process signs and checks VERP tokens alike.
  await redis.set(key, randomBytes(32).toString('hex'), 'NX');
  return (await redis.get(key)) as string;
}

/** Closes what createCore opened, after every role has stopped (the shards' workers within `graceMs`). */
export async function closeCore(core: Core, graceMs?: number): Promise<void> {
  core.runtimeCredentials.stop();
  core.fsyncGuard?.stop();
  await core.shards.close(graceMs);
  await core.incidentWrites.close();
  await core.queue.close().catch(() => undefined);
  await core.webhookQueue.close().catch(() => undefined);
  await closeRedis(core.queueRedis);
  await closeRedis(core.redis);
}
