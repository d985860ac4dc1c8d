/**
 * The bounded label values and histogram buckets of Kurir's metrics (see ./metrics.ts). Every label
 * value a metric may carry is listed here, which is what keeps the series count bounded.
 */
export const METRIC_PREFIX = 'kurir_';

export const INTAKE_INTERFACES = ['smtp', 'http'] as const;
export type IntakeInterface = (typeof INTAKE_INTERFACES)[number];

export const PRIORITIES = ['verification', 'normal', 'bulk'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Delivery queue states: `waiting` is ready to run, taken in priority order. */
export const QUEUE_STATES = ['waiting', 'delayed', 'active', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export const DELIVERY_RESULTS = ['delivered', 'deferred', 'bounced', 'expired'] as const;
export type DeliveryResult = (typeof DELIVERY_RESULTS)[number];

/** Outcome categories (`category` labels), authentication-refusal causes and bounce types, shared with the bounce rules. */
export { AUTH_CAUSES, BOUNCE_TYPES, DELIVERY_CATEGORIES, type AuthCause, type BounceType, type DeliveryCategory } from '../lib/outcome-categories.js';

/** The receiver's authentication checks read from a placement probe's Authentication-Results. */
export const PROBE_AUTH_METHODS = ['dkim', 'spf', 'dmarc'] as const;
export type ProbeAuthMethod = (typeof PROBE_AUTH_METHODS)[number];
/**
 * A verdict as the `result` label: pass; fail (fail, softfail, permerror, and DKIM's "policy", a key the
 * receiver refuses); none (no signature, no record); other (neutral, temperror, anything unknown).
 */
export const PROBE_AUTH_RESULTS = ['pass', 'fail', 'none', 'other'] as const;
export type ProbeAuthResult = (typeof PROBE_AUTH_RESULTS)[number];

/** Buckets a receiver's verdict word into {@link PROBE_AUTH_RESULTS}. */
export function probeAuthResult(verdict: string): ProbeAuthResult {
  const v = verdict.toLowerCase();
  if (v === 'pass' || v === 'none') return v;
  return v === 'fail' || v === 'softfail' || v === 'permerror' || v === 'policy' ? 'fail' : 'other';
}

/**
 * Where a probe was found in a seed mailbox: INBOX, the spam folder (SPECIAL-USE \Junk or a known name),
 * any other folder (tabs, labels, rules), or nowhere by the deadline. A seed that could not be searched
 * gives no placement result (see SEED_ERROR_REASONS).
 */
export const PLACEMENT_FOLDERS = ['inbox', 'spam', 'other', 'missing'] as const;
export type PlacementFolder = (typeof PLACEMENT_FOLDERS)[number];

/** Why a seed mailbox could not be searched: login refused, no connection, over quota, an IMAP error. */
export const SEED_ERROR_REASONS = ['auth', 'connect', 'mailbox-full', 'protocol'] as const;
export type SeedErrorReason = (typeof SEED_ERROR_REASONS)[number];

/** sent: 2xx; failed: an attempt that failed (it may be retried); held: an event put back for a while because the key's webhook is paused. */
export const WEBHOOK_RESULTS = ['sent', 'failed', 'held'] as const;
export type WebhookResult = (typeof WEBHOOK_RESULTS)[number];

/**
 * Which audit entry could not be written (src/http/audit-trail.ts): a read that returned personal data and was
 * answered anyway (view), an export's (its first entry, then the refusal's; or a finished export's count), or a change.
 */
export const AUDIT_WRITE_KINDS = ['view', 'export', 'change'] as const;
export type AuditWriteKind = (typeof AUDIT_WRITE_KINDS)[number];

/**
 * TLS failure result types, named as RFC 8460 (SMTP TLS Reporting) section 4.3 names them: negotiation
 * failures (4.3.1) and MTA-STS policy failures (4.3.2). DANE types are absent: Kurir does not do DANE.
 */
export const TLS_RESULT_TYPES = [
  'starttls-not-supported',
  'certificate-host-mismatch',
  'certificate-expired',
  'certificate-not-trusted',
  'validation-failure',
  'sts-policy-fetch-error',
  'sts-policy-invalid',
  'sts-webpki-invalid',
] as const;
export type TlsResultType = (typeof TLS_RESULT_TYPES)[number];

/** The MTA-STS policy modes whose sessions are counted (mode `none` and domains without a policy are not). */
export const MTA_STS_MODES = ['enforce', 'testing'] as const;
export type MtaStsMode = (typeof MTA_STS_MODES)[number];

/**
 * How a recipient domain's MTA-STS policy was found for one delivery attempt: fetched anew; taken from the
 * cache (TXT id unchanged, or the TXT lookup failed); taken from the cache because a new one could not be
 * fetched; not fetched (no cache, so delivery goes on as without a policy); no policy published; TXT lookup failed.
 */
export const MTA_STS_LOOKUP_RESULTS = ['fetched', 'cached', 'cached-fetch-failed', 'fetch-failed', 'not-found', 'dns-error'] as const;
export type MtaStsLookupResult = (typeof MTA_STS_LOOKUP_RESULTS)[number];
/**
 * Why DKIM signing at intake failed (`reason` of kurir_dkim_failures_total): the signer's DkimError code (no key for
 * the domain, the signature failed, no signing thread answered), or `internal` for any other error.
 */
export const DKIM_FAILURE_REASONS = ['DKIM_NO_KEY', 'DKIM_SIGN_FAILED', 'DKIM_UNAVAILABLE', 'internal'] as const;
export type DkimFailureReason = (typeof DKIM_FAILURE_REASONS)[number];

/** Why an authentication failed: SMTP user unknown or password wrong, HTTP API key unknown. */
export const AUTH_FAILURE_REASONS = ['unknown-user', 'bad-password', 'unknown-key'] as const;
export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

/** What an attempt was refused for: its client IP or user name is blocked, or (SMTP) too many failures on one connection. */
export const AUTH_BLOCK_SCOPES = ['ip', 'user', 'connection'] as const;
export type AuthBlockScope = (typeof AUTH_BLOCK_SCOPES)[number];

/** Which connection cap refused a connection: the per-client-IP one or the listener's total. */
export const CONNECTION_CAP_SCOPES = ['ip', 'total'] as const;
export type ConnectionCapScope = (typeof CONNECTION_CAP_SCOPES)[number];

/** Buckets for intake accept latency: 1 ms … 1 s. */
export const INTAKE_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Buckets for accept → delivered: 0.1 s … 1 h. 300 s is the verification SLO edge (alerts use le="300"). */
export const DELIVERY_TIME_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
/** Buckets for probe submission → arrival in the seed mailbox: 1 s … 30 min. */
export const PLACEMENT_ARRIVAL_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800];
/** Buckets for delivered → confirmed by the booking system: 10 s … 1 day. */
/** rspamd's actions (src/scoring/), as label values (spaces as dashes); anything else is `other`. */
export const RSPAMD_ACTIONS = ['no-action', 'greylist', 'add-header', 'rewrite-subject', 'soft-reject', 'reject', 'other'] as const;
export type RspamdAction = (typeof RSPAMD_ACTIONS)[number];

/** Why a sampled message went unscored: no answer in time, connection refused or lost, an answer that is no verdict. */
export const RSPAMD_SKIP_REASONS = ['timeout', 'unreachable', 'bad-answer'] as const;

/** rspamd scores: its default thresholds are 4 (greylist), 6 (add header) and 15 (reject). */
export const RSPAMD_SCORE_BUCKETS = [-2, 0, 1, 2, 4, 6, 8, 10, 15, 20, 30];

/** rspamd answers in about 0.1 s on loopback; the buckets reach the default 2 s timeout. */
export const RSPAMD_DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5];

export const CONFIRM_TIME_BUCKETS = [10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];

export interface QueueSnapshot {
  jobs: Array<{ state: QueueState; priority: Priority; count: number }>;
  /** Age of the oldest waiting (not yet delivered) verification job; 0 when there is none. */
  oldestVerificationAgeSeconds: number;
  /**
   * The same per provider (of the job's recipient domain): the `provider` label of
   * kurir_queue_oldest_verification_age_seconds. A provider absent here reads 0. When the whole map is
   * absent, the overall age is reported under provider "other".
   */
  oldestVerificationAgeByProvider?: Record<string, number>;
}
export type QueueProvider = () => Promise<QueueSnapshot>;

/**
 * Who sent a DMARC aggregate or TLS report (the `reporter` label): the large receivers by their
 * organisation name or report address, everyone else `other`. See {@link reporterLabel}.
 */
export const REPORTERS = ['google', 'microsoft', 'yahoo', 'apple', 'comcast', 'mailru', 'yandex', 'other'] as const;
export type Reporter = (typeof REPORTERS)[number];

const REPORTER_PATTERNS: Array<[Reporter, RegExp]> = [
  ['google', /\bgoogle\b|gmail/],
  ['microsoft', /microsoft|outlook|hotmail|office ?365/],
  ['yahoo', /yahoo|\baol\b/],
  ['apple', /\bapple\b|icloud/],
  ['comcast', /comcast/],
  ['mailru', /mail\.ru/],
  ['yandex', /yandex/],
];

/** The `reporter` label of a report's organisation name and contact address (bounded: {@link REPORTERS}). */
export function reporterLabel(orgName: string, contact = ''): Reporter {
  const s = `${orgName} ${contact}`.toLowerCase();
  return REPORTER_PATTERNS.find(([, re]) => re.test(s))?.[0] ?? 'other';
}

/** DMARC checks of Kurir's own mail a receiver can report failing (`check` label of kurir_dmarc_own_failures_total). */
export const DMARC_CHECKS = ['dkim', 'spf', 'dmarc'] as const;

/**
 * Caps the distinct values of a label that comes from input (a sender domain of a receiver's report): the
 * first `max` values seen are kept, every later one is `other`. The cap is per process.
 */
export function createLabelCap(max: number): (value: string) => string {
  const seen = new Set<string>();
  return (value) => {
    if (seen.has(value)) return value;
    if (seen.size >= max) return 'other';
    seen.add(value);
    return value;
  };
}
