/**
 * What a bounce report says about its recipients, whichever reader found it: the RFC 3464 field reader
 * (src/feedback/dsn.ts) and the plain-text layouts (src/feedback/plain-bounce.ts) both produce these.
 * Types only; this module imports nothing, so the readers depend on it and not on each other.
 */

export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

/** Which reader produced a report: `rfc3464` for a delivery-status part, else the plain-text layout. */
export type DsnFormat =
  | 'rfc3464'
  | 'postfix'
  | 'exim'
  | 'exchange'
  | 'gmail'
  | 'yahoo'
  | 'qmail'
  | 'sendmail'
  | 'courier'
  | 'domino'
  | 'groupwise'
  | 'mdaemon'
  | 'generic';

/** What a report says about one recipient. */
export interface DsnRecipient {
  /** Final-Recipient (or the address a plain-text bounce names); absent when the report names none. */
  address?: string;
  /** Original-Recipient, when given. */
  originalRecipient?: string;
  action: DsnAction;
  /** RFC 3463 status, e.g. `5.1.1`. */
  status?: string;
  /** SMTP reply code from the diagnostic, e.g. 550. */
  code?: number;
  /** The remote server's reply or the reporting MTA's explanation, without its type prefix. */
  diagnostic?: string;
  /** The remote MTA that gave the reply (host name or address). */
  remoteMta?: string;
}

/** What a plain-text bounce reader found. */
export interface PlainBounce {
  format: DsnFormat;
  recipients: DsnRecipient[];
}
