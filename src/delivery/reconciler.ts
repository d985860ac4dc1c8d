/**
 * The reconciler: the promise behind a 202/250 does not depend on a delivery job surviving. A message's
 * state ("queued", "deferred") says it still needs delivery; the queue says whether a job will do it.
 * When they disagree — stored but never enqueued, a job that failed, a job lost with a Redis that came
 * back from an older AOF — the reconciler puts the job back. Re-queueing is always safe: a job for a
 * recipient that is already final does nothing, and one past the message's TTL records the expiry.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { domainOf } from '../lib/address.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { deliveryJobId, type DeliveryQueue } from '../queue/delivery-queue.js';
import type { LiveIndex, LiveMessage } from '../store/live-index.js';
import type { MessageStore } from '../store/message-store.js';

export interface ReconcilerDeps {
  live: LiveIndex;
  queue: DeliveryQueue;
  messages: MessageStore;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  config: Config['delivery']['reconcile'];
}

/** What one pass did. */
export interface ReconcileReport {
  /** Another process held the pass lock. */
  skipped: boolean;
  checked: number;
  /** Jobs added for messages that had none. */
  requeued: number;
  /** Failed jobs moved back to wait. */
  retried: number;
  /** Messages found final but still indexed (finalize had not run), now finalized. */
  finalized: number;
  /** Index entries whose record is gone. */
  dropped: number;
}

const FAILED_PER_PASS = 1000;

/** Job id `<messageId>_<domain>` back to its parts (message ids never contain `_`). */
function parseJobId(jobId: string): { messageId: string; domain: string } | null {
  const i = jobId.indexOf('_');
  return i > 0 ? { messageId: jobId.slice(0, i), domain: jobId.slice(i + 1) } : null;
}

/**
 * Periodic repair pass over the live index: retries failed delivery jobs and enqueues missing ones for messages still pending,
 * and finalizes or drops index entries left behind (no recipient pending, or record gone).
 */
export class Reconciler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ReconcileReport> | null = null;

  constructor(private readonly deps: ReconcilerDeps) {}

  /** Runs a pass now and then every `intervalSeconds`; errors are logged, never thrown. */
  start(): void {
    const tick = (): void => {
      void this.runOnce().catch((err: unknown) => this.deps.logger.warn({ err }, 'reconciler pass failed; next pass retries'));
    };
    tick();
    this.timer = setInterval(tick, this.deps.config.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in progress. Safe twice. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** One pass, cluster-wide at most one at a time (a Redis lock); concurrent calls in one process share it. */
  runOnce(): Promise<ReconcileReport> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<ReconcileReport> {
    const { live, config } = this.deps;
    const report: ReconcileReport = { skipped: false, checked: 0, requeued: 0, retried: 0, finalized: 0, dropped: 0 };
    const token = randomBytes(8).toString('hex');
    if (!(await live.lock(token, config.intervalSeconds * 2000 + 30_000))) return { ...report, skipped: true };
    try {
      const indexed = await live.buildOnce();
      if (indexed) this.deps.logger.info({ indexed }, 'reconciler: indexed messages stored before the live index existed');
      await this.retryFailedJobs(report);
      await this.walk(report);
    } finally {
      await live.unlock(token).catch(() => undefined);
    }
    if (report.requeued || report.retried) {
      this.deps.logger.warn({ ...report }, 'reconciler: re-queued messages that had no live delivery job');
    }
    return report;
  }

  /** Failed jobs first: cheap to find, and the usual trace of a Redis hiccup during a delivery. */
  private async retryFailedJobs(report: ReconcileReport): Promise<void> {
    const { queue, live, metrics } = this.deps;
    const jobIds = await queue.failedIds(FAILED_PER_PASS);
    const parsed = jobIds.map((id) => ({ jobId: id, parts: parseJobId(id) }));
    const ids = [...new Set(parsed.flatMap((p) => (p.parts ? [p.parts.messageId] : [])))];
    const byId = new Map((await live.load(ids)).map((m) => [m.id, m]));
    for (const { jobId, parts } of parsed) {
      const m = parts ? byId.get(parts.messageId) : undefined;
      const needed = m?.record && m.pending.some((a) => domainOf(a) === parts!.domain);
      if (!needed) {
        await queue.removeJob(jobId).catch(() => undefined);
        continue;
      }
      if (await queue.retryFailed(jobId)) {
        report.retried += 1;
        metrics.queueReconciled.inc({ reason: 'failed-job' });
      }
    }
  }

  /** A bounded slice of the live index per pass, from where the last pass stopped. */
  private async walk(report: ReconcileReport): Promise<void> {
    const { live, config, clock } = this.deps;
    const createdBefore = clock.now() - config.graceSeconds * 1000;
    let offset = await live.cursor();
    while (report.checked < config.maxPerPass) {
      const slice = await live.slice(offset, Math.min(config.batchSize, config.maxPerPass - report.checked), createdBefore);
      const removed = await this.checkSlice(slice.messages, report);
      report.checked += slice.messages.length;
      if (slice.nextOffset === 0) {
        offset = 0;
        break;
      }
      offset = Math.max(0, slice.nextOffset - removed);
    }
    await live.setCursor(offset);
  }

  /**
   * Makes sure each live message of a slice has a live job per domain still pending: the job states of the
   * whole slice are read in one round trip; only repairs cost more. Returns how many left the index.
   */
  private async checkSlice(slice: LiveMessage[], report: ReconcileReport): Promise<number> {
    const { live, messages, queue, metrics } = this.deps;
    let removed = 0;
    const pending: Array<{ m: LiveMessage; domains: string[] }> = [];
    for (const m of slice) {
      if (!m.record) {
        await live.drop([m.id]);
        report.dropped += 1;
        removed += 1;
      } else if (!m.pending.length) {
        await messages.finalize(m.id);
        report.finalized += 1;
        removed += 1;
      } else {
        pending.push({ m, domains: [...new Set(m.pending.map(domainOf))] });
      }
    }
    const presence = await queue.presence(pending.flatMap(({ m, domains }) => domains.map((d) => deliveryJobId(m.id, d))));
    let i = 0;
    for (const { m, domains } of pending) {
      const states = presence.slice(i, i + domains.length);
      i += domains.length;
      const missing = domains.filter((_, k) => states[k] === 'missing');
      if (missing.length) {
        await queue.enqueue(m.id, m.record!.priority, missing);
        report.requeued += missing.length;
        metrics.queueReconciled.inc({ reason: 'missing-job' }, missing.length);
      }
      for (const [k, d] of domains.entries()) {
        if (states[k] === 'failed' && (await queue.retryFailed(deliveryJobId(m.id, d)))) {
          report.retried += 1;
          metrics.queueReconciled.inc({ reason: 'failed-job' });
        }
      }
    }
    return removed;
  }
}
