/**
 * What a transport hands to IntakeService: one submission and the answer it gets. Kept apart from the policy
 * (intake-service.ts) so both transports and tests can name them without the service's dependencies.
 */
import { createHash } from 'node:crypto';
import type { Priority } from '../config/schema.js';
import { KurirError } from '../lib/errors.js';
import type { Credential } from './credentials.js';

/**
 * A message's lifetime as a client asked for it, checked: a whole number of seconds from 1 to `maxSeconds`
 * (`delivery.maxTtlSeconds`), given as digits (a query parameter, a request or message header) or as a JSON number.
 * Every TTL refusal, over HTTP and SMTP, is this one, naming `field`: `ttl: must be a whole number of seconds from 1
 * to 604800` (ASCII only: it is an SMTP reply too). Until 2 Dec 2026 there were three wordings, and ?ttl= and the
 * request header said only "≥ 1".
 * @throws KurirError VALIDATION
 */
export function ttlSeconds(value: string | number, field: string, maxSeconds: number): number {
  const digits = typeof value === 'string' ? value.trim() : '';
  const seconds = typeof value === 'number' ? value : /^\d{1,10}$/.test(digits) ? Number(digits) : Number.NaN;
  if (!(Number.isInteger(seconds) && seconds >= 1 && seconds <= maxSeconds)) {
    throw new KurirError('VALIDATION', `${field}: must be a whole number of seconds from 1 to ${maxSeconds}`, { field });
  }
  return seconds;
}

/** One submission, from either transport, before anything is stored. */
export interface Submission {
  credential: Credential;
  iface: 'smtp' | 'http';
  /** Envelope sender given by the client; defaults to the From address. Kurir replaces it with VERP. */
  mailFrom?: string;
  recipients: string[];
  /**
   * Which request field named each recipient, by lower-case address (JSON: `to[0]`, `cc[1]`, `bcc[0]`), so that a
   * refusal of one recipient names its field; without it, `to`.
   */
  recipientFields?: ReadonlyMap<string, string>;
  raw: Buffer;
  priority?: Priority;
  ttlSeconds?: number;
  tags?: string[];
  metadata?: Record<string, string>;
  /** Idempotency-Key header and a digest of the request it came with. */
  idempotency?: { key: string; requestHash: string };
  /** Send even to suppressed recipients (admin credentials only; others are refused with FORBIDDEN). */
  overrideSuppression?: boolean;
  /**
   * When the transport checked every recipient against the suppression list (clock ms, as returned by
   * IntakeService.checkRecipients); a check younger than {@link SUPPRESSION_CHECK_FRESH_MS} is not repeated.
   */
  suppressionCheckedAt?: number;
  /**
   * Recipients the transport left out because they were found suppressed after it had accepted them (SMTP: at the
   * end of DATA). Stored with the message (MessageRecord.leftOut, searchable) and as `suppressed` events with source
   * `intake` on its timeline, in the same write: never delivered, never lost.
   */
  leftOut?: Array<{ address: string; reason: string }>;
}

/**
 * How long an SMTP session's RCPT TO suppression check stands for its DATA. A pipelining client's DATA ends within
 * milliseconds of its RCPT; a slow upload or a client that waits is checked again, so a recipient suppressed
 * meanwhile (a hard bounce arriving) is still refused.
 */
export const SUPPRESSION_CHECK_FRESH_MS = 5000;

export interface Accepted {
  id: string;
  /** True when an Idempotency-Key matched an earlier request and nothing new was queued. */
  duplicate: boolean;
}

/** A digest of a request body, for Idempotency-Key comparison. */
export function requestHash(parts: Array<string | Buffer>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}
