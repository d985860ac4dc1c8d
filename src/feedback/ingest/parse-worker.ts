import { serveJobs } from '../../lib/worker-pool.js';
import { parseReport, type FeedbackReport, type ParseReportOptions } from '../reports/report.js';

/*
 * A report parsing thread (./parse-pool.ts): parses each DSN or ARF report it is sent with parseReport and
 * answers the plain result. One report at a time; the pool stops the thread when one takes too long.
 */

/** The pool's message: the raw report (transferred) and the parse bounds. */
export interface ToParseWorker {
  raw: Uint8Array;
  opts: ParseReportOptions;
}

serveJobs<ToParseWorker, FeedbackReport>((msg) => parseReport(Buffer.from(msg.raw.buffer, msg.raw.byteOffset, msg.raw.byteLength), msg.opts));
