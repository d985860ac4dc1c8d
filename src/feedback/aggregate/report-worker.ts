import { serveJobs } from '../../lib/worker-pool.js';
import { readReportAttachment, type AggregateLimits, type AggregateRead } from '../reports/aggregate-report.js';

/*
 * A report reading thread (./report-pool.ts): reads each attachment it is sent with readReportAttachment and
 * answers the plain result. One report at a time; the pool stops the thread when one takes too long.
 */

/** The pool's message: the attachment (transferred) and the bounds. */
export interface ToReportWorker {
  bytes: Uint8Array;
  limits: AggregateLimits;
}

serveJobs<ToReportWorker, AggregateRead>((msg) =>
  // A Buffer view, as the event loop's callers pass (mailparser attachments, HTTP bodies).
  readReportAttachment(Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength), msg.limits),
);
