/**
 * Judges one provider's last hour (GET /v1/incidents): delivery outcomes from the incident window, placement
 * probes and seeds from the placement store, confirmations against their trailing baseline. Each finding is
 * a cause in words with a severity; the provider's status is the worst of them. Pure over what the stores
 * return, so every threshold is tested without a clock or Redis.
 */
import type { MinuteBucket } from '../store/incident-store.js';
import type { PlacementResult, SeedState } from '../store/placement-store.js';

export type Severity = 'ok' | 'warning' | 'critical';

export interface Finding {
  severity: Exclude<Severity, 'ok'>;
  /** What kind of problem: auth-failure, spam-placement, missing-probes, seed-unreachable, probe-auth, confirmations, bounces, deferrals. */
  kind: string;
  /** auth-failure and probe-auth: the failed check (auth-failure: ptr, spf, dkim, dmarc, alignment, tls, unauthenticated). */
  cause?: string;
  count: number;
  /** First time seen in the window (ms). */
  since: number;
  /** The whole finding in words, starting with the provider. */
  text: string;
}

/** The numbers an operator reads next to the verdict. */
export interface ProviderFacts {
  delivered: number;
  deferred: number;
  bounced: number;
  expired: number;
  deferredByCategory: Record<string, number>;
  bouncedByCategory: Record<string, number>;
  authFailures: Record<string, number>;
  placement: {
    probes: number;
    counts: Record<'inbox' | 'spam' | 'other' | 'missing', number>;
    inboxRate: number | null;
    /** The receiver's verdicts on found probes: `{ dkim: { pass: 3, fail: 1 } }`. */
    auth: Record<string, Record<string, number>>;
    seeds: Array<{ name: string; state: SeedState['state'] | 'unknown'; reason?: string; since?: number }>;
  } | null;
  confirmations: { delivered: number; confirmed: number; rate: number | null; baseline: number | null };
}

/** Thresholds of the verdicts; docs/incidents.md lists them. */
export const THRESHOLDS = Object.freeze({
  /** Share of the hour's placed probes in spam from which spam placement is critical (below: warning). */
  spamCritical: 0.5,
  /** Bounce share of final outcomes (auth refusals aside) for a warning, with at least `minOutcomes`. */
  bounceRatio: 0.05,
  /** Deferral share of attempts (auth refusals aside) for a warning, with at least `minOutcomes`. */
  deferralRatio: 0.5,
  minOutcomes: 10,
  /** Confirmation rate below this share of its baseline is a warning, with `minVerifications` in the hour and in the baseline. */
  confirmationShare: 0.8,
  minVerifications: 20,
});

const CAUSE_WORDS: Record<string, string> = {
  ptr: 'the sending IP has no matching PTR record (reverse DNS)',
  spf: 'SPF authentication failed',
  dkim: 'DKIM authentication failed',
  dmarc: 'DMARC authentication failed',
  alignment: 'the From domain is aligned with neither SPF nor DKIM',
  tls: 'the receiver requires TLS',
  unauthenticated: 'neither SPF nor DKIM passed',
};

/** Categories that mean the receiver refuses Kurir, not the address (auth-failure is judged on its own). */
const SENDER_SIDE = new Set(['policy', 'spam-block', 'protocol']);

const hhmm = (ms: number): string => new Date(ms).toISOString().slice(11, 16);
const pct = (x: number): string => `${Math.round(x * 100)}%`;
const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `550 5.7.26` from a reply such as `550-5.7.26 Unauthenticated email …`. */
function replyCode(reply: string | undefined): string {
  const m = reply ? /^(\d{3})(?:[\s-]+(\d\.\d{1,3}\.\d{1,3}))?/.exec(reply.trim()) : null;
  return m ? [m[1], m[2]].filter(Boolean).join(' ') : 'an authentication refusal';
}

export interface AssessInput {
  provider: string;
  buckets: MinuteBucket[];
  /** Placement results of the provider recorded in the window, newest first; null when it has no seeds. */
  placement: PlacementResult[] | null;
  seeds: Array<{ name: string; state: SeedState | null }>;
  /** Verification deliveries and confirmations in the same window on each of the last 7 days (IncidentStore.baseline). */
  baseline: { delivered: number; confirmed: number };
}

/** The provider's facts over the window and its findings, worst first. */
export function assessProvider(input: AssessInput): { status: Severity; facts: ProviderFacts; findings: Finding[] } {
  const { provider, buckets } = input;
  const facts: ProviderFacts = {
    delivered: 0,
    deferred: 0,
    bounced: 0,
    expired: 0,
    deferredByCategory: {},
    bouncedByCategory: {},
    authFailures: {},
    placement: null,
    confirmations: { delivered: 0, confirmed: 0, rate: null, baseline: null },
  };
  const auth = new Map<string, { deferred: number; bounced: number; since: number; reply?: string }>();
  const firstSeen = new Map<string, number>();
  for (const b of buckets) {
    facts.delivered += b.delivered;
    facts.expired += b.expired;
    for (const kind of ['deferred', 'bounced'] as const) {
      const target = kind === 'deferred' ? facts.deferredByCategory : facts.bouncedByCategory;
      for (const [category, n] of Object.entries(b[kind])) {
        target[category] = (target[category] ?? 0) + n;
        facts[kind] += n;
        if (!firstSeen.has(`${kind}:${category}`)) firstSeen.set(`${kind}:${category}`, b.at);
      }
    }
    for (const [cause, r] of Object.entries(b.auth)) {
      const a = auth.get(cause) ?? { deferred: 0, bounced: 0, since: b.at };
      a.deferred += r.deferred ?? 0;
      a.bounced += r.bounced ?? 0;
      a.reply = b.replies[cause] ?? a.reply;
      auth.set(cause, a);
      facts.authFailures[cause] = a.deferred + a.bounced;
    }
    facts.confirmations.delivered += b.verificationsDelivered;
    facts.confirmations.confirmed += b.confirmations;
  }

  const findings: Finding[] = [];
  for (const [cause, a] of auth) {
    const words = CAUSE_WORDS[cause] ?? `${cause} failed`;
    const n = a.bounced || a.deferred;
    const verb = a.bounced ? 'rejected' : 'deferred';
    findings.push({
      severity: a.bounced ? 'critical' : 'warning',
      kind: 'auth-failure',
      cause,
      count: n,
      since: a.since,
      text: `${provider}: ${plural(n, 'message')} ${verb} ${replyCode(a.reply)}, ${words} since ${hhmm(a.since)}`,
    });
  }

  const finals = facts.delivered + facts.bounced + facts.expired;
  for (const [category, n] of Object.entries(facts.bouncedByCategory)) {
    if (!SENDER_SIDE.has(category) || !n) continue;
    const since = firstSeen.get(`bounced:${category}`) ?? 0;
    findings.push({
      severity: 'warning',
      kind: 'bounces',
      cause: category,
      count: n,
      since,
      text: `${provider}: ${plural(n, 'message')} refused as ${category} since ${hhmm(since)}`,
    });
  }
  const ownBounces =
    facts.bounced - sum(Object.fromEntries(Object.entries(facts.bouncedByCategory).filter(([c]) => SENDER_SIDE.has(c) || c === 'auth-failure')));
  if (finals >= THRESHOLDS.minOutcomes && ownBounces / finals > THRESHOLDS.bounceRatio) {
    const since = Math.min(...[...firstSeen].filter(([k]) => k.startsWith('bounced:')).map(([, v]) => v));
    findings.push({
      severity: 'warning',
      kind: 'bounces',
      count: ownBounces,
      since,
      text: `${provider}: ${ownBounces} of ${finals} final outcomes bounced (${pct(ownBounces / finals)}) since ${hhmm(since)}`,
    });
  }
  const deferrals = facts.deferred - (facts.deferredByCategory['auth-failure'] ?? 0);
  const attempts = finals + facts.deferred;
  if (attempts >= THRESHOLDS.minOutcomes && deferrals / attempts > THRESHOLDS.deferralRatio) {
    const since = Math.min(...[...firstSeen].filter(([k]) => k.startsWith('deferred:')).map(([, v]) => v));
    findings.push({
      severity: 'warning',
      kind: 'deferrals',
      count: deferrals,
      since,
      text: `${provider}: ${deferrals} of ${attempts} attempts deferred (${pct(deferrals / attempts)}) since ${hhmm(since)}`,
    });
  }

  if (input.placement) assessPlacement(provider, input, facts, findings);
  assessConfirmations(provider, input.baseline, facts, findings, buckets[0]?.at ?? 0);

  const rank = { critical: 0, warning: 1 } as const;
  findings.sort((a, b) => rank[a.severity] - rank[b.severity] || b.count - a.count);
  return { status: findings[0]?.severity ?? 'ok', facts, findings };
}

function assessPlacement(provider: string, input: AssessInput, facts: ProviderFacts, findings: Finding[]): void {
  const results = input.placement ?? [];
  const counts = { inbox: 0, spam: 0, other: 0, missing: 0 };
  const authCounts: Record<string, Record<string, number>> = {};
  const failed = new Map<string, { n: number; since: number; verdict: string }>();
  for (const r of [...results].reverse()) {
    // Neither is a placement: the seed was not searched, or the probe never reached it (its bounce is its own finding).
    if (r.result === 'seed-unreachable' || r.result === 'not-delivered') continue;
    counts[r.result]++;
    for (const method of ['dkim', 'spf', 'dmarc'] as const) {
      const verdict = r.auth?.[method];
      if (!verdict) continue;
      authCounts[method] = { ...authCounts[method], [verdict]: (authCounts[method]?.[verdict] ?? 0) + 1 };
      if (verdict === 'pass') continue;
      const f = failed.get(method) ?? { n: 0, since: r.at, verdict };
      f.n++;
      f.verdict = verdict;
      failed.set(method, f);
    }
  }
  const probes = counts.inbox + counts.spam + counts.other + counts.missing;
  facts.placement = {
    probes,
    counts,
    inboxRate: probes ? counts.inbox / probes : null,
    auth: authCounts,
    seeds: input.seeds.map((s) =>
      s.state
        ? { name: s.name, state: s.state.state, ...(s.state.reason ? { reason: s.state.reason } : {}), since: s.state.since }
        : { name: s.name, state: 'unknown' as const },
    ),
  };
  const oldest = (result: string): number => [...results].reverse().find((r) => r.result === result)?.at ?? 0;
  if (counts.spam) {
    const since = oldest('spam');
    const where = results.find((r) => r.result === 'spam')?.mailbox;
    findings.push({
      severity: counts.spam / probes >= THRESHOLDS.spamCritical ? 'critical' : 'warning',
      kind: 'spam-placement',
      count: counts.spam,
      since,
      text: `${provider}: ${counts.spam} of ${plural(probes, 'placement probe')} landed in spam${where ? ` (${where})` : ''} since ${hhmm(since)}`,
    });
  }
  if (counts.missing) {
    const since = oldest('missing');
    findings.push({
      severity: 'warning',
      kind: 'missing-probes',
      count: counts.missing,
      since,
      text: `${provider}: ${counts.missing} of ${plural(probes, 'placement probe')} delivered but found in no folder since ${hhmm(since)}`,
    });
  }
  for (const [method, f] of failed) {
    // DKIM and DMARC failing at the receiver is what gets mail junked or refused next; SPF alone is survivable with DKIM.
    findings.push({
      severity: method === 'spf' ? 'warning' : 'critical',
      kind: 'probe-auth',
      cause: method,
      count: f.n,
      since: f.since,
      text: `${provider}: the receiver saw ${method}=${f.verdict} on ${plural(f.n, 'placement probe')} since ${hhmm(f.since)}`,
    });
  }
  for (const s of input.seeds) {
    if (s.state?.state !== 'unreachable') continue;
    findings.push({
      severity: 'warning',
      kind: 'seed-unreachable',
      count: 1,
      since: s.state.since,
      text: `${provider}: seed ${s.name} cannot be searched (${s.state.reason ?? 'error'}) since ${hhmm(s.state.since)}; placement at ${provider} is not measured`,
    });
  }
}

function assessConfirmations(provider: string, baseline: AssessInput['baseline'], facts: ProviderFacts, findings: Finding[], since: number): void {
  const c = facts.confirmations;
  c.rate = c.delivered ? c.confirmed / c.delivered : null;
  c.baseline = baseline.delivered ? baseline.confirmed / baseline.delivered : null;
  if (c.rate === null || c.baseline === null || c.delivered < THRESHOLDS.minVerifications || baseline.delivered < THRESHOLDS.minVerifications) return;
  if (c.rate >= THRESHOLDS.confirmationShare * c.baseline) return;
  findings.push({
    severity: 'warning',
    kind: 'confirmations',
    count: c.delivered - c.confirmed,
    since,
    text: `${provider}: ${pct(c.rate)} of ${c.delivered} verification messages confirmed in the last hour, against ${pct(c.baseline)} in the same hour of the last 7 days`,
  });
}
