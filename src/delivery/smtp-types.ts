/**
 * The shapes an SMTP transaction reports in, and how a reply code maps to an outcome (src/delivery/smtp-client.ts
 * and src/delivery/pipelined-transaction.ts both produce them; smtp-client.ts re-exports the types).
 */
import { temporaryFailure } from '../lib/enhanced-status.js';
import type { TlsFailureType } from './tls-failure.js';

/** One recipient's result of one attempt. `kind` temp covers 4xx, a 5xx with an enhanced code of class 4 and network trouble; perm is any other 5xx. */
export interface RecipientOutcome {
  address: string;
  kind: 'delivered' | 'temp' | 'perm';
  code: number | null;
  reply: string;
  /**
   * Set when the server refused before any recipient was named: the session (greeting, EHLO, AUTH) or MAIL FROM.
   * Such a refusal is about Kurir, never the recipient (a smarthost's: src/delivery/stages/smarthost-refusal.ts).
   */
  refusedAt?: 'session' | 'mail';
}

/**
 * What a refusal means for a recipient: permanent for a 5xx, unless its enhanced status code has class 4
 * (`550 4.2.2 Mailbox full`, `554 4.7.1 try again later`: RFC 3463 section 2, a persistent transient failure; Postfix
 * would bounce these, Kurir retries them: docs/delivery.md); a 4xx is temporary whatever its enhanced code (`450
 * 5.1.1`), and so is no code (network trouble) or anything else. `reply` is the reply's text.
 */
export function kindOf(code: number | null, reply: string): 'temp' | 'perm' {
  return code !== null && code >= 500 && code < 600 && !temporaryFailure(code, reply) ? 'perm' : 'temp';
}

/**
 * The code of a reply (null when it has none). RFC 5321 section 4.2.1 wants the same code on every line of a multiline
 * reply; when the lines disagree (`550-…` then `450 …`) the reply is taken at its mildest failure: the first 4xx on
 * any line, so a reply that also says "try again" never bounces a recipient. Otherwise the first line's code.
 */
export function replyCode(reply: string | null | undefined): number | null {
  const codes = (reply ?? '').split(/\r?\n/).flatMap((line) => (/^([2-5]\d\d)(?:[ -]|$)/.exec(line) ? [Number(line.slice(0, 3))] : []));
  if (!codes.length) return null;
  return codes.find((c) => c >= 400 && c < 500 && codes.some((o) => o >= 500)) ?? codes[0];
}

/**
 * What a refusal of RCPT TO means for that recipient: as {@link kindOf}, except that 552 is temporary. RFC 5321
 * section 4.5.3.1.10: RFC 821 had servers answer "too many recipients" with 552, and clients SHOULD take a 552 to
 * RCPT as the 452 it stands for. Receivers also say "mailbox full" with it (5.2.2): a full mailbox empties, and Postfix
 * defers every 552 to RCPT likewise. A 552 to the message itself (size) stays permanent.
 */
export function rcptKindOf(code: number | null, reply: string): 'temp' | 'perm' {
  return code === 552 ? 'temp' : kindOf(code, reply);
}

/** An error from SMTPConnection; `connected` (set by openSession (smtp-client.ts)) tells whether the session was up. */
export type SmtpError = Error & {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  rejectedErrors?: SmtpError[];
  recipient?: string;
  connected?: boolean;
  /** Set by openSession (smtp-client.ts) when the session failed on TLS (it was then never used in clear). */
  tlsFailure?: TlsFailureType | null;
  /** The target and why it required TLS, for the reply text of a TLS failure. */
  label?: string;
  tlsRequiredBy?: string;
};

/** The result of one transaction on an open session, and what the session is good for afterwards. */
export interface Transaction {
  outcomes: RecipientOutcome[];
  /** `reuse`: clean; `reset`: send RSET before reusing; `discard`: broken or the server is closing (421). */
  next: 'reuse' | 'reset' | 'discard';
  /** The transaction failed before the server answered MAIL FROM (or answered it with 421): nothing was committed. */
  beforeMail: boolean;
}
