/**
 * Role `worker`: the delivery worker (MX or smarthost over a pool of SMTP sessions, MTA-STS), the
 * reconciler that re-queues messages without a live job, the webhook worker and the webhook outbox relay.
 */
import type { Redis } from 'ioredis';
import { createSmtpPool, type SmtpPool } from '../delivery/connection-pool.js';
import { httpsPolicyFetcher } from '../delivery/mta-sts-fetch.js';
import { MtaStsPolicies } from '../delivery/mta-sts.js';
import { Reconciler } from '../delivery/reconciler.js';
import { createResolver } from '../delivery/resolver.js';
import { startDeliveryWorker, type DeliveryWorker } from '../delivery/worker.js';
import { DeliveryFeedback } from '../feedback/suppression/delivery-feedback.js';
import { LiveIndex } from '../store/live-index.js';
import { MtaStsStore } from '../store/mta-sts-store.js';
import { closeRedis, createRedis } from '../store/redis.js';
import { OutboxRelay } from '../webhooks/outbox-relay.js';
import { startWebhookWorker, type WebhookWorker } from '../webhooks/worker.js';
import type { Core } from './core.js';

export interface WorkerRole {
  /** Whether the delivery worker is consuming jobs (for /readyz). */
  isRunning(): boolean;
  /** Stops the reconciler, lets running jobs finish (bounded by `graceMs`), then closes the SMTP pool. */
  close(graceMs?: number): Promise<void>;
}

/** Starts the worker role on its own blocking Redis connection. */
export async function startWorkerRole(core: Core): Promise<WorkerRole> {
  const { config, redis, keys, logger, clock, metrics, opts, messages, providers, shaper } = core;
  const connection: Redis = createRedis(config.redis.url, 'blocking');
  connection.on('error', (err) => logger.debug({ err: err.message }, 'redis worker connection error'));
  let worker: DeliveryWorker | null = null;
  let reconciler: Reconciler | null = null;
  let webhookWorker: WebhookWorker | null = null;
  let pool: SmtpPool | null = null;
  const relays: OutboxRelay[] = [];
  const close = async (graceMs?: number): Promise<void> => {
    for (const relay of relays) await relay.stop();
    await reconciler?.close();
    await worker?.close(graceMs);
    await webhookWorker?.close(graceMs);
    await pool?.close();
    await closeRedis(connection);
  };
  try {
    const resolver = opts.resolver ?? createResolver(config.dns, clock);
    const verpSecret = await core.verpSecret();
    // One pool of outbound SMTP sessions per process, reused across delivery jobs.
    pool = createSmtpPool({
      maxIdlePerTarget: config.delivery.concurrency,
      // Per provider (shaping.limits.<provider>.maxMessagesPerConnection), by recipient domain and MX host.
      messagesPerConnection: (target, recipients) => shaper.messagesPerConnection(recipients, target.servername),
    });
    const sts = config.delivery.mtaSts;
    // MTA-STS applies to delivery to MX hosts only: with a smarthost, the relay is responsible for it.
    const mtaSts =
      sts.enabled && !config.delivery.smarthost
        ? new MtaStsPolicies({
            resolver,
            store: new MtaStsStore(redis, keys),
            fetch: opts.mtaStsFetch ?? httpsPolicyFetcher({ resolver, timeoutMs: sts.fetchTimeoutSeconds * 1000, trustedCa: opts.trustedCa }),
            clock,
            metrics,
            logger,
            fetchRetrySeconds: sts.fetchRetrySeconds,
          })
        : undefined;
    const feedback = new DeliveryFeedback({ policy: core.policy, classify: core.classify, logger });
    const workerDeps = {
      config,
      clock,
      resolver,
      // The main Redis's own store: its queue holds only the messages stored there (redis.shards).
      messages: core.shards.main,
      metrics,
      providers,
      logger,
      verpSecret,
      rules: core.rules,
      send: pool.send,
      feedback,
      mtaSts,
      incidents: core.incidentWrites,
      trustedCa: opts.trustedCa,
    };
    worker = startDeliveryWorker(workerDeps, connection, keys, shaper, core.sources);
    const reconcile = { metrics, logger, clock, config: config.delivery.reconcile };
    reconciler = new Reconciler({ ...reconcile, live: new LiveIndex(redis, keys), queue: core.queue, messages: core.shards.main });
    reconciler.start();
    core.shards.startWorkers(workerDeps, shaper, core.sources, reconcile);
    // Webhook events whose first hand-on failed (or whose process died first), per Redis holding messages.
    const graceMs = config.webhooks.outboxGraceSeconds * 1000;
    for (const store of core.shards.stores) {
      const relay = new OutboxRelay({ outbox: store.outbox, messages: store, producer: core.webhookSink, metrics, logger, graceMs });
      relay.start();
      relays.push(relay);
    }
    webhookWorker = startWebhookWorker(
      { config, clock, logger, metrics, messages, store: core.webhookStore, targetOf: core.webhookTargetOf },
      connection,
      keys,
    );
  } catch (err) {
    await close(1000);
    throw err;
  }
  const running = worker;
  return { isRunning: () => running.isRunning(), close };
}
