/**
 * Reading DMARC aggregate and TLS reports off the event loop: `readReportAttachment` (unpack, then XML or
 * JSON parse — seconds of CPU for a report near the caps) runs in a {@link WorkerPool} of
 * node:worker_threads threads (./report-worker.ts), one report per thread at a time.
 *
 * Every read resolves, never rejects: a read over `maxParseMs` has its thread stopped and is refused as
 * `parse-timeout`; a thread that dies refuses its report as `internal-error`; more than `maxQueued` reports
 * waiting for a thread are refused as `busy` (temporary: the sender retries). The next report after a stopped
 * or dead thread gets a new one.
 */
import type { ResourceLimits, Worker } from 'node:worker_threads';
import type { Logger } from '../../lib/logger.js';
import { WorkerPool, type PoolRefusal } from '../../lib/worker-pool.js';
import type { AggregateLimits, AggregateRead } from '../reports/aggregate-report.js';
import type { ToReportWorker } from './report-worker.js';

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

const REFUSALS: Record<PoolRefusal, 'busy' | 'parse-timeout' | 'internal-error'> = { busy: 'busy', timeout: 'parse-timeout', died: 'internal-error' };

/** A pool of report-reading threads; see the module comment. */
export class ReportPool {
  private readonly pool: WorkerPool<ToReportWorker, AggregateRead>;

  constructor(opts: ReportPoolOptions) {
    this.pool = new WorkerPool<ToReportWorker, AggregateRead>({
      callerUrl: import.meta.url,
      file: './report-worker',
      name: 'kurir-reports',
      component: 'reports',
      threads: opts.threads,
      maxQueued: opts.maxQueued,
      maxRunMs: opts.maxParseMs,
      settings: { threads: 'feedback.reports.parseThreads', maxQueued: 'feedback.reports.maxQueuedReports', maxRunSeconds: 'feedback.reports.maxParseSeconds' },
      refusal: (why, detail) => ({ ok: false, reason: REFUSALS[why], detail }),
      ...(opts.logger ? { logger: opts.logger } : {}),
      ...(opts.resourceLimits ? { resourceLimits: opts.resourceLimits } : {}),
    });
  }

  /** Reads one attachment in a pool thread: the same answer as `readReportAttachment`, or a pool refusal. */
  read(bytes: Uint8Array, limits: AggregateLimits): Promise<AggregateRead> {
    // A copy of its own, handed over without a second copy; the caller keeps `bytes`.
    const copy = new Uint8Array(bytes);
    const { maxCompressedBytes, maxInflatedBytes, maxZipEntries, maxRecords } = limits;
    return this.pool.run({ bytes: copy, limits: { maxCompressedBytes, maxInflatedBytes, maxZipEntries, maxRecords } }, [copy.buffer]);
  }

  /** The running threads (for diagnostics and tests). */
  workers(): Worker[] {
    return this.pool.workers();
  }

  /** Stops every thread; reports waiting or being read are answered `busy` (the sender retries). Safe twice. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
