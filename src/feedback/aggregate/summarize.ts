/**
 * Turns a parsed DMARC aggregate or TLS report into what is stored (./../../store/report-store.ts) and
 * counted: per sender domain and reporter, messages, DKIM/SPF passes, DMARC-aligned passes, Kurir's own
 * sending IPs (`domainKeys.sendingIps`) apart from everyone else's, and TLS sessions per policy and failure
 * type. Records about domains Kurir does not send for are left out (and counted as skipped).
 */
import { createHash } from 'node:crypto';
import type { DmarcReport } from '../reports/dmarc-aggregate.js';
import type { TlsReport } from '../reports/tls-rpt.js';
import type { DomainCounts, ReportWrite } from '../../store/report-store.js';

const DAY_MS = 86_400_000;

/** A field-safe organisation name: lower-case, no tabs or control characters, at most 64 characters. */
export function orgKey(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/\p{Cc}+/gu, ' ')
      .trim()
      .slice(0, 64) || 'unknown'
  );
}

export interface SummarizeContext {
  now: number;
  retentionDays: number;
  maxForeignSources: number;
  isOwnIp: (ip: string) => boolean;
  /** Domains (lower-case) of the report that Kurir sends for or receives at. */
  known: ReadonlySet<string>;
}

/** Per-domain DMARC counters of one report, for metrics and the API. */
export interface DmarcTally {
  messages: number;
  dkimPass: number;
  spfPass: number;
  dkimAligned: number;
  spfAligned: number;
  dmarcPass: number;
  ownMessages: number;
  ownDkimFail: number;
  ownSpfFail: number;
  ownDmarcFail: number;
  foreignMessages: number;
  foreignDmarcPass: number;
}

export interface Summary {
  write: ReportWrite;
  org: string;
  /** Records (DMARC) or policies (TLS) about domains that are not Kurir's, left out. */
  skipped: number;
  dmarc: Map<string, DmarcTally>;
  tls: Map<string, TlsReport['policies']>;
}

/** The report's UTC day (by the start of its range), kept inside the retention window. */
function dayOf(beginSeconds: number, ctx: SummarizeContext): { day: string; expireAt: number } {
  const today = Math.floor(ctx.now / DAY_MS);
  const day = Math.min(today, Math.max(today - ctx.retentionDays + 1, Math.floor((beginSeconds * 1000) / DAY_MS)));
  return { day: new Date(day * DAY_MS).toISOString().slice(0, 10), expireAt: (day + 1 + ctx.retentionDays) * DAY_MS };
}

/** What the store writes for a report: its day (by `begin`), expiry and seen mark. */
function reportWrite(kind: ReportWrite['kind'], id: string, begin: number, ctx: SummarizeContext, domains: DomainCounts[]): ReportWrite {
  return { kind, digest: id, ...dayOf(begin, ctx), seenTtlMs: ctx.retentionDays * DAY_MS, domains };
}

function digest(kind: string, org: string, contact: string, id: string): string {
  return createHash('sha256').update(`${kind}\n${org}\n${contact.toLowerCase()}\n${id}`).digest('hex');
}

const emptyTally = (): DmarcTally => ({
  messages: 0,
  dkimPass: 0,
  spfPass: 0,
  dkimAligned: 0,
  spfAligned: 0,
  dmarcPass: 0,
  ownMessages: 0,
  ownDkimFail: 0,
  ownSpfFail: 0,
  ownDmarcFail: 0,
  foreignMessages: 0,
  foreignDmarcPass: 0,
});

/** Summarises a DMARC aggregate report. */
export function summarizeDmarc(r: DmarcReport, ctx: SummarizeContext): Summary {
  const org = orgKey(r.orgName);
  const tallies = new Map<string, DmarcTally>();
  const sources = new Map<string, Map<string, { messages: number; pass: number }>>();
  let skipped = 0;
  for (const rec of r.records) {
    if (!ctx.known.has(rec.headerFrom)) {
      skipped++;
      continue;
    }
    const t = tallies.get(rec.headerFrom) ?? emptyTally();
    tallies.set(rec.headerFrom, t);
    const n = rec.count;
    const dmarc = rec.dkimAligned || rec.spfAligned;
    t.messages += n;
    if (rec.dkimPass) t.dkimPass += n;
    if (rec.spfPass) t.spfPass += n;
    if (rec.dkimAligned) t.dkimAligned += n;
    if (rec.spfAligned) t.spfAligned += n;
    if (dmarc) t.dmarcPass += n;
    if (ctx.isOwnIp(rec.sourceIp)) {
      t.ownMessages += n;
      if (!rec.dkimAligned) t.ownDkimFail += n;
      if (!rec.spfAligned) t.ownSpfFail += n;
      if (!dmarc) t.ownDmarcFail += n;
    } else {
      t.foreignMessages += n;
      if (dmarc) t.foreignDmarcPass += n;
      const ips = sources.get(rec.headerFrom) ?? new Map<string, { messages: number; pass: number }>();
      sources.set(rec.headerFrom, ips);
      const ip = ips.has(rec.sourceIp) || ips.size < ctx.maxForeignSources ? rec.sourceIp : 'other';
      const s = ips.get(ip) ?? { messages: 0, pass: 0 };
      ips.set(ip, s);
      s.messages += n;
      if (dmarc) s.pass += n;
    }
  }
  const domains: DomainCounts[] = [...tallies].map(([domain, t]) => {
    const counts: Record<string, number> = { [`${org}\treports`]: 1 };
    for (const [k, v] of Object.entries(t)) counts[`${org}\t${k}`] = v;
    const src: Record<string, number> = {};
    for (const [ip, s] of sources.get(domain) ?? []) {
      src[ip] = s.messages;
      src[`${ip}\tpass`] = s.pass;
    }
    const recent = {
      kind: 'dmarc',
      org: r.orgName,
      reportId: r.reportId,
      begin: r.begin,
      end: r.end,
      messages: t.messages,
      dmarcPass: t.dmarcPass,
      foreignMessages: t.foreignMessages,
    };
    return { domain, counts, sources: src, recent };
  });
  return { write: reportWrite('dmarc', digest('dmarc', org, r.email, r.reportId), r.begin, ctx, domains), org, skipped, dmarc: tallies, tls: new Map() };
}

/** Summarises an SMTP TLS report. */
export function summarizeTls(r: TlsReport, ctx: SummarizeContext): Summary {
  const org = orgKey(r.orgName);
  const byDomain = new Map<string, TlsReport['policies']>();
  let skipped = 0;
  for (const p of r.policies) {
    if (!ctx.known.has(p.policyDomain)) {
      skipped++;
      continue;
    }
    byDomain.set(p.policyDomain, [...(byDomain.get(p.policyDomain) ?? []), p]);
  }
  const domains: DomainCounts[] = [...byDomain].map(([domain, policies]) => {
    const counts: Record<string, number> = { [`${org}\treports`]: 1 };
    const add = (field: string, n: number): void => {
      counts[`${org}\t${field}`] = (counts[`${org}\t${field}`] ?? 0) + n;
    };
    for (const p of policies) {
      add(`${p.policyType}\tsuccess`, p.successful);
      add(`${p.policyType}\tfailure`, p.failed);
      for (const f of p.failures) add(`result\t${f.resultType}`, f.sessions);
    }
    const recent = {
      kind: 'tlsrpt',
      org: r.orgName,
      reportId: r.reportId,
      begin: r.begin,
      end: r.end,
      successful: policies.reduce((n, p) => n + p.successful, 0),
      failed: policies.reduce((n, p) => n + p.failed, 0),
    };
    return { domain, counts, recent };
  });
  const write = reportWrite('tlsrpt', digest('tlsrpt', org, r.contact, r.reportId), r.begin, ctx, domains);
  return { write, org, skipped, dmarc: new Map(), tls: byDomain };
}
