/**
 * Bounded collection of an smtp-server DATA stream, shared by the submission intake and the bounce MX:
 * chunks are kept up to a byte limit, the transaction is answered exactly once, and the number of DATA
 * transactions not yet answered is tracked so a closing server knows when it may end idle sessions.
 * Each server keeps its own replies and logging (the `onError` and `onEnd` handlers).
 */
import type { SMTPServerDataStream } from 'smtp-server';
import type { Admission } from './admission.js';

/** Gives smtp-server the DATA reply; only the first call counts. */
export type AnswerData = (err: Error | null, message?: string) => void;

/** What a DATA stream left once it ended. */
export interface CollectedData {
  /** True when smtp-server flagged the message over its SIZE limit or more than the byte limit arrived. */
  tooLarge: boolean;
  /** True when intake admission refused the bytes (too much mail in flight): nothing was kept. */
  busy: boolean;
  /** The kept bytes as one buffer; the whole message when `tooLarge` is false. */
  raw(): Buffer;
}

/** A server's handling of one DATA stream. */
export interface DataHandlers {
  /** The stream failed before its end. */
  onError(err: Error, answer: AnswerData): void;
  /** The stream ended; `answer` may be called later (after asynchronous work). */
  onEnd(data: CollectedData, answer: AnswerData): void;
}

/** Collects DATA streams for one server. */
export interface DataCollector {
  /** DATA transactions started and not yet answered. */
  readonly inFlight: number;
  /** Collects one stream and hands smtp-server's `onData` callback to the handlers, answered once. */
  collect(stream: SMTPServerDataStream, callback: (err?: Error | null, message?: string) => void, handlers: DataHandlers): void;
}

/**
 * Creates a collector keeping at most about `maxBytes` of each message. `onAnswered` runs after every
 * reply, once `inFlight` already counts it as done. With `admission`, each chunk is reserved as it
 * arrives and held until the reply; once a chunk is refused the rest of the message is read and dropped.
 */
export function createDataCollector(maxBytes: number, onAnswered?: () => void, admission?: Admission): DataCollector {
  let inFlight = 0;
  return {
    get inFlight() {
      return inFlight;
    },
    collect(stream, callback, handlers) {
      inFlight++;
      const chunks: Buffer[] = [];
      let kept = 0;
      let reserved = 0;
      let busy = false;
      let answered = false;
      const answer: AnswerData = (err, message) => {
        if (answered) return;
        answered = true;
        inFlight--;
        admission?.release(reserved);
        reserved = 0;
        callback(err, message);
        onAnswered?.();
      };
      stream.on('data', (chunk: Buffer) => {
        // smtp-server keeps streaming past the limit (and flags sizeExceeded); keep memory bounded.
        if (busy || kept > maxBytes) return;
        if (admission) {
          if (!admission.tryReserve(chunk.length)) {
            busy = true;
            chunks.length = 0;
            kept = 0;
            admission.release(reserved);
            reserved = 0;
            return;
          }
          reserved += chunk.length;
        }
        chunks.push(chunk);
        kept += chunk.length;
      });
      stream.once('error', (err: Error) => handlers.onError(err, answer));
      stream.once('end', () => {
        handlers.onEnd({ tooLarge: stream.sizeExceeded || kept > maxBytes, busy, raw: () => Buffer.concat(chunks, kept) }, answer);
      });
    },
  };
}
