/**
 * Reading DMARC aggregate and TLS reports off the event loop: `readReportAttachment` (unpack, then XML or
 * JSON parse — seconds of CPU for a report near the caps) runs in node:worker_threads threads
 * (./report-worker.ts), one report per thread at a time. Threads start with the first report and are reused.
 *
 * Every read resolves, never rejects: a read over `maxParseMs` has its thread stopped and is refused as
 * `parse-timeout`; a thread that dies refuses its report as `internal-error`; more than `maxQueued` reports
 * waiting for a thread are refused as `busy` (temporary: the sender retries). The next report after a stopped
 * or dead thread gets a new one.
 */
import type { ResourceLimits, Worker } from 'node:worker_threads';
import type { Logger } from '../../lib/logger.js';
import { startWorker } from '../../lib/worker-thread.js';
import type { AggregateLimits, AggregateRead } from '../reports/aggregate-report.js';
import type { FromReportWorker, ToReportWorker } from './report-worker.js';

export interface ReportPoolOptions {
  /** Threads reading reports at the same time. */
  threads: number;
  /** Reports waiting for a thread; more are refused as `busy`. */
  maxQueued: number;
  /** Wall-clock milliseconds one read may take once its thread runs. */
  maxParseMs: number;
  logger?: Logger;
  /** Heap limits of each thread (a thread over them dies: `internal-error` for its report). */
  resourceLimits?: ResourceLimits;
}

interface Job {
  bytes: Uint8Array;
  limits: AggregateLimits;
  resolve: (read: AggregateRead) => void;
}

interface Slot {
  worker: Worker | null;
  ready: boolean;
  job: Job | null;
  timer: NodeJS.Timeout | null;
}

/** How long a new thread may take to load its modules (tsx compiles them in dev) before its report counts. */
const STARTUP_ALLOWANCE_MS = 30_000;

/** A pool of report-reading threads; see the module comment. */
export class ReportPool {
  private readonly slots: Slot[];
  private readonly queue: Job[] = [];
  private closing = false;

  constructor(private readonly opts: ReportPoolOptions) {
    if (!(opts.threads >= 1)) throw new Error(`feedback.reports.parseThreads: a pool needs at least 1 thread, got ${opts.threads}`);
    this.slots = Array.from({ length: opts.threads }, () => ({ worker: null, ready: false, job: null, timer: null }));
  }

  /** Reads one attachment in a pool thread: the same answer as `readReportAttachment`, or a pool refusal. */
  read(bytes: Uint8Array, limits: AggregateLimits): Promise<AggregateRead> {
    return new Promise((resolve) => {
      if (this.closing) return resolve(busy('the gateway is shutting down'));
      const job: Job = { bytes, limits, resolve };
      const idle = this.slots.find((s) => !s.job);
      if (idle) this.run(idle, job);
      else if (this.queue.length < this.opts.maxQueued) this.queue.push(job);
      else resolve(busy(`${this.queue.length} reports are already waiting to be read (feedback.reports.maxQueuedReports); try again later`));
    });
  }

  /** The running threads (for diagnostics and tests). */
  workers(): Worker[] {
    return this.slots.flatMap((s) => (s.worker ? [s.worker] : []));
  }

  /** Stops every thread; reports waiting or being read are answered `busy` (the sender retries). Safe twice. */
  async close(): Promise<void> {
    this.closing = true;
    for (const job of this.queue.splice(0)) job.resolve(busy('the gateway is shutting down'));
    const stopping: Array<Promise<number>> = [];
    for (const slot of this.slots) {
      if (slot.worker) stopping.push(slot.worker.terminate());
      slot.worker = null;
      this.finish(slot, busy('the gateway is shutting down'));
    }
    await Promise.all(stopping);
  }

  private run(slot: Slot, job: Job): void {
    slot.job = job;
    if (!slot.worker) this.spawn(slot);
    this.arm(slot, slot.ready ? this.opts.maxParseMs : this.opts.maxParseMs + STARTUP_ALLOWANCE_MS);
    // A copy of its own, handed over without a second copy; the caller keeps `bytes`.
    const copy = new Uint8Array(job.bytes);
    const l = job.limits;
    const limits: AggregateLimits = {
      maxCompressedBytes: l.maxCompressedBytes,
      maxInflatedBytes: l.maxInflatedBytes,
      maxZipEntries: l.maxZipEntries,
      maxRecords: l.maxRecords,
    };
    slot.worker!.postMessage({ bytes: copy, limits } satisfies ToReportWorker, [copy.buffer]);
  }

  private arm(slot: Slot, ms: number): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = setTimeout(() => this.expire(slot), ms);
    slot.timer.unref();
  }

  /** Answers the slot's report and starts the next one waiting. */
  private finish(slot: Slot, read: AggregateRead): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    const job = slot.job;
    slot.job = null;
    job?.resolve(read);
    const next = this.closing ? undefined : this.queue.shift();
    if (next) this.run(slot, next);
  }

  private expire(slot: Slot): void {
    const worker = slot.worker;
    slot.worker = null;
    slot.ready = false;
    const seconds = this.opts.maxParseMs / 1000;
    this.opts.logger?.warn({ component: 'reports', maxParseSeconds: seconds }, 'reports: reading a report took too long; its thread was stopped');
    void worker?.terminate();
    this.finish(slot, {
      ok: false,
      reason: 'parse-timeout',
      detail: `reading the report took longer than ${seconds} s (feedback.reports.maxParseSeconds); it was stopped`,
    });
  }

  private spawn(slot: Slot): void {
    const worker = startWorker(import.meta.url, './report-worker', { name: 'kurir-reports', resourceLimits: this.opts.resourceLimits });
    slot.worker = worker;
    slot.ready = false;
    let failure: Error | undefined;
    worker.on('message', (msg: FromReportWorker) => {
      if (slot.worker !== worker) return;
      if ('ready' in msg) {
        slot.ready = true;
        if (slot.job) this.arm(slot, this.opts.maxParseMs);
        return;
      }
      this.finish(slot, msg.read);
    });
    worker.on('error', (err) => {
      failure = err;
    });
    worker.once('exit', (code) => {
      if (slot.worker !== worker) return; // stopped on purpose (timeout, close)
      slot.worker = null;
      slot.ready = false;
      const why = `the report reading thread stopped (exit code ${code}${failure ? `: ${failure.message}` : ''})`;
      this.opts.logger?.error({ component: 'reports', code, err: failure?.message }, 'reports: report reading thread stopped; the next report starts another');
      this.finish(slot, { ok: false, reason: 'internal-error', detail: why.slice(0, 200) });
    });
  }
}

function busy(detail: string): AggregateRead {
  return { ok: false, reason: 'busy', detail };
}
