/**
 * Connection-slot releases that failed, retried in the background. A delivery gives its provider's slot back
 * when it ends; when Redis does not answer then, the slot stays taken in Redis until its lease runs out
 * (`shaping.leaseSeconds`, 600 s by default), and a handful of such slots block every delivery to the
 * provider, verification included, long after Redis is back. So the gate hands each failed release to this
 * retrier and returns at once (the job completes); the retrier tries again with a back-off (250 ms doubling to
 * 5 s, back to 250 ms after a success) until Redis takes it or the lease has run out anyway. On shutdown it tries
 * once more; what is still owed then comes back after the lease, as a dead worker's slots do.
 *
 * Why not a short lease renewed while the connection is in use: renewal is a Redis write per delivery in flight
 * every few seconds on the normal path; a renewal lost to the same outage raises the same question; and a lease
 * shorter than the longest SMTP transaction (socket timeouts, a large body to a slow receiver) would let the
 * shaper hand out slots that are still in use. Retrying the one write that failed costs nothing while Redis
 * answers and keeps the lease a safety net for dead processes only.
 *
 * The gate hands over the slot of an acquire whose answer was lost too (no answer within the command timeout, or
 * the connection closed after it was sent): Redis may run the script late and take a slot nobody will give back.
 * The retry goes on the same connection, after the acquire, so it removes that slot once Redis runs them; one that
 * was never taken costs a ZREM.
 *
 * In memory, per gate. Only the slot is given back: the send's replies, which feed the adaptive rate, are stale
 * by then and are not replayed.
 */
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ShapingLease } from './shaping-slots.js';

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5_000;

export interface ReleaseRetryDeps {
  clock: Clock;
  logger: Logger;
  metrics?: Pick<Metrics, 'shapingReleasesRetried'>;
  /** Gives one slot back, without outcomes; rejects when Redis does not answer. */
  release(lease: ShapingLease): Promise<void>;
}

/** Slots whose release failed, given back once Redis answers again (see the module comment). */
export class ReleaseRetries {
  private readonly owed = new Map<string, ShapingLease>();
  private timer: NodeJS.Timeout | null = null;
  private delayMs = FIRST_DELAY_MS;
  private active: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly deps: ReleaseRetryDeps) {}

  /** How many releases are owed now. */
  get pending(): number {
    return this.owed.size;
  }

  /** Remembers a slot whose release failed and schedules a retry; a lease that holds no slot is ignored. */
  add(lease: ShapingLease): void {
    if (lease.heldUntil === null || this.closed) return;
    this.owed.set(lease.id, lease);
    this.schedule();
  }

  /** On shutdown: one more try for every release owed, then no more retries (the rest runs out with its lease). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.active;
    await this.round();
    if (!this.owed.size) return;
    for (const lease of this.owed.values()) this.deps.metrics?.shapingReleasesRetried.inc({ provider: lease.provider, outcome: 'abandoned' });
    const providers = [...new Set([...this.owed.values()].map((l) => l.provider))];
    this.deps.logger.warn({ slots: this.owed.size, providers }, 'shaping: connection slots not given back at shutdown; Redis frees them when their lease ends');
    this.owed.clear();
  }

  private schedule(): void {
    if (this.timer || this.active || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.active = this.retry().finally(() => {
        this.active = null;
        if (this.owed.size) this.schedule();
      });
    }, this.delayMs);
    this.timer.unref();
  }

  private async retry(): Promise<void> {
    const before = this.owed.size;
    await this.round();
    this.delayMs = this.owed.size < before ? FIRST_DELAY_MS : Math.min(this.delayMs * 2, MAX_DELAY_MS);
  }

  /** Tries each owed release in turn, up to the first failure (Redis is still away: the rest waits for the next round). */
  private async round(): Promise<void> {
    for (const lease of [...this.owed.values()]) {
      if (this.deps.clock.now() >= (lease.heldUntil ?? 0)) {
        // Redis has reclaimed the slot by now (or will at its next acquire for the provider): nothing left to give back.
        this.owed.delete(lease.id);
        this.deps.metrics?.shapingReleasesRetried.inc({ provider: lease.provider, outcome: 'abandoned' });
        this.deps.logger.warn({ provider: lease.provider }, 'shaping: connection slot not given back before its lease ended');
        continue;
      }
      try {
        await this.deps.release(lease);
      } catch {
        return;
      }
      if (this.owed.delete(lease.id)) {
        this.deps.metrics?.shapingReleasesRetried.inc({ provider: lease.provider, outcome: 'released' });
        this.deps.logger.info({ provider: lease.provider }, 'shaping: connection slot given back after a failed release');
      }
    }
  }
}
