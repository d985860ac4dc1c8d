/*
 * The composition root's second half: builds every dependency from the validated config and starts the
 * configured roles, closing them in reverse. Over 300 lines because each role's wiring is here; the next
 * step is one module per role (src/roles/), started from here.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from './config/schema.js';
import { createSmtpPool, type SmtpPool } from './delivery/connection-pool.js';
import { MtaStsPolicies } from './delivery/mta-sts.js';
import { httpsPolicyFetcher, type PolicyFetcher } from './delivery/mta-sts-fetch.js';
import { createResolver, type DnsResolver } from './delivery/resolver.js';
import { startDeliveryWorker, type DeliveryWorker } from './delivery/worker.js';
import { Reconciler } from './delivery/reconciler.js';
import { loadSigningKeys } from './dkim/config-keys.js';
import { createBounceServer } from './smtp/bounce-server.js';
import { MailgunFeedback } from './esp/mailgun.js';
import { SesFeedback } from './esp/ses.js';
import { createCertFetcher, fetchHttpGet, type HttpGet } from './esp/sns-signature.js';
import { DeliveryFeedback } from './feedback/suppression/delivery-feedback.js';
import { FeedbackIngest } from './feedback/ingest/ingest.js';
import { createReports } from './feedback/aggregate/report-ingest.js';
import { loadBounceRules, rulesClassifier } from './feedback/classify/rules.js';
import { createSourceVerifier } from './feedback/ingest/trust.js';
import { SuppressionPolicy } from './feedback/suppression/policy.js';
import { WebhookProducer, webhookTargetResolver } from './webhooks/events.js';
import { startWebhookWorker, type WebhookWorker } from './webhooks/worker.js';
import { SignPool, signingThreadsFor } from './dkim/sign-pool.js';
import { createDkimSigner, type DkimSigner } from './dkim/signer.js';
import { loadKeyVault, type KeyVault } from './dkim/key-vault.js';
import { DomainDirectory } from './domains/domain-directory.js';
import { DomainService } from './domains/domain-service.js';
import { Doctor } from './domains/doctor/doctor.js';
import { AuthSelfCheck } from './domains/auth-selfcheck.js';
import { SelfCheckStore } from './store/selfcheck-store.js';
import { DomainStore } from './store/domain-store.js';
import { combineSinks, confirmSecret, Confirmations, VerificationDeliveries } from './placement/confirmations.js';
import { PlacementService } from './placement/placement-service.js';
import { buildApp } from './http/app.js';
import { ConsoleSessionStore } from './store/console-session-store.js';
import type { EspRoutesOptions } from './http/esp-routes.js';
import { startMetricsServer } from './http/metrics-server.js';
import { AuthThrottle } from './intake/auth-throttle.js';
import { CredentialRegistry } from './intake/credentials.js';
import { RuntimeCredentials } from './intake/runtime-credentials.js';
import { CredentialAdmin } from './admin/credentials.js';
import { AuditStore } from './store/audit-store.js';
import { CredentialStore } from './store/credential-store.js';
import { IntakeService } from './intake/intake-service.js';
import { createAdmission } from './lib/admission.js';
import { systemClock, type Clock } from './lib/clock.js';
import type { Logger } from './lib/logger.js';
import { kurirVersion } from './lib/version.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { createProviderMap } from './metrics/provider.js';
import { DeliveryQueue } from './queue/delivery-queue.js';
import { WebhookQueue } from './queue/webhook-queue.js';
import { queueSnapshot } from './queue/snapshot.js';
import { PreSendScorer } from './scoring/pre-send-scorer.js';
import { IntakeLimiter } from './shaping/intake-limiter.js';
import { ProviderShaper } from './shaping/provider-shaper.js';
import { loadThrottleRules } from './shaping/throttle-rules.js';
import { createSmtpIntake, type SmtpIntake } from './smtp/intake-server.js';
import { loadOrCreateTls, type TlsMaterial } from './smtp/tls-material.js';
import { IdempotencyStore } from './store/idempotency-store.js';
import { LiveIndex } from './store/live-index.js';
import { FsyncGuard } from './store/durability.js';
import { IncidentStore } from './store/incident-store.js';
import { createKeys } from './store/keys.js';
import { MessageStore } from './store/message-store.js';
import { MtaStsStore } from './store/mta-sts-store.js';
import { PlacementStore } from './store/placement-store.js';
import { closeRedis, createRedis, waitReady } from './store/redis.js';
import { SuppressionStore } from './store/suppression-store.js';
import { WebhookStore } from './store/webhook-store.js';

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

export interface Gateway {
  config: Config;
  metrics: Metrics;
  messages: MessageStore;
  suppressions: SuppressionStore;
  redis: Redis;
  /** Bound addresses of the listeners that were started. */
  ports: { http?: number; smtp?: number; smtpTls?: number; metrics?: number; feedback?: number };
  /** Stops listeners first, then the worker (bounded), then Redis. Safe to call twice. */
  close(): Promise<void>;
}

async function verpSecret(config: Config, redis: Redis, key: string): Promise<string> {
  if (config.bounce.secret) return config.bounce.secret;
  // Shared through Redis so every gateway process signs and checks VERP tokens alike.
  await redis.set(key, randomBytes(32).toString('hex'), 'NX');
  return (await redis.get(key)) as string;
}

/** Builds every dependency from a validated config and starts the configured roles. */
export async function startGateway(config: Config, logger: Logger, opts: GatewayOptions = {}): Promise<Gateway> {
  const clock = opts.clock ?? systemClock;
  // Read and validated once, before anything connects or listens: a bad rules file stops start-up here.
  const rules = loadBounceRules(config.feedback.rulesFile);
  const keys = createKeys(config.redis.prefix);
  const redis = createRedis(config.redis.url, 'command');
  redis.on('error', (err) => logger.debug({ err: err.message }, 'redis connection error'));
  // Provider buckets (built-in rules after `shaping.providers`): the bounded `provider` label and the unit of shaping.
  const providers = createProviderMap(config.shaping.providers);
  const metrics = opts.metrics ?? createMetrics({ version: kurirVersion(), providers: providers.names(), senderDomains: config.domains.map((d) => d.name) });
  redis.on('ready', () => metrics.redisUp.set(1));
  redis.on('close', () => metrics.redisUp.set(0));
  await waitReady(redis, 10_000);
  metrics.redisUp.set(1);
  // durability fsync: refuse to start (and, after a reconnect, to accept) unless Redis fsyncs every write.
  let fsyncGuard: FsyncGuard | undefined;
  if (config.redis.durability === 'fsync') {
    fsyncGuard = new FsyncGuard(redis, (problem) => {
      metrics.redisFsyncOk.set(problem ? 0 : 1);
      if (problem) logger.error({ problem }, 'redis.durability fsync is not guaranteed: intake refuses messages');
    });
    const problem = await fsyncGuard.check();
    if (problem) {
      await closeRedis(redis);
      throw new Error(
        `redis.durability is fsync but ${problem} (e.g. redis-cli CONFIG SET appendfsync always, and in redis.conf), or set redis.durability: standard`,
      );
    }
    fsyncGuard.watch();
  }
  // BullMQ producers get their own fail-fast connection: BullMQ defines dozens of Lua commands on the
  // client it is given, and ioredis copies them into every MULTI the stores run on a shared one.
  const queueRedis = createRedis(config.redis.url, 'command');
  queueRedis.on('error', (err) => logger.debug({ err: err.message }, 'redis queue connection error'));
  await waitReady(queueRedis, 10_000);

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
  // Delivered verification messages are the denominator of the confirmation rate (src/placement/confirmations.ts).
  // The per-provider rolling window of GET /v1/incidents, written where outcomes are recorded.
  const incidents = new IncidentStore(redis, keys);
  const eventSink = combineSinks(webhookSink, new VerificationDeliveries({ metrics, providers, smarthost: config.delivery.smarthost !== null, incidents }));
  const messages = new MessageStore(redis, keys, config.retention.days * 86400, eventSink);
  const suppressions = new SuppressionStore(redis, keys);
  // One suppression rule for synchronous bounces (worker) and reports at the bounce MX (feedback role).
  const classify = rulesClassifier(rules);
  const policy = new SuppressionPolicy({ redis, keys, suppressions, metrics, logger, config: config.feedback });
  let tlsMaterial: Promise<TlsMaterial> | undefined;
  const tls = (): Promise<TlsMaterial> => (tlsMaterial ??= loadOrCreateTls(config, logger));
  const queue = new DeliveryQueue(queueRedis, keys);
  // Per-provider shaping state in Redis, shared by the worker (slots, adaptive rate) and the admin API.
  const shaper = new ProviderShaper({ redis, keys, config, providers, rules: loadThrottleRules(config.shaping.throttleRulesFile), metrics, logger, clock });
  metrics.setQueueProvider(() => queueSnapshot(queue.queue, clock, providers));
  const closers: Array<() => Promise<void>> = [];
  const ports: Gateway['ports'] = {};
  let worker: DeliveryWorker | null = null;
  let reconciler: Reconciler | null = null;
  let webhookWorker: WebhookWorker | null = null;
  let workerConnection: Redis | null = null;
  // One pool of outbound SMTP sessions per process, reused across delivery jobs.
  let smtpPool: SmtpPool | null = null;

  /** Listeners first, then workers (bounded grace; `graceMs` overrides it), then queues and Redis. */
  const shutdown = async (graceMs?: number): Promise<void> => {
    for (const c of closers.reverse()) await c().catch((err: unknown) => logger.warn({ err }, 'close failed'));
    runtimeCredentials.stop();
    await reconciler?.close();
    await worker?.close(graceMs);
    await webhookWorker?.close(graceMs);
    await smtpPool?.close();
    await queue.close().catch(() => undefined);
    await webhookQueue?.close().catch(() => undefined);
    if (workerConnection) await closeRedis(workerConnection);
    await closeRedis(queueRedis);
    await closeRedis(redis);
  };

  try {
    // Loaded before anything listens; kept current from then on (stopped by shutdown).
    await runtimeCredentials.start();
    // Role `placement` submits its probes through the same intake as real mail.
    const needsIntake = config.roles.includes('intake') || config.roles.includes('api') || config.roles.includes('placement');
    const selfCheckOn = config.roles.includes('worker') && config.domainKeys.selfCheck.enabled;
    let vault: KeyVault | null | undefined;
    let domainStore: DomainStore | undefined;
    let signer: DkimSigner | undefined;
    let directory: DomainDirectory | undefined;
    let selfCheck: AuthSelfCheck | undefined;
    // Set once the signer exists: a reload sends new keys to the signing threads and drops revoked ones.
    let keysChanged = (): void => undefined;
    if (needsIntake || selfCheckOn) {
      // Runtime-managed sender domains: keys sealed in Redis, reloaded by every gateway when they change.
      vault = await loadKeyVault(config.domainKeys);
      domainStore = new DomainStore(redis, keys);
      const dir = new DomainDirectory({
        store: domainStore,
        vault,
        logger,
        refreshMs: config.domainKeys.refreshSeconds * 1000,
        // A key or domain change: new keys to the signing threads (revoked ones dropped), and a self-check of
        // the domains at once rather than at the next interval.
        onReload: () => {
          keysChanged();
          void selfCheck?.trigger();
        },
      });
      await dir.start();
      closers.push(async () => dir.close());
      directory = dir;
      const signingThreads = needsIntake ? signingThreadsFor(config.dkim.signingThreads) : 0;
      const signPool = signingThreads > 0 ? await SignPool.start({ threads: signingThreads, logger }) : undefined;
      if (signPool) closers.push(() => signPool.close());
      const built = createDkimSigner({ keys: await loadSigningKeys(config, logger), clock: () => new Date(clock.now()), source: dir, engine: signPool });
      signer = built;
      if (signPool) {
        signPool.sync(built.liveKeys());
        keysChanged = () => signPool.sync(built.liveKeys());
      }
    }
    if (selfCheckOn && domainStore && signer) {
      const checker = new AuthSelfCheck({
        config,
        domains: domainStore,
        results: new SelfCheckStore(redis, keys),
        signer,
        // Uncached, so a changed DNS record is seen at the next check rather than after its TTL.
        resolver: opts.resolver ?? createResolver({ ...config.dns, cache: undefined }),
        metrics,
        logger,
        clock,
      });
      selfCheck = checker;
      checker.start();
      closers.push(() => checker.close());
    }
    if (config.roles.includes('worker')) {
      workerConnection = createRedis(config.redis.url, 'blocking');
      workerConnection.on('error', (err) => logger.debug({ err: err.message }, 'redis worker connection error'));
      const resolver = opts.resolver ?? createResolver(config.dns, clock);
      const secret = await verpSecret(config, redis, keys.verpSecret());
      smtpPool = createSmtpPool({
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
      const feedback = new DeliveryFeedback({ policy, classify, logger });
      worker = startDeliveryWorker(
        {
          config,
          clock,
          resolver,
          messages,
          metrics,
          providers,
          logger,
          verpSecret: secret,
          rules,
          send: smtpPool.send,
          feedback,
          mtaSts,
          incidents,
          trustedCa: opts.trustedCa,
        },
        workerConnection,
        keys,
        shaper,
      );
      reconciler = new Reconciler({ live: new LiveIndex(redis, keys), queue, messages, metrics, logger, clock, config: config.delivery.reconcile });
      reconciler.start();
      webhookWorker = startWebhookWorker({ config, clock, logger, metrics, messages, store: webhookStore, targetOf: webhookTargetOf }, workerConnection, keys);
    }
    const placementStore = new PlacementStore(redis, keys, config.placement.historySize);
    if (needsIntake && vault !== undefined && domainStore && signer && directory) {
      // Uncached: an admin who has just published a record and asks to verify (or the doctor) must see DNS as it is now.
      const dnsResolver = opts.resolver ?? createResolver({ ...config.dns, cache: undefined });
      const domainService = new DomainService({
        config,
        store: domainStore,
        vault,
        resolver: dnsResolver,
        clock,
        changed: () => directory.refresh().then(() => undefined),
      });
      const idempotency = new IdempotencyStore(redis, keys, config.idempotency.ttlSeconds);
      const limits = new IntakeLimiter({ redis, keys, config, clock, metrics });
      const rspamd = config.scoring.rspamd;
      const scorer = rspamd.enabled
        ? new PreSendScorer({
            config: rspamd,
            hostname: config.hostname,
            bounceDomain: config.bounce.domain,
            verpSecret: await verpSecret(config, redis, keys.verpSecret()),
            metrics,
            logger,
            now: () => clock.now(),
          })
        : undefined;
      const intake = new IntakeService({
        config,
        clock,
        signer,
        messages,
        suppressions,
        idempotency,
        queue,
        metrics,
        limits,
        durability: fsyncGuard,
        scorer,
        domains: directory,
      });
      const credentialAdmin = new CredentialAdmin({
        store: credentialStore,
        registry: credentials,
        hmacKey,
        clock,
        senderDomains: new Set(config.domains.map((d) => d.name.toLowerCase())),
        changed: () => runtimeCredentials.refresh(),
      });
      // One bound on message bytes in flight for both transports of this process.
      const admission = createAdmission(config.intake.maxBytesInFlight, (bytes) => metrics.intakeInflightBytes.set(bytes));
      // Failed SMTP AUTH and unknown API keys, counted together per client IP across the cluster.
      const authThrottle = new AuthThrottle({ redis, keys, config: config.authLimits, metrics, logger });
      if (config.roles.includes('placement') && config.placement.seeds.length) {
        const placement = new PlacementService({
          config,
          clock,
          logger,
          metrics,
          store: placementStore,
          messages,
          intake,
          providerNames: providers.names(),
          env: opts.env ?? {},
        });
        placement.start();
        closers.push(() => placement.close());
      }
      if (config.roles.includes('intake') && config.smtp.enabled) {
        const smtp: SmtpIntake = createSmtpIntake({ config, logger, intake, credentials, tls: await tls(), metrics, authThrottle, admission });
        const bound = await smtp.listen();
        ports.smtp = bound.port;
        if (bound.tlsPort !== undefined) ports.smtpTls = bound.tlsPort;
        closers.push(() => smtp.close());
      }
      if (config.roles.includes('api') && config.http.enabled) {
        // ESP notifications (smarthost mode): applied like reports at the bounce MX, through FeedbackIngest.
        let esp: EspRoutesOptions | undefined;
        if (config.feedback.ses.topicArns.length || config.feedback.mailgun.signingKey) {
          const secret = await verpSecret(config, redis, keys.verpSecret());
          const ingest = new FeedbackIngest({ config, messages, policy, classify, metrics, providers, logger, clock, verpSecret: secret, incidents });
          const httpGet = opts.espHttpGet ?? fetchHttpGet();
          const espDeps = { config, ingest, classify, metrics, logger, clock, redis, keys };
          esp = {
            ses: new SesFeedback({ ...espDeps, httpGet, fetchCert: createCertFetcher(httpGet, { now: () => clock.now() }) }),
            mailgun: new MailgunFeedback(espDeps),
          };
        }
        const app = await buildApp({
          config,
          logger,
          intake,
          credentials,
          messages,
          metrics,
          suppressions,
          webhooks: webhookStore,
          clock,
          delivery: { queue: queue.queue, messages, shaper, clock },
          esp,
          domains: domainService,
          doctor: new Doctor({
            config,
            store: domainStore,
            selfChecks: new SelfCheckStore(redis, keys),
            resolver: dnsResolver,
            clock,
            fetchPolicy:
              opts.mtaStsFetch ??
              httpsPolicyFetcher({ resolver: dnsResolver, timeoutMs: config.delivery.mtaSts.fetchTimeoutSeconds * 1000, trustedCa: opts.trustedCa }),
          }),
          admission,
          authThrottle,
          credentialAdmin,
          webhookTargetOf,
          audit: new AuditStore(redis, keys, config.audit.maxEntries),
          placement: {
            store: placementStore,
            confirmations: new Confirmations({ config, redis, keys, messages, metrics, providers, clock, secret: await confirmSecret(redis, keys), incidents }),
          },
          reports: {
            ...createReports({ config, redis, keys, metrics, logger, clock }),
            bodyLimit: 2 * config.feedback.reports.maxCompressedBytes,
            retentionDays: config.feedback.reports.retentionDays,
          },
          incidents: { incidents, placement: placementStore, seeds: config.placement.seeds, providerNames: providers.names() },
          console: { sessions: new ConsoleSessionStore(redis, keys, config.console.idleTimeoutSeconds), providerOf: (address) => providers.byDomain(address) },
          readiness: async () => ({ redis: (await redis.ping().catch(() => null)) === 'PONG', worker: worker ? worker.worker.isRunning() : null }),
        });
        await app.listen({ host: config.http.host, port: config.http.port });
        const addr = app.server.address();
        ports.http = typeof addr === 'object' && addr ? addr.port : config.http.port;
        closers.push(() => app.close());
      }
    }
    if (config.roles.includes('feedback')) {
      const secret = await verpSecret(config, redis, keys.verpSecret());
      const dns = opts.resolver ?? createResolver(config.dns, clock);
      const verifySource = createSourceVerifier({ config, resolver: (name, rrtype) => dns.resolve(name, rrtype), now: () => clock.now() });
      const ingest = new FeedbackIngest({ config, messages, policy, classify, metrics, providers, logger, clock, verpSecret: secret, verifySource, incidents });
      const reports = createReports({ config, redis, keys, metrics, logger, clock }).ingest;
      const mx = createBounceServer({ config, logger, metrics, ingest, reports, verpSecret: secret, tls: await tls() });
      ports.feedback = await mx.listen();
      closers.push(() => mx.close());
    }
    if (config.metrics.port !== null) {
      const m = await startMetricsServer({ host: config.metrics.host, port: config.metrics.port, token: config.metrics.token, metrics });
      ports.metrics = m.port;
      closers.push(() => m.close());
    }
  } catch (err) {
    await shutdown(1000);
    throw err;
  }

  let closing: Promise<void> | null = null;
  return {
    config,
    metrics,
    messages,
    suppressions,
    redis,
    ports,
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}
