/**
 * GET /v1/incidents: per provider, the last hour as Kurir stored it — delivery outcomes (the incident
 * window), placement probes and seeds, confirmations against their baseline — judged ok / warning /
 * critical with the cause in words (./incident-assess.ts); and per sender domain, a failing authentication
 * self-check (src/domains/auth-selfcheck.ts): mail a receiver will not trust, before any receiver says so.
 */
import type { SeedConfig } from '../config/placement-schema.js';
import type { IncidentStore } from '../store/incident-store.js';
import type { PlacementStore } from '../store/placement-store.js';
import type { SelfCheckStore } from '../store/selfcheck-store.js';
import { assessProvider, type Finding, type ProviderFacts, type Severity } from './incident-assess.js';

/** The window the view covers. */
export const INCIDENT_WINDOW_MINUTES = 60;

export interface ProviderIncident {
  provider: string;
  status: Severity;
  findings: Array<Omit<Finding, 'since'> & { since: string }>;
  facts: Omit<ProviderFacts, 'placement'> & {
    placement:
      | (Omit<NonNullable<ProviderFacts['placement']>, 'seeds'> & { seeds: Array<{ name: string; state: string; reason?: string; since?: string }> })
      | null;
  };
}

/** A sender domain whose latest authentication self-check failed. */
export interface DomainIncident {
  domain: string;
  status: 'critical';
  /** When the failing self-check ran. */
  checkedAt: string;
  findings: Array<{ severity: 'critical'; kind: 'self-check'; cause: string; text: string }>;
}

export interface IncidentReport {
  from: string;
  to: string;
  /** The worst status of the providers and the sender domains. */
  status: Severity;
  /** Worst first; a provider appears when it had traffic in the window or has seed mailboxes. */
  providers: ProviderIncident[];
  /** Sender domains failing their authentication self-check (absent when no self-check results are read here). */
  domains: DomainIncident[];
}

export interface IncidentViewDeps {
  incidents: IncidentStore;
  /** Writes this process's gathered counts first (src/store/incident-buffer.ts), so the view is never behind them. */
  flush?: () => Promise<void>;
  placement: PlacementStore;
  seeds: readonly SeedConfig[];
  /** Every provider label (the provider map's names, "other" included): the bounded set to look at. */
  providerNames: readonly string[];
  /** The authentication self-check results (written by role `worker`); without it `domains` is empty. */
  selfChecks?: SelfCheckStore;
}

/** Every sender domain whose latest self-check failed, by name, with each failed check in words. */
async function failingDomains(selfChecks: SelfCheckStore | undefined): Promise<DomainIncident[]> {
  if (!selfChecks) return [];
  const out: DomainIncident[] = [];
  for (const r of (await selfChecks.all()).values()) {
    if (r.ok) continue;
    const at = iso(r.at);
    out.push({
      domain: r.domain,
      status: 'critical',
      checkedAt: at,
      findings: r.checks
        .filter((c) => !c.ok)
        .map((c) => ({
          severity: 'critical' as const,
          kind: 'self-check' as const,
          cause: c.check,
          text: `${r.domain}: the ${c.check.toUpperCase()} self-check failed at ${at}${c.reason ? `: ${c.reason}` : ''}`,
        })),
    });
  }
  return out.sort((a, b) => a.domain.localeCompare(b.domain));
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Builds the incident report at `now`. */
export async function incidentReport(deps: IncidentViewDeps, now: number): Promise<IncidentReport> {
  const from = now - INCIDENT_WINDOW_MINUTES * 60_000;
  await deps.flush?.();
  const windows = await deps.incidents.window(deps.providerNames, now, INCIDENT_WINDOW_MINUTES);
  const seeded = new Set(deps.seeds.map((s) => s.provider));
  const active = deps.providerNames.filter((p) => seeded.has(p) || (windows.get(p)?.length ?? 0) > 0);
  const providers = await Promise.all(
    active.map(async (provider): Promise<ProviderIncident> => {
      const mine = deps.seeds.filter((s) => s.provider === provider);
      const placement = mine.length ? (await deps.placement.results(provider)).filter((r) => r.at >= from) : null;
      const seeds = await Promise.all(mine.map(async (s) => ({ name: s.name, state: await deps.placement.seedState(s.name) })));
      const { status, facts, findings } = assessProvider({
        provider,
        buckets: windows.get(provider) ?? [],
        placement,
        seeds,
        baseline: await deps.incidents.baseline(provider, now, 7, INCIDENT_WINDOW_MINUTES),
      });
      return {
        provider,
        status,
        findings: findings.map((f) => ({ ...f, since: iso(f.since) })),
        facts: {
          ...facts,
          placement: facts.placement && {
            ...facts.placement,
            seeds: facts.placement.seeds.map((s) => ({ ...s, since: s.since === undefined ? undefined : iso(s.since) })),
          },
        },
      };
    }),
  );
  const rank = { critical: 0, warning: 1, ok: 2 } as const;
  providers.sort((a, b) => rank[a.status] - rank[b.status] || a.provider.localeCompare(b.provider));
  const domains = await failingDomains(deps.selfChecks);
  const status = domains.length ? 'critical' : (providers[0]?.status ?? 'ok');
  return { from: iso(from), to: iso(now), status, providers, domains };
}
