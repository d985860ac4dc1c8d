/**
 * What GET /v1/domains/:domain/reports answers: a domain's DMARC aggregate and TLS-RPT counts over the last
 * `days` days, per reporting organisation, with pass rates, Kurir's own IPs apart from foreign sources (the
 * largest first), and the recently applied reports.
 */
import type { Clock } from '../../lib/clock.js';
import type { DayCounts, ReportStore } from '../../store/report-store.js';

const DAY_MS = 86_400_000;
const TOP_SOURCES = 50;
const DMARC_COUNTERS = [
  'reports',
  'messages',
  'dkimPass',
  'spfPass',
  'dkimAligned',
  'spfAligned',
  'dmarcPass',
  'ownMessages',
  'ownDkimFail',
  'ownSpfFail',
  'ownDmarcFail',
  'foreignMessages',
  'foreignDmarcPass',
] as const;
type DmarcCounts = Record<(typeof DMARC_COUNTERS)[number], number>;

export interface DmarcTotals extends DmarcCounts {
  /** Shares of `messages` (0–1; null without messages). */
  rates: { dkim: number | null; spf: number | null; dkimAligned: number | null; spfAligned: number | null; dmarc: number | null };
}

export interface TlsTotals {
  reports: number;
  successful: number;
  failed: number;
  policies: Array<{ policy: string; successful: number; failed: number }>;
  failures: Array<{ resultType: string; sessions: number }>;
}

export interface DomainReportsView {
  domain: string;
  days: number;
  since: string;
  dmarc: DmarcTotals & { reporters: Array<{ org: string } & DmarcTotals>; foreignSources: Array<{ ip: string; messages: number; dmarcPass: number }> };
  tlsRpt: TlsTotals & { reporters: Array<{ org: string } & TlsTotals> };
  recent: Array<Record<string, unknown>>;
}

const ratio = (n: number, of: number): number | null => (of ? Math.round((n / of) * 10_000) / 10_000 : null);
const zero = (): DmarcCounts => Object.fromEntries(DMARC_COUNTERS.map((c) => [c, 0])) as DmarcCounts;
const withRates = (c: DmarcCounts): DmarcTotals => ({
  ...c,
  rates: {
    dkim: ratio(c.dkimPass, c.messages),
    spf: ratio(c.spfPass, c.messages),
    dkimAligned: ratio(c.dkimAligned, c.messages),
    spfAligned: ratio(c.spfAligned, c.messages),
    dmarc: ratio(c.dmarcPass, c.messages),
  },
});
const emptyTls = (): TlsTotals => ({ reports: 0, successful: 0, failed: 0, policies: [], failures: [] });

function addTls(t: TlsTotals, field: string[], n: number): void {
  if (field[0] === 'reports') t.reports += n;
  else if (field[0] === 'result') {
    const row = t.failures.find((f) => f.resultType === field[1]) ?? t.failures[t.failures.push({ resultType: field[1], sessions: 0 }) - 1];
    row.sessions += n;
  } else if (field.length === 2) {
    const row = t.policies.find((p) => p.policy === field[0]) ?? t.policies[t.policies.push({ policy: field[0], successful: 0, failed: 0 }) - 1];
    if (field[1] === 'success') {
      row.successful += n;
      t.successful += n;
    } else {
      row.failed += n;
      t.failed += n;
    }
  }
}

/** Sums the stored days into the view. */
export function reportsView(domain: string, days: number, since: number, rows: DayCounts[], recent: Array<Record<string, unknown>>): DomainReportsView {
  const total = zero();
  const byOrg = new Map<string, DmarcCounts>();
  const sources = new Map<string, { messages: number; dmarcPass: number }>();
  const tls = emptyTls();
  const tlsByOrg = new Map<string, TlsTotals>();
  for (const row of rows) {
    for (const [field, value] of Object.entries(row.dmarc)) {
      const [org, counter] = field.split('\t');
      if (!(DMARC_COUNTERS as readonly string[]).includes(counter)) continue;
      const c = byOrg.get(org) ?? zero();
      byOrg.set(org, c);
      c[counter as keyof DmarcCounts] += Number(value);
      total[counter as keyof DmarcCounts] += Number(value);
    }
    for (const [field, value] of Object.entries(row.sources)) {
      const [ip, pass] = field.split('\t');
      const s = sources.get(ip) ?? { messages: 0, dmarcPass: 0 };
      sources.set(ip, s);
      if (pass) s.dmarcPass += Number(value);
      else s.messages += Number(value);
    }
    for (const [field, value] of Object.entries(row.tls)) {
      const [org, ...rest] = field.split('\t');
      const t = tlsByOrg.get(org) ?? emptyTls();
      tlsByOrg.set(org, t);
      addTls(t, rest, Number(value));
      addTls(tls, rest, Number(value));
    }
  }
  return {
    domain,
    days,
    since: new Date(since).toISOString(),
    dmarc: {
      ...withRates(total),
      reporters: [...byOrg].map(([org, c]) => ({ org, ...withRates(c) })).sort((a, b) => b.messages - a.messages),
      foreignSources: [...sources]
        .map(([ip, s]) => ({ ip, ...s }))
        .sort((a, b) => b.messages - a.messages)
        .slice(0, TOP_SOURCES),
    },
    tlsRpt: { ...tls, reporters: [...tlsByOrg].map(([org, t]) => ({ org, ...t })).sort((a, b) => b.failed - a.failed || b.successful - a.successful) },
    recent,
  };
}

/** Reads a domain's last `days` UTC days (today included) and sums them. */
export async function domainReports(store: ReportStore, clock: Clock, domain: string, days: number): Promise<DomainReportsView> {
  const today = Math.floor(clock.now() / DAY_MS);
  const list = Array.from({ length: days }, (_, i) => new Date((today - i) * DAY_MS).toISOString().slice(0, 10));
  const d = domain.toLowerCase();
  const [rows, recent] = await Promise.all([store.days(d, list), store.recent(d)]);
  return reportsView(d, days, (today - days + 1) * DAY_MS, rows, recent);
}
