/**
 * The one registry of coded errors. Each code carries the HTTP status and the SMTP reply a transport
 * gives for it, so intake over SMTP and HTTP refuse the same thing the same way.
 */
export interface ErrorSpec {
  http: number;
  smtp: { code: number; enhanced: string };
  message: string;
}

export const ERRORS = {
  VALIDATION: { http: 400, smtp: { code: 501, enhanced: '5.5.4' }, message: 'Invalid request' },
  /** A MAIL FROM or RCPT TO parameter of an extension Kurir does not offer (RFC 5321 §4.5.3); SMTP only. */
  UNSUPPORTED_PARAMETER: { http: 400, smtp: { code: 555, enhanced: '5.5.4' }, message: 'Parameter not recognized or not implemented' },
  BAD_ADDRESS: { http: 400, smtp: { code: 553, enhanced: '5.1.3' }, message: 'Invalid address' },
  HEADER_INJECTION: { http: 400, smtp: { code: 554, enhanced: '5.6.0' }, message: 'CR, LF or NUL in a header value' },
  BAD_MESSAGE: { http: 400, smtp: { code: 554, enhanced: '5.6.0' }, message: 'Malformed message' },
  AUTH_REQUIRED: { http: 401, smtp: { code: 530, enhanced: '5.7.0' }, message: 'Authentication required' },
  AUTH_FAILED: { http: 401, smtp: { code: 535, enhanced: '5.7.8' }, message: 'Authentication credentials invalid' },
  // SMTP 421 closes the connection (smtp-server does so for every 421).
  AUTH_BLOCKED: { http: 429, smtp: { code: 421, enhanced: '4.7.0' }, message: 'Too many failed authentication attempts, try again later' },
  SENDER_NOT_ALLOWED: { http: 403, smtp: { code: 550, enhanced: '5.7.1' }, message: 'Sender domain not allowed for this credential' },
  RELAY_DENIED: { http: 403, smtp: { code: 554, enhanced: '5.7.1' }, message: 'Relay access denied' },
  FORBIDDEN: { http: 403, smtp: { code: 550, enhanced: '5.7.1' }, message: 'Not allowed for this credential' },
  NOT_FOUND: { http: 404, smtp: { code: 550, enhanced: '5.1.0' }, message: 'Not found' },
  CONFIRM_TOO_LATE: {
    http: 410,
    smtp: { code: 554, enhanced: '5.5.0' },
    message: 'The message can no longer be confirmed (its lifetime and the margin have passed)',
  },
  MESSAGE_FINAL: { http: 409, smtp: { code: 554, enhanced: '5.5.0' }, message: 'The message is already final (delivered, bounced or expired)' },
  CONFLICT: { http: 409, smtp: { code: 554, enhanced: '5.5.0' }, message: 'Conflicts with the current state' },
  IDEMPOTENCY_CONFLICT: { http: 409, smtp: { code: 554, enhanced: '5.5.0' }, message: 'Idempotency-Key reused with a different request' },
  TOO_LARGE: { http: 413, smtp: { code: 552, enhanced: '5.3.4' }, message: 'Message too large' },
  TOO_MANY_RECIPIENTS: { http: 400, smtp: { code: 452, enhanced: '4.5.3' }, message: 'Too many recipients' },
  UNSUPPORTED_MEDIA: { http: 415, smtp: { code: 554, enhanced: '5.6.0' }, message: 'Unsupported content type' },
  SUPPRESSED: { http: 422, smtp: { code: 550, enhanced: '5.1.1' }, message: 'Recipient is on the suppression list' },
  NO_DKIM_KEY: { http: 422, smtp: { code: 550, enhanced: '5.7.1' }, message: 'Sender domain has no DKIM key configured' },
  BAD_REPORT: { http: 422, smtp: { code: 550, enhanced: '5.6.0' }, message: 'Report refused' },
  SPAM_SCORE: { http: 422, smtp: { code: 550, enhanced: '5.7.1' }, message: 'Message refused by pre-send spam scoring' },
  RATE_LIMITED: { http: 429, smtp: { code: 451, enhanced: '4.7.1' }, message: 'Rate limit exceeded' },
  RECIPIENT_RATE_LIMITED: { http: 429, smtp: { code: 450, enhanced: '4.2.1' }, message: 'Too many messages to this recipient, try again later' },
  BUSY: { http: 503, smtp: { code: 451, enhanced: '4.3.2' }, message: 'Too much mail being received right now, try again shortly' },
  UNAVAILABLE: { http: 503, smtp: { code: 451, enhanced: '4.3.0' }, message: 'Temporarily unavailable, try again later' },
  INTERNAL: { http: 500, smtp: { code: 451, enhanced: '4.3.0' }, message: 'Internal error' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** A refusal a person or program can act on: a code from the registry, a message, and the field(s) at fault. */
export class KurirError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  readonly details?: Record<string, unknown>;
  readonly retryAfterSeconds?: number;

  constructor(
    code: ErrorCode,
    message?: string,
    extra: { field?: string; details?: Record<string, unknown>; retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(message ?? ERRORS[code].message, { cause: extra.cause });
    this.name = 'KurirError';
    this.code = code;
    this.field = extra.field;
    this.details = extra.details;
    this.retryAfterSeconds = extra.retryAfterSeconds;
  }

  /** The HTTP status the registry gives this error's code, e.g. 429 for RATE_LIMITED. */
  get httpStatus(): number {
    return ERRORS[this.code].http;
  }

  /** The SMTP reply code and enhanced status the registry gives this error's code, e.g. `{ code: 451, enhanced: '4.7.1' }`; the text is the message. */
  get smtp(): { code: number; enhanced: string } {
    return ERRORS[this.code].smtp;
  }
}

/**
 * Redis error replies that mean "not now" rather than a bad command: out of memory under `noeviction` (OOM), a
 * replica after a failover (READONLY), a restart loading its data (LOADING), a failed disk write (MISCONF), a long
 * script (BUSY), a replica without its master (MASTERDOWN), cluster states (TRYAGAIN, CLUSTERDOWN) and too few
 * replicas (NOREPLICAS). A script's error keeps the code in front ("OOM command not allowed … script: …").
 */
const TRANSIENT_REPLY = /^(?:OOM|READONLY|LOADING|MISCONF|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|NOREPLICAS) /;

/** True for errors that mean Redis (or another dependency) is not answering: the caller should say "try later". */
export function isUnavailable(err: unknown): boolean {
  if (err instanceof KurirError) return err.code === 'UNAVAILABLE';
  const e = err as { code?: string; message?: string; name?: string; previousErrors?: Array<{ message?: string }> } | undefined;
  if (!e) return false;
  if (e.code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTCONN'].includes(e.code)) return true;
  const msg = e.message ?? '';
  if (e.name === 'ReplyError') {
    if (TRANSIENT_REPLY.test(msg)) return true;
    // MULTI/EXEC: a command refused while queued (OOM) aborts the transaction; the refusals are on previousErrors.
    const queued = e.previousErrors ?? [];
    return msg.startsWith('EXECABORT') && queued.length > 0 && queued.every((q) => TRANSIENT_REPLY.test(q.message ?? ''));
  }
  // ioredis: offline, reconnecting, or no answer within commandTimeout (a blocked loop or a busy Redis).
  return /Connection is closed|Stream isn't writeable|enableOfflineQueue|MaxRetriesPerRequest|connect ECONNREFUSED|Command timed out/i.test(msg);
}

/** Wraps an infrastructure failure into UNAVAILABLE and passes KurirErrors through unchanged. */
export function toKurirError(err: unknown): KurirError {
  if (err instanceof KurirError) return err;
  if (isUnavailable(err)) return new KurirError('UNAVAILABLE', undefined, { cause: err });
  return new KurirError('INTERNAL', undefined, { cause: err });
}

/**
 * A configuration problem (of the config itself, or of a file or server it points at) that a person fixes from the
 * message alone: it names the key at fault, its value and what is allowed. Start-up prints the message without
 * a stack trace (src/main.ts).
 */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}
