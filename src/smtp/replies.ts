/**
 * SMTP replies for Kurir's refusals. Every refusal on the SMTP side goes through {@link smtpError}, so a
 * KurirError is answered with the reply code and enhanced status code of the one error registry
 * (src/lib/errors.ts), exactly as the HTTP side answers it with the registry's HTTP status.
 */
import { toKurirError } from '../lib/errors.js';

/** An Error smtp-server turns into a reply: `responseCode` is the reply code, `message` its text. */
export type SmtpReplyError = Error & { responseCode: number };

/** Matches a reply text that already starts with an enhanced status code (RFC 3463), e.g. `5.7.1 ...`. */
export const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;

/** Longest reply text sent; RFC 5321 limits a reply line to 512 octets including code and CRLF. */
const MAX_TEXT = 400;

/** Collapses control characters and bounds the length, so client-supplied values cannot break a reply. */
function clean(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  const flat = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return flat.length > MAX_TEXT ? `${flat.slice(0, MAX_TEXT - 3)}...` : flat;
}

/**
 * Builds an SMTP reply error from a code, an enhanced status code and a text.
 * @example smtpReply(538, '5.7.11', 'Encryption required') // → "538 5.7.11 Encryption required" on the wire
 */
export function smtpReply(code: number, enhanced: string, text: string): SmtpReplyError {
  const err = new Error(`${enhanced} ${clean(text)}`) as SmtpReplyError;
  err.responseCode = code;
  return err;
}

/**
 * Maps any error to the SMTP reply it deserves: a KurirError to its registry reply
 * (`${code} ${enhanced} ${message}`), an infrastructure failure (Redis down) to `451 4.3.0`, anything
 * else to `451 4.3.0 Internal error` — never the internal message of an unexpected error.
 * The returned error's message starts with the enhanced status code.
 */
export function smtpError(err: unknown): SmtpReplyError {
  const kerr = toKurirError(err);
  const { code, enhanced } = kerr.smtp;
  const reply = smtpReply(code, enhanced, kerr.message);
  // Keep the original for logging; smtp-server only looks at message and responseCode.
  (reply as Error).cause = kerr;
  return reply;
}
