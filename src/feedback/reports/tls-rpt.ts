/**
 * Reads an SMTP TLS report (RFC 8460 section 4, JSON) into plain data, or refuses it with a reason: every
 * field checked (types, counts, dates), at most `maxRecords` policies and failure details together, one bad
 * entry refuses the whole report.
 */
import type { ContentRefusal, Refused } from './dmarc-aggregate.js';

/** The failure result types RFC 8460 section 4.3 names; anything else is read as `other`. */
export const TLSRPT_RESULT_TYPES = [
  'starttls-not-supported',
  'certificate-host-mismatch',
  'certificate-expired',
  'certificate-not-trusted',
  'validation-failure',
  'tlsa-invalid',
  'dnssec-invalid',
  'dane-required',
  'sts-policy-fetch-error',
  'sts-policy-invalid',
  'sts-webpki-invalid',
  'other',
] as const;
export type TlsRptResultType = (typeof TLSRPT_RESULT_TYPES)[number];

export const TLSRPT_POLICY_TYPES = ['sts', 'tlsa', 'no-policy-found'] as const;
export type TlsRptPolicyType = (typeof TLSRPT_POLICY_TYPES)[number];

export interface TlsRptPolicy {
  policyType: TlsRptPolicyType;
  policyDomain: string;
  successful: number;
  failed: number;
  failures: Array<{ resultType: TlsRptResultType; sessions: number; sendingIp: string; receivingMx: string }>;
}

export interface TlsReport {
  kind: 'tlsrpt';
  orgName: string;
  contact: string;
  reportId: string;
  /** date-range, Unix seconds. */
  begin: number;
  end: number;
  policies: TlsRptPolicy[];
}

const MAX_FIELD = 256;
const MAX_COUNT = 1e12;

class Invalid extends Error {}

const refuse = (reason: ContentRefusal, detail: string): Refused => ({ ok: false, reason, detail });
const obj = (v: unknown, what: string): Record<string, unknown> => {
  if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  throw new Invalid(`${what} is not an object`);
};

function str(v: unknown, what: string, required = true): string {
  if (v === undefined && !required) return '';
  if (typeof v !== 'string' || (required && !v.trim())) throw new Invalid(`${what} is missing or not a string`);
  if (v.length > MAX_FIELD) throw new Invalid(`${what} is longer than ${MAX_FIELD} characters`);
  return v.trim();
}

function count(v: unknown, what: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_COUNT) throw new Invalid(`${what} is not a count: ${JSON.stringify(v)?.slice(0, 40)}`);
  return v;
}

function time(v: unknown, what: string): number {
  const ms = Date.parse(str(v, what));
  if (Number.isNaN(ms)) throw new Invalid(`${what} is not an RFC 3339 date-time`);
  return Math.floor(ms / 1000);
}

function readPolicy(raw: unknown, i: number, budget: { left: number }): TlsRptPolicy {
  const where = `policies[${i}]`;
  const p = obj(raw, where);
  const policy = obj(p.policy, `${where}.policy`);
  const summary = obj(p.summary, `${where}.summary`);
  const type = str(policy['policy-type'], `${where}.policy.policy-type`);
  if (!(TLSRPT_POLICY_TYPES as readonly string[]).includes(type))
    throw new Invalid(`${where}.policy.policy-type is not sts, tlsa or no-policy-found: ${type.slice(0, 40)}`);
  const details = p['failure-details'] === undefined ? [] : p['failure-details'];
  if (!Array.isArray(details)) throw new Invalid(`${where}.failure-details is not an array`);
  budget.left -= details.length;
  if (budget.left < 0) throw new Invalid('too many');
  return {
    policyType: type as TlsRptPolicyType,
    policyDomain: str(policy['policy-domain'], `${where}.policy.policy-domain`).toLowerCase(),
    successful: count(summary['total-successful-session-count'], `${where}.summary.total-successful-session-count`),
    failed: count(summary['total-failure-session-count'], `${where}.summary.total-failure-session-count`),
    failures: details.map((d, j) => {
      const w = `${where}.failure-details[${j}]`;
      const f = obj(d, w);
      const rt = str(f['result-type'], `${w}.result-type`).toLowerCase();
      return {
        resultType: ((TLSRPT_RESULT_TYPES as readonly string[]).includes(rt) ? rt : 'other') as TlsRptResultType,
        sessions: count(f['failed-session-count'], `${w}.failed-session-count`),
        sendingIp: str(f['sending-mta-ip'], `${w}.sending-mta-ip`, false),
        receivingMx: str(f['receiving-mx-hostname'], `${w}.receiving-mx-hostname`, false),
      };
    }),
  };
}

/** Parses the JSON of a TLS report; at most `maxRecords` policies plus failure details. */
export function parseTlsReport(json: string, maxRecords: number): { ok: true; report: TlsReport } | Refused {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    return refuse('malformed-json', `not valid JSON (${String((err as Error).message).slice(0, 120)})`);
  }
  try {
    const r = obj(doc, 'the report');
    if (!('policies' in r) || !('report-id' in r)) return refuse('not-a-report', 'the JSON has no report-id and policies: not an SMTP TLS report');
    const range = obj(r['date-range'], 'date-range');
    if (!Array.isArray(r.policies)) throw new Invalid('policies is not an array');
    const budget = { left: maxRecords - r.policies.length };
    if (budget.left < 0) return refuse('too-many-records', `the report has ${r.policies.length} policies; at most ${maxRecords} entries`);
    const report: TlsReport = {
      kind: 'tlsrpt',
      orgName: str(r['organization-name'], 'organization-name'),
      contact: str(r['contact-info'], 'contact-info', false),
      reportId: str(r['report-id'], 'report-id'),
      begin: time(range['start-datetime'], 'date-range.start-datetime'),
      end: time(range['end-datetime'], 'date-range.end-datetime'),
      policies: r.policies.map((p, i) => readPolicy(p, i, budget)),
    };
    return { ok: true, report };
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    if (err.message === 'too many') return refuse('too-many-records', `the report has more than ${maxRecords} policies and failure details`);
    return refuse('invalid-report', err.message);
  }
}
