/**
 * The boundary of report parsing: raw bytes in, a typed result out — a DSN, an ARF complaint, or an
 * "unusable" reason. It never throws and never rejects, whatever the input (malformed MIME, truncation,
 * binary parts, huge headers): parse failures are results, not exceptions.
 *
 * One pass of mailparser splits the MIME tree (message/delivery-status and message/feedback-report parts
 * are kept as parts, embedded originals as attachments); src/feedback/reports/dsn.ts and
 * src/feedback/reports/arf.ts read the parts' fields, and plain-text bounces are read from the text.
 */
import { simpleParser, type ParsedMail } from 'mailparser';
import { COMPLAINT_TYPES, parseFeedbackReport, type FeedbackFields } from './arf.js';
import { parseDeliveryStatus, type DsnFormat, type DsnRecipient } from './dsn.js';
import { returnedMessageAt } from './bounce-text.js';
import { looksLikeBounce, parsePlainBounce } from './plain-bounce.js';
import { originalRefs, type OriginalRefs } from './mime.js';

export const UNUSABLE_REASONS = [
  'empty',
  'too-large',
  'malformed-mime',
  'timeout',
  'truncated',
  'auto-reply',
  'not-a-report',
  'no-failure',
  'not-a-complaint',
  'internal-error',
] as const;
/** Why a report could not be used (a bounded set: also a metric label). */
export type UnusableReason = (typeof UNUSABLE_REASONS)[number];

export interface DsnReport {
  kind: 'dsn';
  format: DsnFormat;
  reportingMta?: string;
  recipients: DsnRecipient[];
  /** Addresses mentioned in the report's text (for matching an entry that names no address). */
  mentioned: string[];
  original: OriginalRefs;
}

export interface ArfReport extends FeedbackFields {
  kind: 'arf';
  original: OriginalRefs;
}

export interface UnusableReport {
  kind: 'unusable';
  reason: UnusableReason;
  /** For the log: what was wrong, in a few words. */
  detail: string;
}

export type FeedbackReport = DsnReport | ArfReport | UnusableReport;

export interface ParseReportOptions {
  /** Larger inputs are not parsed (default 2 MiB). */
  maxBytes?: number;
  /** Parsing that takes longer is abandoned (default 10 s). */
  timeoutMs?: number;
}

const DELIVERY_STATUS_TYPES = new Set(['message/delivery-status', 'message/global-delivery-status']);
const FEEDBACK_TYPES = new Set(['message/feedback-report']);
const ORIGINAL_TYPES = new Set(['message/rfc822', 'text/rfc822-headers', 'message/rfc822-headers', 'message/global', 'message/global-headers', 'text/rfc822']);
/** How much of an attached original is read for its headers. */
const MAX_ORIGINAL_HEAD = 256 * 1024;

const unusable = (reason: UnusableReason, detail: string): UnusableReport => ({ kind: 'unusable', reason, detail });

/**
 * The parsed message as the reader uses it. mailparser hands back whatever the input made of its fields —
 * `contentType: false` for an empty `Content-Type:`, a string or an object for a header value, params that
 * are missing or not strings, a content that is not a Buffer — so every field is checked here, once, and
 * the rest of the reader only ever sees strings and Buffers.
 */
interface SafeMail {
  /** The top-level Content-Type value, lower-cased ('' when absent or unusable). */
  contentType: string;
  /** Its `report-type` parameter, lower-cased. */
  reportType: string;
  text: string;
  subject: string;
  from: string;
  parts: Array<{ contentType: string; content: Buffer }>;
  /** Unfolded value of the first header line with this (lower-case) name, or ''. */
  header(name: string): string;
  hasHeader(name: string): boolean;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const buf = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v) : Buffer.from(str(v), 'utf8'));
const record = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

function safeMail(mail: ParsedMail): SafeMail {
  const m = record(mail);
  const headerLines = (Array.isArray(m.headerLines) ? m.headerLines : [])
    .map(record)
    .filter((h) => typeof h.key === 'string' && typeof h.line === 'string') as Array<{ key: string; line: string }>;
  const headers = m.headers instanceof Map ? (m.headers as Map<string, unknown>) : new Map<string, unknown>();
  const header = (name: string): string => {
    const line = headerLines.find((h) => h.key === name)?.line ?? '';
    return line
      .slice(line.indexOf(':') + 1)
      .replace(/\s+/g, ' ')
      .trim();
  };
  const ct = headers.get('content-type');
  const ctRecord = record(ct);
  const contentType = (typeof ct === 'string' ? ct : str(ctRecord.value)).toLowerCase().trim();
  const reportType = str(record(ctRecord.params)['report-type']).toLowerCase().trim();
  const fromValue = record(m.from).value;
  const from = str(record(Array.isArray(fromValue) ? fromValue[0] : undefined).address) || header('from');
  const parts = (Array.isArray(m.attachments) ? m.attachments : []).map((p) => {
    const part = record(p);
    return { contentType: str(part.contentType).toLowerCase().trim(), content: buf(part.content) };
  });
  return { contentType, reportType, text: str(m.text), subject: header('subject'), from, parts, header, hasHeader: (name) => headers.has(name) };
}

/** Auto-replies (RFC 3834, vacation responders) that must not be mistaken for bounces. */
function isAutoReply(mail: SafeMail): boolean {
  return (
    mail.header('auto-submitted').toLowerCase().startsWith('auto-replied') ||
    mail.hasHeader('x-autoreply') ||
    mail.hasHeader('x-autorespond') ||
    /^(?:auto(?:matic)?[ -]?reply|out of (?:the )?office|abwesenheit|r[ée]ponse automatique|vacation|away from)/i.test(mail.subject)
  );
}

function interpret(mail: SafeMail): FeedbackReport {
  const { contentType, reportType, parts, text, subject, from } = mail;
  const originals = parts.filter((p) => ORIGINAL_TYPES.has(p.contentType)).map((p) => p.content.subarray(0, MAX_ORIGINAL_HEAD).toString('utf8'));
  const refs = (): OriginalRefs => originalRefs(originals, text);

  // Complaints first: an ARF report carries a message/feedback-report part.
  const feedbackPart = parts.find((p) => FEEDBACK_TYPES.has(p.contentType));
  if (feedbackPart) {
    const fields = parseFeedbackReport(feedbackPart.content.toString('utf8'));
    if (!fields) return unusable('truncated', 'feedback-report part without Feedback-Type');
    if (!COMPLAINT_TYPES.has(fields.feedbackType)) return unusable('not-a-complaint', `Feedback-Type: ${fields.feedbackType}`);
    return { kind: 'arf', ...fields, original: refs() };
  }
  if (reportType === 'feedback-report') return unusable('truncated', 'multipart/report (feedback-report) without its feedback-report part');

  // RFC 3464 delivery status notifications.
  const statusParts = parts.filter((p) => DELIVERY_STATUS_TYPES.has(p.contentType));
  if (statusParts.length) {
    const recipients: DsnRecipient[] = [];
    let reportingMta: string | undefined;
    for (const p of statusParts) {
      const ds = parseDeliveryStatus(p.content.subarray(0, 1024 * 1024).toString('utf8'));
      reportingMta ??= ds.reportingMta;
      recipients.push(...ds.recipients);
    }
    if (recipients.length) {
      const out: DsnReport = { kind: 'dsn', format: 'rfc3464', recipients, mentioned: [], original: refs() };
      if (reportingMta) out.reportingMta = reportingMta;
      // Some MTAs leave Diagnostic-Code out; the human-readable part often has the reply.
      const plain = recipients.some((r) => !r.diagnostic) ? parsePlainBounce(text, subject, from) : null;
      if (plain) borrowReplies(recipients, plain.recipients);
      return out;
    }
  }
  const declaredDsn = reportType === 'delivery-status' || statusParts.length > 0;

  // Non-standard plain-text bounces.
  const plain = parsePlainBounce(text, subject, from);
  if (plain) {
    return { kind: 'dsn', format: plain.format, recipients: plain.recipients, mentioned: plainMentioned(text), original: refs() };
  }
  if (declaredDsn) return unusable('truncated', 'delivery-status report without a usable per-recipient block');
  if (isAutoReply(mail)) return unusable('auto-reply', `auto-reply: ${subject.slice(0, 80)}`);
  if (looksLikeBounce(from, subject)) return unusable('not-a-report', `bounce-like message in no known format: ${subject.slice(0, 80)}`);
  if (!contentType && !text && !parts.length) return unusable('malformed-mime', 'no headers or body could be parsed');
  return unusable('not-a-report', `neither a DSN nor an ARF report (${contentType || 'no content type'})`);
}

/**
 * Gives DSN entries without a Diagnostic-Code the reply the human-readable part gives for the same address
 * (their Final-Recipient or Original-Recipient, compared case-insensitively). Never another address's:
 * until 1 Dec 2026 a part naming one recipient lent its reply to every entry, so a `4.0.0` recipient got
 * the other's `550 5.1.1` and was suppressed.
 */
function borrowReplies(entries: DsnRecipient[], explained: DsnRecipient[]): void {
  const byAddress = new Map<string, DsnRecipient>();
  for (const p of explained) if (p.address && !byAddress.has(p.address.toLowerCase())) byAddress.set(p.address.toLowerCase(), p);
  for (const r of entries) {
    if (r.diagnostic) continue;
    const hint = byAddress.get(r.address?.toLowerCase() ?? '') ?? byAddress.get(r.originalRecipient?.toLowerCase() ?? '');
    if (hint?.diagnostic) {
      r.diagnostic = hint.diagnostic;
      r.code ??= hint.code;
      r.status ??= hint.status;
      r.remoteMta ??= hint.remoteMta;
    }
  }
}

/** Addresses in the report text before the quoted original (which would name the sender). */
function plainMentioned(text: string): string[] {
  const cut = returnedMessageAt(text);
  const head = cut > 0 ? text.slice(0, cut) : text.slice(0, 100_000);
  const found = head.match(/[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,10}/g) ?? [];
  return [...new Set(found.map((a) => a.toLowerCase()))].slice(0, 50);
}

/**
 * Parses a bounce or complaint report. Never throws or rejects: anything it cannot use comes back as
 * `{ kind: 'unusable', reason, detail }`.
 */
export async function parseReport(raw: Buffer | string, opts: ParseReportOptions = {}): Promise<FeedbackReport> {
  try {
    const buf = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
    if (!buf || buf.length === 0 || buf.toString('latin1', 0, Math.min(buf.length, 4096)).trim() === '') return unusable('empty', 'empty message');
    const maxBytes = opts.maxBytes ?? 2 * 1024 * 1024;
    if (buf.length > maxBytes) return unusable('too-large', `${buf.length} bytes (limit ${maxBytes})`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), opts.timeoutMs ?? 10_000);
    });
    const parsing = simpleParser(buf, {
      keepDeliveryStatus: true,
      ignoreEmbedded: true,
      skipTextToHtml: true,
      skipTextLinks: true,
      skipImageLinks: true,
      keepCidLinks: true,
      checksumAlgo: false,
      maxHtmlLengthToParse: 512 * 1024,
    }).then(
      (mail) => ({ mail }),
      (err: unknown) => ({ err }),
    );
    const result = await Promise.race([parsing, timeout]).finally(() => clearTimeout(timer));
    if (result === 'timeout') return unusable('timeout', 'MIME parsing took too long');
    if ('err' in result) return unusable('malformed-mime', `MIME parser: ${String((result.err as Error)?.message ?? result.err).slice(0, 200)}`);
    return interpret(safeMail(result.mail));
  } catch (err) {
    return unusable('internal-error', String((err as Error)?.message ?? err).slice(0, 200));
  }
}
