/**
 * The intake every submitting role shares (SMTP listener of role `intake`, the HTTP API of role `api`, the
 * probes of role `placement`): one IntakeService with its limits, pre-send scoring, admission bound and the
 * failed-authentication throttle; plus the SMTP listener and the placement scheduler when configured.
 */
import { AuthThrottle } from '../intake/auth-throttle.js';
import { IntakeService } from '../intake/intake-service.js';
import { createAdmission, type Admission } from '../lib/admission.js';
import { PlacementService } from '../placement/placement-service.js';
import { PreSendScorer } from '../scoring/pre-send-scorer.js';
import { IntakeLimiter } from '../shaping/intake-limiter.js';
import { createSmtpIntake } from '../smtp/intake-server.js';
import { IdempotencyStore } from '../store/idempotency-store.js';
import type { Core } from './core.js';
import type { Signing } from './signing.js';

export interface IntakeParts {
  intake: IntakeService;
  admission: Admission;
  authThrottle: AuthThrottle;
}

/** Builds the shared intake of this process. */
export async function createIntake(core: Core, signing: Signing): Promise<IntakeParts> {
  const { config, redis, keys, clock, metrics, logger } = core;
  const rspamd = config.scoring.rspamd;
  const scorer = rspamd.enabled
    ? new PreSendScorer({
        config: rspamd,
        hostname: config.hostname,
        bounceDomain: config.bounce.domain,
        verpSecret: await core.verpSecret(),
        metrics,
        logger,
        now: () => clock.now(),
      })
    : undefined;
  const intake = new IntakeService({
    config,
    clock,
    signer: signing.signer,
    messages: core.messages,
    suppressions: core.suppressions,
    idempotency: new IdempotencyStore(redis, keys, config.idempotency.ttlSeconds),
    queue: core.queue,
    metrics,
    limits: new IntakeLimiter({ redis, keys, config, clock, metrics }),
    durability: core.fsyncGuard,
    scorer,
    domains: signing.directory,
  });
  return {
    intake,
    // One bound on message bytes in flight for both transports of this process.
    admission: createAdmission(config.intake.maxBytesInFlight, (bytes) => metrics.intakeInflightBytes.set(bytes)),
    // Failed SMTP AUTH and unknown API keys, counted together per client IP across the cluster.
    authThrottle: new AuthThrottle({ redis, keys, config: config.authLimits, metrics, logger, clock }),
  };
}

/** Role `placement`: schedules seed-mailbox probes and checks them over IMAP (when seeds are configured). */
export function startPlacement(core: Core, parts: IntakeParts, closers: Array<() => Promise<void>>): void {
  const { config } = core;
  if (!config.roles.includes('placement') || !config.placement.seeds.length) return;
  const placement = new PlacementService({
    config,
    clock: core.clock,
    logger: core.logger,
    metrics: core.metrics,
    store: core.placementStore,
    messages: core.messages,
    intake: parts.intake,
    providerNames: core.providers.names(),
    env: core.opts.env ?? {},
  });
  placement.start();
  closers.push(() => placement.close());
}

/** Role `intake`: the SMTP submission listener(s); answers the bound ports. */
export async function startSmtpIntake(core: Core, parts: IntakeParts, closers: Array<() => Promise<void>>): Promise<{ smtp: number; smtpTls?: number }> {
  const smtp = createSmtpIntake({
    config: core.config,
    logger: core.logger,
    intake: parts.intake,
    clock: core.clock,
    credentials: core.credentials,
    tls: await core.tls(),
    metrics: core.metrics,
    authThrottle: parts.authThrottle,
    admission: parts.admission,
  });
  const bound = await smtp.listen();
  closers.push(() => smtp.close());
  return { smtp: bound.port, smtpTls: bound.tlsPort };
}
