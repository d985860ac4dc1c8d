/**
 * Parsing DSN and ARF reports received at the bounce MX off the event loop: `parseReport` (mailparser, then
 * the DSN / ARF / plain-bounce readers) runs in a {@link WorkerPool} of node:worker_threads threads
 * (./parse-worker.ts), one report per thread at a time. On the event loop, a 1.9 MB report of 500 HTML parts
 * held every SMTP and HTTP submission and delivery of the gateway for about 2 s, and the parse timeout could
 * not interrupt it.
 *
 * Every parse resolves, never rejects, with what `parseReport` answers in this thread, or: `unusable`
 * `timeout` for a parse over `maxParseMs` (its thread is stopped), `unusable` `internal-error` for a report
 * whose thread died, and `busy` when `maxQueued` reports already wait for a thread (temporary: the bounce
 * MX answers 451 4.3.2 and the sender retries).
 */
import type { ResourceLimits, Worker } from 'node:worker_threads';
import type { Logger } from '../../lib/logger.js';
import { WorkerPool } from '../../lib/worker-pool.js';
import type { FeedbackReport, ParseReportOptions } from '../reports/report.js';
import type { ToParseWorker } from './parse-worker.js';

/** No thread was free and too many reports were waiting for one (or the gateway is closing): try again later. */
export interface ParseBusy {
  kind: 'busy';
  detail: string;
}

/** What parses a report for the ingest: a {@link ParsePool}'s `parse`, or `parseReport` in this thread. */
export type ReportParser = (raw: Buffer, opts: ParseReportOptions) => Promise<FeedbackReport | ParseBusy>;

export interface ParsePoolOptions {
  /** Threads parsing reports at the same time. */
  threads: number;
  /** Reports waiting for a thread; more are answered `busy`. */
  maxQueued: number;
  /** Wall-clock milliseconds one parse may take once its thread runs. */
  maxParseMs: number;
  logger?: Logger;
  /** Heap limits of each thread (a thread over them dies: `internal-error` for its report). */
  resourceLimits?: ResourceLimits;
}

const THREAD_TIMER_MARGIN_MS = 1000;

/** A pool of report-parsing threads; see the module comment. */
export class ParsePool {
  private readonly pool: WorkerPool<ToParseWorker, FeedbackReport | ParseBusy>;

  constructor(private readonly opts: ParsePoolOptions) {
    this.pool = new WorkerPool<ToParseWorker, FeedbackReport | ParseBusy>({
      callerUrl: import.meta.url,
      file: './parse-worker',
      name: 'kurir-feedback',
      component: 'feedback',
      threads: opts.threads,
      maxQueued: opts.maxQueued,
      maxRunMs: opts.maxParseMs,
      settings: { threads: 'feedback.parseThreads', maxQueued: 'feedback.maxQueuedReports', maxRunSeconds: 'feedback.maxParseSeconds' },
      refusal: (why, detail) =>
        why === 'busy' ? { kind: 'busy', detail } : { kind: 'unusable', reason: why === 'timeout' ? 'timeout' : 'internal-error', detail },
      ...(opts.logger ? { logger: opts.logger } : {}),
      ...(opts.resourceLimits ? { resourceLimits: opts.resourceLimits } : {}),
    });
  }

  /** Parses one report in a pool thread (bounded by `opts.maxBytes` and the pool's time cap): what `parseReport` answers, or a pool refusal; never rejects. */
  parse(raw: Buffer, opts: ParseReportOptions = {}): Promise<FeedbackReport | ParseBusy> {
    // A copy of its own, handed over without a second copy; the caller keeps `raw`.
    const copy = new Uint8Array(raw);
    // The pool's cap stops the thread, parse and all; parseReport's own timer (which would leave the parse
    // running in the thread) is only a backstop.
    const timeoutMs = this.opts.maxParseMs + THREAD_TIMER_MARGIN_MS;
    return this.pool.run({ raw: copy, opts: { ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}), timeoutMs } }, [copy.buffer]);
  }

  /** The running threads (for diagnostics and tests). */
  workers(): Worker[] {
    return this.pool.workers();
  }

  /** Stops every thread; reports waiting or being parsed are answered `busy` (the sender retries). Safe twice. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
