/**
 * The verdict of an on/off overhead measured in alternating rounds (phase 7), with the noise the rounds
 * themselves show. Each round runs both sides back to back, so a round is a pair; the spread of the pairs'
 * drops says how far the mean can be trusted. On a shared two-core machine two identical sides differ by several
 * per cent, so a mean of 3.8 % with pairs from −18 % to +20 % does not show "< 5 %", and the verdict says so
 * instead of "met".
 */

/** The drops (%) of each pair, their mean, and two standard errors of that mean (about a 95 % interval). */
export interface PairedDrops {
  pairs: number[];
  meanPct: number;
  /** Two standard errors of the mean; Infinity with fewer than two pairs. */
  marginPct: number;
}

/** Drops of `on` against `off`, pair by pair (1 − on/off, in %), for any per-round figure where higher is better. */
export function pairedDrops(off: readonly number[], on: readonly number[]): PairedDrops {
  const n = Math.min(off.length, on.length);
  const pairs = Array.from({ length: n }, (_, i) => (1 - on[i] / off[i]) * 100);
  const meanPct = pairs.reduce((s, d) => s + d, 0) / (n || 1);
  if (n < 2) return { pairs, meanPct, marginPct: Number.POSITIVE_INFINITY };
  const variance = pairs.reduce((s, d) => s + (d - meanPct) ** 2, 0) / (n - 1);
  return { pairs, meanPct, marginPct: 2 * Math.sqrt(variance / n) };
}

/**
 * `met` when the pooled drop is under the target and so is the pairs' mean plus its margin; `not met` when
 * both are at or over it and so is the mean minus its margin; otherwise `not shown at this noise`.
 */
export function overheadVerdict(pooledPct: number, d: PairedDrops, targetPct: number): 'met' | 'NOT met' | 'not shown at this noise' {
  if (pooledPct < targetPct && d.meanPct + d.marginPct < targetPct) return 'met';
  if (pooledPct >= targetPct && d.meanPct - d.marginPct >= targetPct) return 'NOT met';
  return 'not shown at this noise';
}

/** "pairs 12.1, −3.0, 4.4, 1.9 %; mean 3.9 ± 6.2 %" */
export function describePairs(d: PairedDrops): string {
  const margin = Number.isFinite(d.marginPct) ? ` ± ${d.marginPct.toFixed(1)}` : '';
  return `pairs ${d.pairs.map((p) => p.toFixed(1)).join(', ')} %; mean ${d.meanPct.toFixed(1)}${margin} %`;
}
