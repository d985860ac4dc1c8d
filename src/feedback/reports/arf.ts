/**
 * Abuse Reporting Format (RFC 5965; RFC 6650 for not-spam, RFC 6591 for auth-failure): the fields of a
 * `message/feedback-report` part. Provider variants (Microsoft JMRP, Yahoo, AOL) use the same part with
 * `Version: 0.1` and often redact the recipient; the original message's headers then carry the hints
 * (src/feedback/reports/mime.ts originalRefs). Pure functions over text; nothing here throws.
 */
import { addressOf, field, fieldValues, parseFieldGroups, stripTypePrefix } from './mime.js';

export const FEEDBACK_TYPES = ['abuse', 'fraud', 'virus', 'other', 'not-spam', 'auth-failure'] as const;
export type FeedbackType = (typeof FEEDBACK_TYPES)[number];

/** Feedback types that are complaints about the message (suppress the recipient). */
export const COMPLAINT_TYPES: ReadonlySet<FeedbackType> = new Set(['abuse', 'fraud', 'virus', 'other']);

export interface FeedbackFields {
  feedbackType: FeedbackType;
  /** The Feedback-Type as given (lower-cased), when it was not one of FEEDBACK_TYPES. */
  rawFeedbackType?: string;
  userAgent?: string;
  version?: string;
  /** Original-Rcpt-To and Removal-Recipient addresses (the complaining recipient, when not redacted). */
  recipients: string[];
  originalMailFrom?: string;
  sourceIp?: string;
  arrivalDate?: string;
  reportedDomain?: string;
  reportingMta?: string;
}

/** Parses a `message/feedback-report` body; null when it has no Feedback-Type (not a feedback report). */
export function parseFeedbackReport(text: string): FeedbackFields | null {
  const fields = parseFieldGroups(text.slice(0, 200_000)).flat();
  const type = field(fields, 'feedback-type')
    ?.trim()
    .toLowerCase()
    .split(/[\s;(]/)[0];
  if (!type) return null;
  const known = (FEEDBACK_TYPES as readonly string[]).includes(type);
  const out: FeedbackFields = { feedbackType: known ? (type as FeedbackType) : 'other', recipients: [] };
  if (!known) out.rawFeedbackType = type.slice(0, 64);
  const set = <K extends keyof FeedbackFields>(key: K, value: FeedbackFields[K] | undefined): void => {
    if (value !== undefined && value !== '') out[key] = value;
  };
  set('userAgent', field(fields, 'user-agent')?.slice(0, 200));
  set('version', field(fields, 'version')?.slice(0, 20));
  set('originalMailFrom', addressOf(field(fields, 'original-mail-from')));
  set('sourceIp', field(fields, 'source-ip')?.slice(0, 64));
  set('arrivalDate', (field(fields, 'arrival-date') ?? field(fields, 'received-date'))?.slice(0, 100));
  set('reportedDomain', field(fields, 'reported-domain')?.slice(0, 255));
  const mta = field(fields, 'reporting-mta');
  set('reportingMta', mta ? stripTypePrefix(mta).slice(0, 255) : undefined);
  const seen = new Set<string>();
  for (const v of [...fieldValues(fields, 'original-rcpt-to'), ...fieldValues(fields, 'removal-recipient')]) {
    const a = addressOf(v);
    if (a && !seen.has(a.toLowerCase())) {
      seen.add(a.toLowerCase());
      out.recipients.push(a);
    }
    if (out.recipients.length >= 50) break;
  }
  return out;
}
