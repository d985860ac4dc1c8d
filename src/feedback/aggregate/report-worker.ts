import { parentPort } from 'node:worker_threads';
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

/** The thread's answers: once when it has loaded, then one read per report. */
export type FromReportWorker = { ready: true } | { read: AggregateRead };

const port = parentPort;
if (port) {
  port.on('message', (msg: ToReportWorker) => {
    // A Buffer view, as the event loop's callers pass (mailparser attachments, HTTP bodies).
    const bytes = Buffer.from(msg.bytes.buffer, msg.bytes.byteOffset, msg.bytes.byteLength);
    port.postMessage({ read: readReportAttachment(bytes, msg.limits) } satisfies FromReportWorker);
  });
  port.postMessage({ ready: true } satisfies FromReportWorker);
}
