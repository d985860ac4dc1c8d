/**
 * Scheduled DKIM key rotation (role api, docs/domains.md). Every `domainKeys.rotation.checkIntervalSeconds` one
 * gateway of the cluster (a Redis lock) walks the runtime-managed domains: a domain whose oldest active key has
 * signed for `everyDays` gets a rotation exactly as `POST /rotate` makes one (new key and selector, state
 * rotating, signing unchanged); a rotation the scheduler started is verified against DNS at every pass and
 * switches signing only when the published record matches (DomainService.verify), so an unpublished key never
 * signs. Past everyDays − warnDays a key-age-warning event is recorded once per key. Every api gateway exports
 * the key ages and waiting rotations from the shared records, lock or not.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { AuditStore } from '../store/audit-store.js';
import type { DomainRecord, DomainStore } from '../store/domain-store.js';
import type { DomainService } from './domain-service.js';
import { nextRotationStep, rotationPlan, signingSince } from './rotation-policy.js';

export interface RotationSchedulerDeps {
  config: Config;
  service: DomainService;
  store: DomainStore;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  /** Scheduler actions are audited as actor `scheduler`. */
  audit?: AuditStore;
}

/** What one pass did, by domain name. */
export interface RotationPassReport {
  /** Another gateway held the lock: nothing was changed (metrics were still exported). */
  skipped: boolean;
  started: string[];
  switched: string[];
  waiting: string[];
  warned: string[];
  failed: string[];
}

/**
 * Runs the periodic rotation pass (under the cluster rotation lock) that starts, verifies and warns about scheduled DKIM rotations,
 * and exports the key-age, warn-age and waiting-rotation gauges on every pass.
 */
export class RotationScheduler {
  private readonly owner = randomUUID();
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<RotationPassReport> | null = null;
  private exported = new Map<string, Set<string>>();

  constructor(private readonly deps: RotationSchedulerDeps) {
    this.intervalMs = (deps.config.domainKeys.rotation?.checkIntervalSeconds ?? 300) * 1000;
  }

  /** Runs a pass now, then every checkIntervalSeconds; errors are logged, never thrown. */
  start(): void {
    const tick = (): void => {
      void this.runOnce().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'rotation scheduler: pass failed; next pass retries'));
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in progress. Safe twice. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One pass; concurrent calls in one process share it. */
  runOnce(): Promise<RotationPassReport> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<RotationPassReport> {
    const { store } = this.deps;
    const report: RotationPassReport = { skipped: false, started: [], switched: [], waiting: [], warned: [], failed: [] };
    // Held at most two intervals plus a minute: a gateway that dies mid-pass does not stop rotation for long.
    if (await store.lockRotation(this.owner, this.intervalMs * 2 + 60_000)) {
      try {
        for (const d of await store.list()) if (d.state !== 'removed') await this.step(d, report);
      } finally {
        await store.unlockRotation(this.owner).catch(() => undefined);
      }
    } else {
      report.skipped = true;
    }
    this.export(await store.list());
    return report;
  }

  private async step(d: DomainRecord, report: RotationPassReport): Promise<void> {
    const { service, config, logger, metrics, clock } = this.deps;
    const plan = rotationPlan(d, config);
    const step = nextRotationStep(d, plan, clock.now());
    try {
      if (step.action === 'rotate' && plan) {
        const reason = `scheduled: ${step.key.selector} has signed for ${step.ageDays} days (rotation every ${plan.everyDays} days)`;
        const next = await service.rotate(d.name, { trigger: 'schedule', reason });
        const selectors = next.keys.filter((k) => k.status === 'pending').map((k) => k.selector);
        metrics.dkimScheduledRotations.inc({ step: 'started' });
        report.started.push(d.name);
        logger.warn(
          { domain: d.name, selectors },
          'scheduled DKIM rotation started: publish the new record (kurir domains show); signing switches once DNS serves it',
        );
        await this.audit('scheduled rotation: new key', d.name, { state: next.state, pending: selectors });
      } else if (step.action === 'verify') {
        const { domain: after, verification } = await service.verify(d.name, { by: 'scheduler' });
        if (after.rotation) {
          report.waiting.push(d.name);
          logger.debug({ domain: d.name, problems: verification.problems }, 'scheduled DKIM rotation: waiting for DNS');
          return;
        }
        const active = after.keys.filter((k) => k.status === 'active').map((k) => k.selector);
        metrics.dkimScheduledRotations.inc({ step: 'switched' });
        report.switched.push(d.name);
        logger.info({ domain: d.name, active }, 'scheduled DKIM rotation: DNS serves the new key, signing switched');
        await this.audit('scheduled rotation: switched', d.name, { state: after.state, active });
      } else if (step.action === 'warn' && plan) {
        const at = new Date(signingSince(step.key) + plan.everyDays * 86_400_000).toISOString();
        const message = `${step.key.selector} has signed for ${step.ageDays} days: a scheduled rotation starts ${at}; its new DKIM record must then be published`;
        if (await service.noteKeyAge(d.name, step.key.selector, message)) {
          report.warned.push(d.name);
          logger.warn({ domain: d.name, selector: step.key.selector }, `DKIM key ageing: ${message}`);
        }
      }
    } catch (err) {
      // A concurrent admin action (409) or Redis trouble: the next pass looks again.
      report.failed.push(d.name);
      logger.warn({ domain: d.name, action: step.action, err: (err as Error).message }, 'rotation scheduler: step failed; next pass retries');
    }
  }

  private async audit(action: string, target: string, after: unknown): Promise<void> {
    await this.deps.audit
      ?.append({ at: this.deps.clock.now(), actor: 'scheduler', role: 'system', ip: 'local', action, target, status: 200, after })
      .catch((err: unknown) => {
        this.deps.metrics.auditWriteFailures.inc({ kind: 'change' });
        this.deps.logger.error({ err: (err as Error).message, component: 'audit', kind: 'change' }, 'audit: entry could not be written');
      });
  }

  /** Sets the key-age, warn-age and waiting gauges from the shared records; drops series that no longer apply. */
  private export(domains: DomainRecord[]): void {
    const { metrics, config, clock } = this.deps;
    const now = clock.now();
    const seen = new Map<string, Set<string>>([
      ['age', new Set()],
      ['warn', new Set()],
      ['waiting', new Set()],
    ]);
    const mark = (kind: string, labels: Record<string, string>): Record<string, string> => {
      seen.get(kind)!.add(JSON.stringify(labels));
      return labels;
    };
    for (const d of domains) {
      if (d.state === 'removed') continue;
      for (const k of d.keys) {
        if (k.status === 'active') metrics.dkimKeyAge.set(mark('age', { domain: d.name, selector: k.selector }), Math.max(0, (now - signingSince(k)) / 1000));
      }
      const plan = rotationPlan(d, config);
      if (plan) metrics.dkimKeyWarnAge.set(mark('warn', { domain: d.name }), (plan.everyDays - plan.warnDays) * 86_400);
      if (d.rotation) {
        metrics.dkimRotationWaiting.set(mark('waiting', { domain: d.name, trigger: d.rotation.trigger }), Math.max(0, (now - d.rotation.startedAt) / 1000));
      }
    }
    const gauges = { age: metrics.dkimKeyAge, warn: metrics.dkimKeyWarnAge, waiting: metrics.dkimRotationWaiting } as const;
    for (const [kind, gauge] of Object.entries(gauges)) {
      for (const series of this.exported.get(kind) ?? []) if (!seen.get(kind)!.has(series)) gauge.remove(JSON.parse(series) as never);
    }
    this.exported = seen;
  }
}
