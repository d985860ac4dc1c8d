/**
 * Role `api`: the fastify app (submission, message reads, admin API, console, ESP notifications) with the
 * services only it uses — credential and domain administration, the doctor, confirmations, the audit log.
 */
import { CredentialAdmin } from '../admin/credentials.js';
import { httpsPolicyFetcher } from '../delivery/mta-sts-fetch.js';
import { createResolver } from '../delivery/resolver.js';
import { Doctor } from '../domains/doctor/doctor.js';
import { DomainService } from '../domains/domain-service.js';
import { RotationScheduler } from '../domains/rotation-scheduler.js';
import { MailgunFeedback } from '../esp/mailgun.js';
import { SesFeedback } from '../esp/ses.js';
import { createCertFetcher, fetchHttpGet } from '../esp/sns-signature.js';
import { createReports } from '../feedback/aggregate/report-ingest.js';
import { buildApp } from '../http/app.js';
import type { EspRoutesOptions } from '../http/esp-routes.js';
import { confirmSecret, Confirmations } from '../placement/confirmations.js';
import { AuditStore } from '../store/audit-store.js';
import { ConfirmationStore } from '../store/confirmation-store.js';
import { ConsoleSessionStore } from '../store/console-session-store.js';
import { SelfCheckStore } from '../store/selfcheck-store.js';
import type { Core } from './core.js';
import { feedbackIngest } from './feedback.js';
import type { IntakeParts } from './intake.js';
import type { Signing } from './signing.js';

/** ESP notifications (smarthost mode), applied like reports at the bounce MX through FeedbackIngest; undefined when none is configured. */
async function espRoutes(core: Core): Promise<EspRoutesOptions | undefined> {
  const { config, classify, metrics, logger, clock, redis, keys, opts } = core;
  if (!config.feedback.ses.topicArns.length && !config.feedback.mailgun.signingKey) return undefined;
  const ingest = await feedbackIngest(core);
  const httpGet = opts.espHttpGet ?? fetchHttpGet();
  const espDeps = { config, ingest, classify, metrics, logger, clock, redis, keys };
  return {
    ses: new SesFeedback({ ...espDeps, httpGet, fetchCert: createCertFetcher(httpGet, { now: () => clock.now() }) }),
    mailgun: new MailgunFeedback(espDeps),
  };
}

/** Starts the HTTP API; answers its bound port. `workerRunning` feeds /readyz (null: no worker in this process). */
export async function startApi(
  core: Core,
  signing: Signing,
  parts: IntakeParts,
  workerRunning: () => boolean | null,
  closers: Array<() => Promise<void>>,
): Promise<number> {
  const { config, redis, keys, clock, metrics, logger, opts, messages, providers, incidents } = core;
  // Uncached: an admin who has just published a record and asks to verify (or the doctor) must see DNS as it is now.
  const dnsResolver = opts.resolver ?? createResolver({ ...config.dns, cache: undefined });
  const domains = new DomainService({
    config,
    store: signing.domainStore,
    vault: signing.vault,
    resolver: dnsResolver,
    clock,
    changed: () => signing.directory.refreshAfterWrite().then(() => undefined),
  });
  const audit = new AuditStore(redis, keys, config.audit.maxEntries);
  const selfChecks = new SelfCheckStore(redis, keys);
  // Scheduled DKIM rotation: the API role owns the domain lifecycle (vault, uncached resolver, audit); one gateway per pass (Redis lock).
  if (config.domainKeys.rotation && signing.vault) {
    const rotation = new RotationScheduler({ config, service: domains, store: signing.domainStore, metrics, logger, clock, audit });
    rotation.start();
    closers.push(() => rotation.close());
  }
  // DMARC/TLS reports posted by a forwarding mailbox, read in a thread pool closed after the HTTP server.
  const reports = createReports({ config, redis, keys, metrics, logger, clock });
  closers.push(() => reports.close());
  const app = await buildApp({
    config,
    logger,
    intake: parts.intake,
    credentials: core.credentials,
    messages,
    metrics,
    suppressions: core.suppressions,
    webhooks: core.webhookStore,
    clock,
    delivery: {
      queue: core.queue,
      messages,
      shaper: core.shaper,
      clock,
      sources: core.sources,
      shards: core.shards.shardQueues.map((s) => ({ name: s.name, queue: s.queue })),
    },
    esp: await espRoutes(core),
    domains,
    doctor: new Doctor({
      config,
      store: signing.domainStore,
      selfChecks,
      resolver: dnsResolver,
      clock,
      fetchPolicy:
        opts.mtaStsFetch ??
        httpsPolicyFetcher({ resolver: dnsResolver, timeoutMs: config.delivery.mtaSts.fetchTimeoutSeconds * 1000, trustedCa: opts.trustedCa }),
    }),
    admission: parts.admission,
    authThrottle: parts.authThrottle,
    credentialAdmin: new CredentialAdmin({
      store: core.credentialStore,
      registry: core.credentials,
      hmacKey: core.hmacKey,
      clock,
      senderDomains: new Set(config.domains.map((d) => d.name.toLowerCase())),
      changed: () => core.runtimeCredentials.refresh(),
      logger,
    }),
    webhookTargetOf: core.webhookTargetOf,
    audit,
    placement: {
      store: core.placementStore,
      confirmations: new Confirmations({
        config,
        store: new ConfirmationStore(redis, keys, (ids) => core.shards.locateMany(ids), core.incidentWrites),
        metrics,
        providers,
        clock,
        secret: await confirmSecret(redis, keys),
      }),
    },
    reports: {
      ingest: reports.ingest,
      store: reports.store,
      bodyLimit: 2 * config.feedback.reports.maxCompressedBytes,
      retentionDays: config.feedback.reports.retentionDays,
    },
    incidents: {
      incidents,
      flush: () => core.incidentWrites.flush(),
      placement: core.placementStore,
      seeds: config.placement.seeds,
      providerNames: providers.names(),
      selfChecks,
    },
    console: { sessions: new ConsoleSessionStore(redis, keys, config.console.idleTimeoutSeconds), providerOf: (address) => providers.byDomain(address) },
    readiness: async () => ({
      redis: (await redis.ping().catch(() => null)) === 'PONG',
      worker: workerRunning(),
      // With redis.durability fsync: whether intake accepts (it refuses while Redis does not fsync every write).
      ...(core.fsyncGuard ? { fsync: core.fsyncGuard.refusal() === null } : {}),
      // The connection state, not a ping: a shard that hangs must not make the probe time out. No URL: /readyz is public.
      degraded: core.shards.unreachable().map((d) => `shard ${d.name}: unreachable`),
    }),
  });
  await app.listen({ host: config.http.host, port: config.http.port });
  closers.push(() => app.close());
  const addr = app.server.address();
  return typeof addr === 'object' && addr ? addr.port : config.http.port;
}
