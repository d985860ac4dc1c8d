/**
 * What the feedback ingest takes and answers: a report at the bounce MX (`IngestInput`), a report an ESP already
 * parsed (`ProviderReport`, `FailureItem`), and the outcomes (`IngestOutcome`, `IngestBusy`, `EspResult`) with their
 * bounded reasons, which are metric labels. Shared by ingest.ts, the ESP adapters (src/esp/), the bounce MX and the
 * HTTP routes; nothing here runs.
 */
import type { OriginalRefs } from '../reports/mime.js';
import type { UnusableReason } from '../reports/report.js';
import type { Classification } from '../classify/rules.js';

export const INGEST_IGNORE_REASONS = [
  'unknown-message',
  'forged-verp',
  'unverified-complaint',
  'unverified-bounce',
  'unknown-recipient',
  'no-failure',
] as const;
/** Why a report changed nothing: the parser's reasons plus matching failures (a bounded metric label set). */
export type IgnoreReason = UnusableReason | (typeof INGEST_IGNORE_REASONS)[number];

export interface IngestInput {
  /** The report, or its first `feedback.maxMessageBytes` when it was larger (then `truncated`). */
  raw: Buffer;
  /** The report was cut to `raw` (its source cannot be checked by DKIM: the body hash no longer matches). */
  truncated?: boolean;
  /** Kurir message ids of the envelope's VERP recipients (their tokens already verified at RCPT). */
  verpIds: string[];
  /** For the log. */
  sessionId?: string;
  remoteAddress?: string;
}

export type IngestOutcome =
  | {
      result: 'applied';
      kind: 'bounce' | 'complaint';
      messageId: string;
      bounced: string[];
      delayed: string[];
      complained: string[];
      suppressed: string[];
      /** Failures not held against the recipient (policy, spam-block, …). */
      senderSide: string[];
    }
  | { result: 'ignored'; reason: IgnoreReason; detail: string; messageId?: string };

/** No parse thread could take the report now: the bounce MX answers 451 4.3.2 and the sender retries. */
export type IngestBusy = { result: 'busy'; detail: string };

/** Where a report came from, for the log. */
export type ReportContext = Pick<IngestInput, 'sessionId' | 'remoteAddress'>;

/** One recipient's failure (or delay), already classified: what every report format comes down to. */
export interface FailureItem {
  address: string;
  action: 'failed' | 'delayed';
  classification: Classification;
  /** The remote reply or diagnostic, as shown on the timeline. */
  reply: string;
  /** RFC 3463 status, e.g. `5.1.1`. */
  status?: string;
  remoteMta?: string;
}

/**
 * A bounce or complaint an ESP reported, already parsed and classified by its adapter
 * (src/esp/ses.ts, src/esp/mailgun.ts). `original` names the message: VERP candidates
 * (verified here), Message-ID, X-Kurir-Id.
 */
export type ProviderReport =
  | { provider: 'ses' | 'mailgun'; kind: 'bounce'; original: OriginalRefs; failures: FailureItem[] }
  | { provider: 'ses' | 'mailgun'; kind: 'complaint'; original: OriginalRefs; recipients: string[]; feedbackType: string; userAgent?: string };

/** Why an ESP notification was refused before it was read (a bounded metric label set). */
export type EspRejectReason =
  | 'malformed'
  | 'unknown-topic'
  | 'unsupported-version'
  | 'bad-cert-url'
  | 'cert-unavailable'
  | 'cert-expired'
  | 'bad-signature'
  | 'stale'
  | 'replayed'
  /** The same notification is being applied by another request right now: answered 503, so it is retried. */
  | 'in-progress';

/** What became of one ESP notification (src/esp/ses.ts, src/esp/mailgun.ts); the HTTP layer maps it to a status. */
export type EspResult =
  | { result: 'applied' | 'ignored'; outcome: IngestOutcome }
  /** Seen before (an SNS redelivery): acknowledged, not applied twice. */
  | { result: 'duplicate' }
  /** An SNS subscription (un)confirmation: confirmed, or logged for the admin. */
  | { result: 'confirmed' | 'logged'; detail: string }
  | { result: 'rejected'; reason: EspRejectReason; detail: string };
