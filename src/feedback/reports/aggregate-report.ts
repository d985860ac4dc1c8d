/**
 * The boundary of DMARC aggregate (RFC 7489) and SMTP TLS (RFC 8460) report reading: bytes in — a whole
 * mail message as the bounce MX receives it, or the attachment alone as a forwarding mailbox posts it —
 * and a parsed report or a refusal with a reason out. Never throws and never rejects, whatever the input.
 *
 * The attachment is found by media type or file name (`application/gzip`, `application/zip`, `text/xml`,
 * `application/tlsrpt+gzip`, `application/tlsrpt+json`, `*.xml.gz`, `*.zip`, `*.json.gz`, …), unpacked
 * within the limits (./report-archive.ts), and read by its content: XML is a DMARC aggregate report
 * (./dmarc-aggregate.ts), JSON an SMTP TLS report (./tls-rpt.ts).
 */
import { simpleParser } from 'mailparser';
import { ARCHIVE_REFUSALS, containerOf, unpackReport, type ArchiveLimits, type ArchiveRefusal } from './report-archive.js';
import { CONTENT_REFUSALS, parseDmarcAggregate, type ContentRefusal, type DmarcReport } from './dmarc-aggregate.js';
import { parseTlsReport, type TlsReport } from './tls-rpt.js';

/**
 * Reasons only the thread pool reading attachments gives (src/feedback/aggregate/report-pool.ts): the reading
 * ran over `maxParseSeconds`, or too many reports wait for a thread (a temporary answer: the sender retries).
 */
export const POOL_REFUSALS = ['parse-timeout', 'busy'] as const;
export type PoolRefusal = (typeof POOL_REFUSALS)[number];

/** Every reason a report can be refused for (a bounded metric label set). */
export const REPORT_REFUSALS = [...ARCHIVE_REFUSALS, ...CONTENT_REFUSALS, 'malformed-mime', 'internal-error', ...POOL_REFUSALS] as const;
export type ReportRefusal = ArchiveRefusal | ContentRefusal | 'malformed-mime' | 'internal-error' | PoolRefusal;

export type AggregateReport = DmarcReport | TlsReport;
export type AggregateRead = { ok: true; report: AggregateReport; container: 'plain' | 'gzip' | 'zip' } | { ok: false; reason: ReportRefusal; detail: string };

/** Reads one attachment: {@link readReportAttachment} in this thread, or the same in a pool thread. */
export type AttachmentReader = (bytes: Uint8Array, limits: AggregateLimits) => Promise<AggregateRead>;

const inThread: AttachmentReader = async (bytes, limits) => readReportAttachment(bytes, limits);

export interface AggregateLimits extends ArchiveLimits {
  /** DMARC records, or TLS-RPT policies plus failure details, in one report. */
  maxRecords: number;
}

const REPORT_TYPES = /^(application\/(x-)?(gzip|gzip-compressed|zip|zip-compressed|xml|json|tlsrpt\+gzip|tlsrpt\+json)|text\/xml)$/;
const REPORT_NAMES = /\.(xml|xml\.gz|zip|json|json\.gz|gz)$/i;

/** Reads an attachment's bytes: unpack, then XML → DMARC aggregate, JSON → TLS report. */
export function readReportAttachment(bytes: Uint8Array, limits: AggregateLimits): AggregateRead {
  try {
    const unpacked = unpackReport(bytes, limits);
    if (!unpacked.ok) return unpacked;
    const start = unpacked.text.trimStart();
    const parsed = start.startsWith('<')
      ? parseDmarcAggregate(unpacked.text, limits.maxRecords)
      : start.startsWith('{')
        ? parseTlsReport(unpacked.text, limits.maxRecords)
        : ({ ok: false, reason: 'not-a-report', detail: 'the attachment is neither XML (DMARC aggregate) nor JSON (SMTP TLS report)' } as const);
    return parsed.ok ? { ok: true, report: parsed.report, container: unpacked.container } : parsed;
  } catch (err) {
    return { ok: false, reason: 'internal-error', detail: String((err as Error)?.message ?? err).slice(0, 200) };
  }
}

/** Whether bytes are an attachment by themselves (an archive, XML or JSON) rather than a mail message. */
export function isBareAttachment(bytes: Uint8Array): boolean {
  if (containerOf(bytes) !== 'plain') return true;
  const head = Buffer.from(bytes.subarray(0, 64))
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .trimStart();
  return head.startsWith('<') || head.startsWith('{');
}

/**
 * Reads a report from a whole mail message (or, when the bytes are an archive, XML or JSON, from the
 * attachment alone): the first attachment that is a report by media type or name, else a body that is one.
 *
 * @param readAttachment what unpacks and parses the attachment (the CPU-heavy part): in this thread by default
 */
export async function readAggregateReport(bytes: Uint8Array, limits: AggregateLimits, readAttachment: AttachmentReader = inThread): Promise<AggregateRead> {
  if (isBareAttachment(bytes)) return readAttachment(bytes, limits);
  let candidates: Buffer[];
  try {
    const mail = await simpleParser(Buffer.from(bytes), { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, skipTextLinks: true });
    candidates = (Array.isArray(mail.attachments) ? mail.attachments : [])
      .filter((a) => REPORT_TYPES.test(String(a.contentType ?? '').toLowerCase()) || REPORT_NAMES.test(String(a.filename ?? '')))
      .map((a) => (Buffer.isBuffer(a.content) ? a.content : Buffer.alloc(0)));
    // A message whose whole body is the report (Content-Type: application/gzip without a multipart around it).
    if (!candidates.length && typeof mail.text === 'string' && isBareAttachment(Buffer.from(mail.text.slice(0, 64)))) candidates = [Buffer.from(mail.text)];
  } catch (err) {
    return { ok: false, reason: 'malformed-mime', detail: `the message could not be parsed: ${String((err as Error)?.message ?? err).slice(0, 160)}` };
  }
  if (!candidates.length)
    return { ok: false, reason: 'not-a-report', detail: 'the message has no DMARC aggregate or TLS report attachment (.xml, .xml.gz, .zip, .json.gz)' };
  if (candidates.length > limits.maxZipEntries)
    return { ok: false, reason: 'too-many-entries', detail: `the message has ${candidates.length} report attachments; at most ${limits.maxZipEntries}` };
  return readAttachment(candidates[0], limits);
}
