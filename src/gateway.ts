/*
 * The composition root's second half: builds the shared dependencies (src/roles/core.ts) from the validated
 * config and starts the configured roles, one module each under src/roles/, closing them in reverse.
 */
import type { Redis } from 'ioredis';
import type { Config } from './config/schema.js';
import { startMetricsServer } from './http/metrics-server.js';
import type { Logger } from './lib/logger.js';
import type { Metrics } from './metrics/metrics.js';
import { startApi } from './roles/api.js';
import { closeCore, createCore, type GatewayOptions } from './roles/core.js';
import { startFeedback } from './roles/feedback.js';
import { createIntake, startPlacement, startSmtpIntake } from './roles/intake.js';
import { needsIntake, startSigning } from './roles/signing.js';
import { startWorkerRole, type WorkerRole } from './roles/worker.js';
import type { MessageStore } from './store/message-store.js';
import type { SuppressionStore } from './store/suppression-store.js';

export type { GatewayOptions } from './roles/core.js';

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

/** Builds every dependency from a validated config and starts the configured roles. */
export async function startGateway(config: Config, logger: Logger, opts: GatewayOptions = {}): Promise<Gateway> {
  const core = await createCore(config, logger, opts);
  const roles = config.roles;
  // Listeners and schedulers, closed in reverse order of start.
  const closers: Array<() => Promise<void>> = [];
  const ports: Gateway['ports'] = {};
  let worker: WorkerRole | null = null;

  /** Listeners first, then the worker (bounded grace; `graceMs` overrides it), then queues and Redis. */
  const shutdown = async (graceMs?: number): Promise<void> => {
    for (const c of closers.reverse()) await c().catch((err: unknown) => logger.warn({ err }, 'close failed'));
    await worker?.close(graceMs);
    await closeCore(core, graceMs);
  };

  try {
    // Loaded before anything listens; kept current from then on (stopped by closeCore).
    await core.runtimeCredentials.start();
    const signing = await startSigning(core, closers);
    const smtpIntake = signing !== null && roles.includes('intake') && config.smtp.enabled;
    if (smtpIntake || roles.includes('feedback')) await core.tls();
    const parts = signing && needsIntake(core) ? await createIntake(core, signing) : null;
    if (signing && parts) {
      if (smtpIntake) {
        const bound = await startSmtpIntake(core, parts, closers);
        ports.smtp = bound.smtp;
        if (bound.smtpTls !== undefined) ports.smtpTls = bound.smtpTls;
      }
      if (roles.includes('api') && config.http.enabled) {
        // Until the worker has started (below), a process with the worker role is not ready.
        const workerRunning = (): boolean | null => (worker ? worker.isRunning() : roles.includes('worker') ? false : null);
        ports.http = await startApi(core, signing, parts, workerRunning, closers);
      }
    }
    if (roles.includes('feedback')) ports.feedback = await startFeedback(core, closers);
    if (config.metrics.port !== null) {
      const m = await startMetricsServer({ host: config.metrics.host, port: config.metrics.port, token: config.metrics.token, metrics: core.metrics });
      ports.metrics = m.port;
      closers.push(() => m.close());
    }
    // Deliveries and probes start last, once every listener is bound: a port already taken (or a TLS file that cannot
    // be read, above) stops the start before anything is sent. Until 2 Dec 2026 the worker started first and
    // delivered until a listener failed, then had a second to finish: a restart loop cut deliveries mid-transaction
    // (each sent again later).
    if (roles.includes('worker')) worker = await startWorkerRole(core);
    if (parts) startPlacement(core, parts, closers);
  } catch (err) {
    await shutdown(1000);
    throw err;
  }

  let closing: Promise<void> | null = null;
  return {
    config,
    metrics: core.metrics,
    messages: core.messages,
    suppressions: core.suppressions,
    redis: core.redis,
    ports,
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}
