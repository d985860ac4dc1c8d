import type { Priority } from '../config/schema.js';

export type RecipientStatus = 'queued' | 'deferred' | 'delivered' | 'bounced' | 'expired';
export type MessageStatus = 'queued' | 'deferred' | 'delivered' | 'bounced' | 'expired' | 'partially-delivered';

/** A late outcome that changed no state (src/delivery/stages/outcome.ts): kept on the timeline, never sent to webhooks. */
export function isSuperseded(e: TimelineEvent): boolean {
  return 'superseded' in e && e.superseded === true;
}

/** A second delivery of a recipient already delivered (src/store/message-scripts.ts, RECORD): kept on the timeline, never sent to webhooks. */
export function isDuplicate(e: TimelineEvent): boolean {
  return e.type === 'delivered' && e.duplicate === true;
}

export const FINAL_RECIPIENT_STATUSES: ReadonlySet<RecipientStatus> = new Set(['delivered', 'bounced', 'expired']);

/** What the store keeps of a message, apart from its body. */
export interface MessageRecord {
  id: string;
  /** Name of the API key or SMTP account that submitted it. */
  owner: string;
  interface: 'smtp' | 'http';
  mailFrom: string;
  fromDomain: string;
  recipients: string[];
  priority: Priority;
  createdAt: number;
  expiresAt: number;
  size: number;
  messageId: string;
  subject?: string;
  dkim: Array<{ domain: string; selector: string; algorithm: string }>;
  tags?: string[];
  metadata?: Record<string, string>;
  /** The booking reference (the value of metadata `intake.referenceKey`), as given: indexed for support's search. */
  reference?: string;
  /**
   * Recipients of an SMTP message left out at the end of DATA because they were suppressed after their RCPT TO
   * (src/smtp/late-suppression.ts): never delivered (not in `recipients`), indexed for support's search by address.
   */
  leftOut?: Array<{ address: string; reason: string }>;
}

export interface RecipientState {
  status: RecipientStatus;
  attempts: number;
  updatedAt: number;
  reply?: string;
  /** Category of the last reply (config/bounce-rules.yaml), e.g. `invalid-recipient`; absent once delivered. */
  category?: string;
  nextAttemptAt?: number;
  remoteHost?: string;
}

export type TimelineEvent =
  | { type: 'queued'; at: number }
  /** `sourceIp` and `helo`: the local address and HELO name of the attempt, when it went out from a source-IP pool. */
  | { type: 'attempt'; at: number; recipients: string[]; host: string; reply: string; tls?: boolean; sourceIp?: string; helo?: string }
  /**
   * `cause`: with category `auth-failure`, which of the receiver's authentication checks failed (ptr, spf, dkim, …).
   * `superseded` (also on bounced and expired events): a late outcome that changed no state and is not sent to
   * webhooks: of a run that had lost its job's lease, or for a recipient settled meanwhile (src/delivery/stages/outcome.ts).
   */
  | { type: 'deferred'; at: number; recipients: string[]; reply: string; category: string; cause?: string; nextAttemptAt: number; superseded?: true }
  /**
   * `duplicate`: a second delivery of recipients already delivered (two runs of one job both sent): their state and
   * the webhook stay the first delivery's.
   */
  | { type: 'delivered'; at: number; recipients: string[]; host: string; reply: string; duplicate?: true }
  | {
      type: 'bounced';
      at: number;
      recipients: string[];
      reply: string;
      category: string;
      /** With category `auth-failure`: which authentication check the receiver said failed. */
      cause?: string;
      host?: string;
      /** Set for a bounce reported after delivery (a DSN at the bounce MX, src/feedback/ingest/ingest.ts). */
      async?: true;
      bounceType?: 'hard' | 'soft';
      /** RFC 3463 status from the DSN, e.g. `5.1.1`. */
      status?: string;
      remoteMta?: string;
      /** Layout of the report: rfc3464, postfix, exim, exchange, gmail, yahoo, generic; or the ESP that reported it: ses, mailgun. */
      format?: string;
      superseded?: true;
    }
  /** A DSN with Action: delayed (the remote side is still retrying); changes no state. */
  | { type: 'delayed'; at: number; recipients: string[]; reply: string; category: string; cause?: string; status?: string; remoteMta?: string; format?: string }
  /** A spam complaint (ARF report) by the recipient(s). */
  | { type: 'complained'; at: number; recipients: string[]; feedbackType: string; userAgent?: string }
  /**
   * Recipient(s) added to the suppression list because of this message; with source `intake`, recipients left out
   * of an SMTP message at the end of DATA because they were suppressed after their RCPT TO (src/smtp/late-suppression.ts).
   */
  | { type: 'suppressed'; at: number; recipients: string[]; reason: string; source: string }
  | { type: 'expired'; at: number; recipients: string[]; reply?: string; superseded?: true }
  /** A placement probe's result at its seed mailbox (src/placement/). */
  | {
      type: 'placement';
      at: number;
      recipients: string[];
      seed: string;
      provider: string;
      result: 'inbox' | 'spam' | 'other' | 'missing' | 'seed-unreachable' | 'not-delivered';
      mailbox?: string;
      arrivalSeconds?: number;
      /** The receiver's Authentication-Results verdicts. */
      authResults?: { authservId?: string; dkim?: string; spf?: string; dmarc?: string };
      error?: string;
    }
  /** Scored before sending (src/scoring/): rspamd's verdict on the signed message, at intake. */
  | {
      type: 'scored';
      at: number;
      scanner: 'rspamd';
      score: number;
      requiredScore?: number;
      action: string;
      /** The highest-scoring symbols, highest first. */
      symbols: Array<{ name: string; score: number }>;
      /** Why this message was scored: every Nth message, or a placement probe (always). */
      sample: 'nth' | 'probe';
    }
  /** The booking system reported that the applicant completed verification (src/placement/confirmations.ts). */
  /** `counted: false`: not a delivered, non-probe `verification` message, so outside the confirmation rate. */
  | { type: 'confirmed'; at: number; recipients: string[]; provider: string; via: 'id' | 'token'; secondsAfterDelivery?: number; counted?: false };

export interface MessageView {
  record: MessageRecord;
  status: MessageStatus;
  recipients: Record<string, RecipientState>;
  events: TimelineEvent[];
}
