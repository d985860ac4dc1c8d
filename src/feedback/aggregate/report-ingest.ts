/**
 * Applies a DMARC aggregate or SMTP TLS report received at the bounce MX (`<domainKeys.dmarcReportLocalPart>@`
 * and `<feedback.reports.tlsRptLocalPart>@<bounce.domain>`) or posted to POST /v1/reports: read within the
 * bounds (src/feedback/reports/aggregate-report.ts), keep what is about Kurir's domains, store it once per
 * report id (src/store/report-store.ts) and count it (src/metrics/).
 *
 * A report that cannot be used is an outcome (`refused` with a reason), counted in
 * kurir_reports_refused_total and logged — never an exception, and nothing is written. Only a Redis
 * failure throws, so the sender retries later.
 */
import type { Config } from '../../config/schema.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import { createLabelCap, reporterLabel, type Metrics } from '../../metrics/metrics.js';
import type { Redis } from 'ioredis';
import { DomainStore } from '../../store/domain-store.js';
import type { Keys } from '../../store/keys.js';
import { ReportStore } from '../../store/report-store.js';
import { readAggregateReport, type AggregateReport, type AttachmentReader, type ReportRefusal } from '../reports/aggregate-report.js';
import { createIpMatcher } from '../../lib/client-address.js';
import { ReportPool } from './report-pool.js';
import { summarizeDmarc, summarizeTls, type Summary } from './summarize.js';

export interface ReportIngestDeps {
  config: Config;
  store: ReportStore;
  /** Runtime-managed sender domains; without it only configured domains (and the bounce domain) are Kurir's. */
  domains?: Pick<DomainStore, 'get'>;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  /** What unpacks and parses an attachment (a {@link ReportPool}'s `read`); in this thread when absent. */
  readAttachment?: AttachmentReader;
}

export type RefusalReason = ReportRefusal | 'unknown-domain';

export type ReportOutcome =
  | { result: 'applied' | 'duplicate'; kind: 'dmarc' | 'tlsrpt'; org: string; reportId: string; domains: string[]; skipped: number }
  | { result: 'refused'; reason: RefusalReason; detail: string };

/** Where a report came from: the transport (a metric label) and, for the log, the session. */
export interface ReportSource {
  via: 'smtp' | 'http';
  sessionId?: string;
  remoteAddress?: string;
}

/** Distinct sender domains looked up in Redis per report; more are treated as not Kurir's. */
const MAX_LOOKUPS = 50;
/** Distinct `domain` label values per process; further domains are labelled `other` (only Kurir's own domains get this far). */
export const MAX_DOMAIN_LABELS = 200;

/** Reads, filters, stores and counts DMARC aggregate and TLS reports. */
export class ReportIngest {
  private readonly isOwnIp: (ip: string) => boolean;
  private readonly configured: Set<string>;
  private readonly domainLabel = createLabelCap(MAX_DOMAIN_LABELS);

  constructor(private readonly deps: ReportIngestDeps) {
    this.isOwnIp = createIpMatcher(deps.config.domainKeys.sendingIps);
    this.configured = new Set(deps.config.domains.map((d) => d.name.toLowerCase()));
  }

  /** Applies one report; resolves `refused` for anything unusable, rejects only when Redis fails. */
  async ingest(bytes: Uint8Array, source: ReportSource): Promise<ReportOutcome> {
    const { config, metrics } = this.deps;
    const r = config.feedback.reports;
    const read = await readAggregateReport(bytes, r, this.deps.readAttachment);
    if (!read.ok) return this.refuse(source, read.reason, read.detail);
    const report = read.report;
    const known = await this.knownDomains(report);
    const ctx = { now: this.deps.clock.now(), retentionDays: r.retentionDays, maxForeignSources: r.maxForeignSources, isOwnIp: this.isOwnIp, known };
    const summary = report.kind === 'dmarc' ? summarizeDmarc(report, ctx) : summarizeTls(report, ctx);
    if (!summary.write.domains.length) {
      const about = report.kind === 'dmarc' ? report.policyDomain : [...new Set(report.policies.map((p) => p.policyDomain))].join(', ');
      return this.refuse(source, 'unknown-domain', `the report is about ${about.slice(0, 200)}, not a domain Kurir sends for`);
    }
    const applied = await this.deps.store.apply(summary.write);
    const reporter = reporterLabel(report.orgName, report.kind === 'dmarc' ? report.email : report.contact);
    metrics.reportsReceived.inc({ kind: report.kind, reporter, result: applied ? 'applied' : 'duplicate' });
    if (applied) this.count(summary, reporter);
    const outcome: ReportOutcome = {
      result: applied ? 'applied' : 'duplicate',
      kind: report.kind,
      org: report.orgName,
      reportId: report.reportId,
      domains: summary.write.domains.map((d) => d.domain),
      skipped: summary.skipped,
    };
    this.deps.logger.info(
      { component: 'reports', via: source.via, sid: source.sessionId, remote: source.remoteAddress, container: read.container, ...outcome },
      applied ? 'report applied' : 'report already applied (duplicate)',
    );
    return outcome;
  }

  private refuse(source: ReportSource, reason: RefusalReason, detail: string): ReportOutcome {
    this.deps.metrics.reportsRefused.inc({ via: source.via, reason });
    this.deps.logger.info({ component: 'reports', via: source.via, sid: source.sessionId, remote: source.remoteAddress, reason, detail }, 'report refused');
    return { result: 'refused', reason, detail };
  }

  /** Whether Kurir sends for the domain (configured or runtime-managed, not removed) or receives at it (the bounce domain). */
  async isKurirDomain(domain: string): Promise<boolean> {
    const d = domain.toLowerCase();
    if (this.configured.has(d) || d === this.deps.config.bounce.domain.toLowerCase()) return true;
    const rec = await this.deps.domains?.get(d);
    return !!rec && rec.state !== 'removed';
  }

  /** The report's domains that Kurir sends for (configured or runtime-managed), plus the bounce domain for TLS reports. */
  private async knownDomains(report: AggregateReport): Promise<Set<string>> {
    const named = report.kind === 'dmarc' ? new Set(report.records.map((r) => r.headerFrom)) : new Set(report.policies.map((p) => p.policyDomain));
    const known = new Set<string>();
    const lookup: string[] = [];
    for (const d of named) {
      if (this.configured.has(d) || (report.kind === 'tlsrpt' && d === this.deps.config.bounce.domain.toLowerCase())) known.add(d);
      else if (lookup.length < MAX_LOOKUPS && /^[a-z0-9.-]{1,253}$/.test(d)) lookup.push(d);
    }
    if (this.deps.domains) {
      const records = await Promise.all(lookup.map((d) => this.deps.domains!.get(d)));
      records.forEach((rec, i) => {
        if (rec && rec.state !== 'removed') known.add(lookup[i]);
      });
    }
    return known;
  }

  private count(summary: Summary, reporter: string): void {
    const m = this.deps.metrics;
    for (const [d, t] of summary.dmarc) {
      const domain = this.domainLabel(d);
      const add = (source: string, dmarc: string, n: number): void => {
        if (n) m.dmarcMessages.inc({ domain, reporter, source, dmarc }, n);
      };
      add('own', 'pass', t.ownMessages - t.ownDmarcFail);
      add('own', 'fail', t.ownDmarcFail);
      add('foreign', 'pass', t.foreignDmarcPass);
      add('foreign', 'fail', t.foreignMessages - t.foreignDmarcPass);
      for (const [check, n] of [
        ['dkim', t.ownDkimFail],
        ['spf', t.ownSpfFail],
        ['dmarc', t.ownDmarcFail],
      ] as const)
        if (n) m.dmarcOwnFailures.inc({ domain, reporter, check }, n);
    }
    for (const [d, policies] of summary.tls) {
      const domain = this.domainLabel(d);
      for (const p of policies) {
        if (p.successful) m.tlsRptSessions.inc({ domain, reporter, policy: p.policyType, result: 'success' }, p.successful);
        if (p.failed) m.tlsRptSessions.inc({ domain, reporter, policy: p.policyType, result: 'failure' }, p.failed);
        for (const f of p.failures) if (f.sessions) m.tlsRptFailures.inc({ domain, reporter, result_type: f.resultType }, f.sessions);
      }
    }
  }
}

/**
 * The report ingest and store of a gateway (roles feedback and api), over its Redis, reading reports in a
 * thread pool (threads start with the first report); `close` stops the pool.
 */
export function createReports(deps: Omit<ReportIngestDeps, 'store' | 'domains' | 'readAttachment'> & { redis: Redis; keys: Keys }): {
  ingest: ReportIngest;
  store: ReportStore;
  close: () => Promise<void>;
} {
  const r = deps.config.feedback.reports;
  const pool = new ReportPool({ threads: r.parseThreads, maxQueued: r.maxQueuedReports, maxParseMs: r.maxParseSeconds * 1000, logger: deps.logger });
  const store = new ReportStore(deps.redis, deps.keys);
  const ingest = new ReportIngest({ ...deps, store, domains: new DomainStore(deps.redis, deps.keys), readAttachment: (b, l) => pool.read(b, l) });
  return { ingest, store, close: () => pool.close() };
}
