/**
 * The per-provider view of `GET /v1/placement`: last results, inbox rate over 1 h and 24 h, median
 * arrival time and the receiver's last authentication verdicts, plus each seed's reachability. Pure
 * over what the store returns.
 */
import type { PlacementResult, SeedState } from '../store/placement-store.js';

export interface ProviderPlacement {
  provider: string;
  seeds: Array<{ name: string; address: string; state: SeedState['state'] | 'unknown'; reason?: string; error?: string; since?: string; checkedAt?: string }>;
  /** Share of placed probes (inbox, spam, other, missing; never seed-unreachable or not-delivered) found in INBOX; null without any. */
  inboxRate1h: number | null;
  inboxRate24h: number | null;
  /** Counts over 24 h by result. */
  counts24h: Record<PlacementResult['result'], number>;
  /** Median submission → arrival over 24 h (found probes only); null without any. */
  medianArrivalSeconds24h: number | null;
  /** Authentication-Results of the newest found probe. */
  lastAuth: PlacementResult['auth'] | null;
  results: Array<Omit<PlacementResult, 'at' | 'submittedAt'> & { at: string; submittedAt: string }>;
}

const PLACED = new Set(['inbox', 'spam', 'other', 'missing']);

function inboxRate(results: PlacementResult[], since: number): number | null {
  const placed = results.filter((r) => r.at >= since && PLACED.has(r.result));
  return placed.length ? placed.filter((r) => r.result === 'inbox').length / placed.length : null;
}

function median(values: number[]): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Summarises one provider's results (newest first) and seeds at `now`; `last` results are listed. */
export function summarise(
  provider: string,
  results: PlacementResult[],
  seeds: Array<{ name: string; address: string; state: SeedState | null }>,
  now: number,
  last: number,
): ProviderPlacement {
  const day = results.filter((r) => r.at >= now - 86_400_000);
  const counts24h = { inbox: 0, spam: 0, other: 0, missing: 0, 'seed-unreachable': 0, 'not-delivered': 0 };
  for (const r of day) counts24h[r.result]++;
  const iso = (ms: number): string => new Date(ms).toISOString();
  return {
    provider,
    seeds: seeds.map((s) =>
      s.state
        ? {
            name: s.name,
            address: s.address,
            state: s.state.state,
            reason: s.state.reason,
            error: s.state.error,
            since: iso(s.state.since),
            checkedAt: iso(s.state.checkedAt),
          }
        : { name: s.name, address: s.address, state: 'unknown' as const },
    ),
    inboxRate1h: inboxRate(results, now - 3_600_000),
    inboxRate24h: inboxRate(results, now - 86_400_000),
    counts24h,
    medianArrivalSeconds24h: median(day.filter((r) => r.arrivalSeconds !== undefined).map((r) => r.arrivalSeconds as number)),
    lastAuth: results.find((r) => r.auth)?.auth ?? null,
    results: results.slice(0, last).map((r) => ({ ...r, at: iso(r.at), submittedAt: iso(r.submittedAt) })),
  };
}
