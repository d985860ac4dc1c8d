/**
 * GET /v1/incidents: per provider, the last hour as Kurir stored it — delivery outcomes (the incident
 * window), placement probes and seeds, confirmations against their baseline — judged ok / warning /
 * critical with the cause in words (./incident-assess.ts).
 */
import type { SeedConfig } from '../config/placement-schema.js';
import type { IncidentStore } from '../store/incident-store.js';
import type { PlacementStore } from '../store/placement-store.js';
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

export interface IncidentReport {
  from: string;
  to: string;
  /** The worst provider status. */
  status: Severity;
  /** Worst first; a provider appears when it had traffic in the window or has seed mailboxes. */
  providers: ProviderIncident[];
}

export interface IncidentViewDeps {
  incidents: IncidentStore;
  placement: PlacementStore;
  seeds: readonly SeedConfig[];
  /** Every provider label (the provider map's names, "other" included): the bounded set to look at. */
  providerNames: readonly string[];
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Builds the incident report at `now`. */
export async function incidentReport(deps: IncidentViewDeps, now: number): Promise<IncidentReport> {
  const from = now - INCIDENT_WINDOW_MINUTES * 60_000;
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
        baseline: await deps.incidents.baseline(provider, now),
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
  return { from: iso(from), to: iso(now), status: providers[0]?.status ?? 'ok', providers };
}
