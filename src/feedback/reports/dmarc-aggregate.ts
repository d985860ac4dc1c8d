/**
 * Reads a DMARC aggregate report (RFC 7489 appendix C; also the namespaced `urn:ietf:params:xml:ns:dmarc-2.0`
 * form and Microsoft's schema-less one with xsi/xsd prefixes) into plain data, or refuses it with a reason.
 *
 * Safe by construction: a DOCTYPE or ENTITY declaration anywhere is refused before parsing (no DTD, no entity
 * expansion: billion laughs and external entities never reach the parser), the parser runs with entity
 * processing off, the record count is checked on the raw text before a tree is built, and every field is
 * validated (an IP address, a count, a date) — one bad record refuses the whole report, nothing half-read.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { isIpAddress } from '../../lib/client-address.js';

/** Why a report's content was refused (a bounded metric label set). */
export const CONTENT_REFUSALS = ['dtd-refused', 'malformed-xml', 'malformed-json', 'too-many-records', 'invalid-report', 'not-a-report'] as const;
export type ContentRefusal = (typeof CONTENT_REFUSALS)[number];

export type Refused = { ok: false; reason: ContentRefusal; detail: string };

/** One `<record>`: a source IP, how many messages it sent, and what the receiver found. */
export interface DmarcRecord {
  sourceIp: string;
  count: number;
  /** policy_evaluated: the DMARC-aligned results. */
  dkimAligned: boolean;
  spfAligned: boolean;
  disposition: string;
  /** identifiers/header_from, lower-cased (the policy domain when absent). */
  headerFrom: string;
  /** auth_results: any DKIM signature / the SPF check passed (aligned or not). */
  dkimPass: boolean;
  spfPass: boolean;
}

export interface DmarcReport {
  kind: 'dmarc';
  orgName: string;
  email: string;
  reportId: string;
  /** date_range, Unix seconds. */
  begin: number;
  end: number;
  policyDomain: string;
  policy: string;
  records: DmarcRecord[];
}

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (_name, jpath) => jpath === 'feedback.record' || jpath === 'feedback.record.auth_results.dkim' || jpath === 'feedback.record.auth_results.spf',
});

const DTD = /<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i;
const RECORD_TAG = /<(?:[A-Za-z_][\w.-]*:)?record[\s/>]/g;
const MAX_FIELD = 256;

const refuse = (reason: ContentRefusal, detail: string): Refused => ({ ok: false, reason, detail });
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
const text = (v: unknown): string => (typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : '');

class Invalid extends Error {}

function field(v: unknown, what: string, required = true): string {
  const s = text(v);
  if (required && !s) throw new Invalid(`${what} is missing`);
  if (s.length > MAX_FIELD) throw new Invalid(`${what} is longer than ${MAX_FIELD} characters`);
  return s;
}

function integer(v: unknown, what: string, max: number): number {
  const s = text(v);
  if (!/^\d{1,15}$/.test(s) || Number(s) > max) throw new Invalid(`${what} is not an integer between 0 and ${max}: ${JSON.stringify(s.slice(0, 40))}`);
  return Number(s);
}

/** Counts `<record>` elements on the raw text, so a report with too many is refused before a tree is built. */
export function countRecords(xml: string): number {
  let n = 0;
  RECORD_TAG.lastIndex = 0;
  while (RECORD_TAG.exec(xml)) n++;
  return n;
}

function readRecord(raw: unknown, index: number, policyDomain: string): DmarcRecord {
  const r = obj(raw);
  const row = obj(r.row);
  const where = `record ${index + 1}`;
  const sourceIp = field(row.source_ip, `${where}: source_ip`);
  if (!isIpAddress(sourceIp)) throw new Invalid(`${where}: source_ip is not an IP address: ${JSON.stringify(sourceIp.slice(0, 60))}`);
  const evaluated = obj(row.policy_evaluated);
  const auth = obj(r.auth_results);
  const passes = (list: unknown): boolean => arr(list).some((x) => text(obj(x).result).toLowerCase() === 'pass');
  return {
    sourceIp,
    count: integer(row.count, `${where}: count`, 1e9),
    dkimAligned: text(evaluated.dkim).toLowerCase() === 'pass',
    spfAligned: text(evaluated.spf).toLowerCase() === 'pass',
    disposition: field(evaluated.disposition, `${where}: disposition`, false).toLowerCase(),
    headerFrom: (field(obj(r.identifiers).header_from, `${where}: header_from`, false) || policyDomain).toLowerCase(),
    dkimPass: passes(auth.dkim),
    spfPass: passes(auth.spf),
  };
}

/** Parses the XML of a DMARC aggregate report; at most `maxRecords` records. */
export function parseDmarcAggregate(xml: string, maxRecords: number): { ok: true; report: DmarcReport } | Refused {
  if (DTD.test(xml)) return refuse('dtd-refused', 'the XML declares a DTD or entities (<!DOCTYPE / <!ENTITY): refused, never expanded');
  const records = countRecords(xml);
  if (records > maxRecords) return refuse('too-many-records', `the report has ${records} records; at most ${maxRecords}`);
  const valid = XMLValidator.validate(xml, { allowBooleanAttributes: false });
  if (valid !== true) {
    const e = valid.err;
    return refuse('malformed-xml', `not well-formed XML (line ${e.line}: ${e.msg.slice(0, 160)})`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = obj(parser.parse(xml));
  } catch (err) {
    return refuse('malformed-xml', `XML: ${String((err as Error).message).slice(0, 160)}`);
  }
  if (!('feedback' in doc)) return refuse('not-a-report', 'the XML has no <feedback> root: not a DMARC aggregate report');
  try {
    const feedback = obj(doc.feedback);
    const meta = obj(feedback.report_metadata);
    const range = obj(meta.date_range);
    const published = obj(feedback.policy_published);
    const policyDomain = field(published.domain, 'policy_published/domain').toLowerCase();
    const report: DmarcReport = {
      kind: 'dmarc',
      orgName: field(meta.org_name, 'report_metadata/org_name'),
      email: field(meta.email, 'report_metadata/email', false),
      reportId: field(meta.report_id, 'report_metadata/report_id'),
      begin: integer(range.begin, 'date_range/begin', 1e11),
      end: integer(range.end, 'date_range/end', 1e11),
      policyDomain,
      policy: field(published.p, 'policy_published/p', false).toLowerCase(),
      records: arr(feedback.record).map((r, i) => readRecord(r, i, policyDomain)),
    };
    if (report.end < report.begin) throw new Invalid('date_range/end is before date_range/begin');
    return { ok: true, report };
  } catch (err) {
    if (err instanceof Invalid) return refuse('invalid-report', err.message);
    throw err;
  }
}
