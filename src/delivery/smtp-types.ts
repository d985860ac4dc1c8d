/**
 * The shapes an SMTP transaction reports in, and how a reply code maps to an outcome (src/delivery/smtp-client.ts
 * and src/delivery/pipelined-transaction.ts both produce them; smtp-client.ts re-exports the types).
 */
import type { TlsFailureType } from './tls-failure.js';

/** One recipient's result of one attempt. `kind` temp covers 4xx and network trouble; perm is 5xx. */
export interface RecipientOutcome {
  address: string;
  kind: 'delivered' | 'temp' | 'perm';
  code: number | null;
  reply: string;
}

/** What a refusal's reply code means for a recipient: 5xx is permanent; 4xx, no code (network trouble) and anything else temporary. */
export function kindOf(code: number | null): 'temp' | 'perm' {
  return code !== null && code >= 500 && code < 600 ? 'perm' : 'temp';
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
