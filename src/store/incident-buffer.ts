/**
 * The incident window's writes from the delivery path, gathered in memory and written once a second in one
 * pipeline. Every delivered message used to pay one or two Redis round trips of its own for these counts (its
 * outcome, and for verification mail the delivered count of the confirmation rate): about 3 % of the gateway's
 * event loop under load (docs/benchmarks.md). The window is a one-hour summary read by GET /v1/incidents, which
 * flushes this process's buffer before reading, so its own counts are never behind; another gateway's are at
 * most `flushMs` behind. A process that dies loses at most its last `flushMs` of counts (like Prometheus
 * counters in memory); the messages' own records are written at once as before.
 */
import type { Logger } from '../lib/logger.js';
import type { BucketWrite, IncidentRecorder, IncidentStore, OutcomeTally } from './incident-store.js';
import { tallyWrites, verificationWrites } from './incident-store.js';
import type { Keys } from './keys.js';

/** Buckets kept while Redis does not answer; past this the oldest counts are dropped (and logged). */
const MAX_PENDING_FIELDS = 50_000;

interface Pending {
  key: string;
  field: string;
  by: number;
  set?: string;
  ttlSeconds: number;
}

export interface IncidentBufferOptions {
  store: IncidentStore;
  keys: Keys;
  logger: Logger;
  /** How often the gathered counts are written (ms). */
  flushMs?: number;
}

/**
 * The delivery path's {@link IncidentRecorder}: merges incident-window counts in memory and writes them through the IncidentStore
 * every `flushMs`, keeping them while Redis does not answer.
 */
export class IncidentBuffer implements IncidentRecorder {
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  /** Flushes asked for and not finished: the timer adds none while one is under way (a hung Redis must not pile them up). */
  private inFlight = 0;
  private failing = false;

  constructor(private readonly o: IncidentBufferOptions) {}

  /** Starts the periodic flush (unref'd: it never keeps a process alive). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.inFlight === 0) void this.flush();
    }, this.o.flushMs ?? 1000);
    this.timer.unref();
  }

  /** Adds an attempt's (or report's) outcome counts to the buffer; written at the next flush. */
  async record(provider: string, at: number, tallies: readonly OutcomeTally[]): Promise<void> {
    this.add(tallyWrites(this.o.keys, provider, at, tallies));
  }

  /** Adds a verification delivery or confirmation to the buffer; written at the next flush. */
  async recordVerification(provider: string, at: number, kind: 'delivered' | 'confirmed'): Promise<void> {
    this.add(verificationWrites(this.o.keys, provider, at, kind));
  }

  private add(writes: readonly BucketWrite[]): void {
    for (const w of writes) {
      const id = `${w.key}\u0000${w.field}`;
      const p = this.pending.get(id);
      if (p) {
        p.by += w.by;
        if (w.set !== undefined) p.set = w.set;
      } else {
        if (this.pending.size >= MAX_PENDING_FIELDS) this.dropOldest();
        this.pending.set(id, { ...w });
      }
    }
  }

  private dropOldest(): void {
    const oldest = this.pending.keys().next();
    if (!oldest.done) this.pending.delete(oldest.value);
    this.o.logger.warn({ max: MAX_PENDING_FIELDS }, 'incident window: counts dropped while Redis did not answer');
  }

  /**
   * Writes what was gathered (one pipeline). Flushes run one after another; when Redis refuses, the counts go
   * back into the buffer for the next flush. Never rejects.
   */
  flush(): Promise<void> {
    this.inFlight++;
    this.flushing = this.flushing
      .then(() => this.flushOnce())
      .finally(() => {
        this.inFlight--;
      });
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (!this.pending.size) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.o.store.write([...batch.values()]);
      if (this.failing) this.o.logger.info('incident window: writing again');
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.o.logger.warn({ err: (err as Error).message }, 'incident window: counts kept in memory until Redis answers');
      this.failing = true;
      // Put them back in front of what came meanwhile (those are newer: their sample text wins).
      const newer = this.pending;
      this.pending = batch;
      for (const [id, w] of newer) {
        const p = this.pending.get(id);
        if (!p) this.pending.set(id, w);
        else {
          p.by += w.by;
          if (w.set !== undefined) p.set = w.set;
        }
      }
      while (this.pending.size > MAX_PENDING_FIELDS) this.dropOldest();
    }
  }

  /** Stops the timer and writes what is left (best effort: Redis may be gone at shutdown). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }
}
