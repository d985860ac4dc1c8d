/**
 * When to try again after the n-th failed attempt (1-based): the schedule's n-th delay (the last one
 * repeats) with ±jitter, never past the message's expiry. Returns null when no attempt fits before expiry.
 */
export function nextAttemptAt(opts: {
  now: number;
  attempt: number;
  expiresAt: number;
  schedule: readonly number[];
  jitter: number;
  random?: () => number;
}): number | null {
  const { now, attempt, expiresAt, schedule, jitter } = opts;
  const base = schedule[Math.min(Math.max(attempt, 1), schedule.length) - 1] * 1000;
  const spread = (2 * (opts.random ?? Math.random)() - 1) * jitter;
  const at = now + Math.max(1000, Math.round(base * (1 + spread)));
  // One last attempt shortly before expiry beats giving up early; none at all if even that cannot fit.
  const lastChance = expiresAt - 1000;
  if (at <= lastChance) return at;
  return lastChance - now >= 1000 ? lastChance : null;
}

/**
 * The retry stage: when a job with these outcomes runs again. Null when no outcome is temporary, or no
 * attempt fits before the message expires (its temporary outcomes then become `expired`).
 */
export function retryAtFor(
  outcomes: ReadonlyArray<{ kind: string }>,
  opts: { now: number; attempt: number; expiresAt: number; schedule: readonly number[]; jitter: number },
): number | null {
  return outcomes.some((o) => o.kind === 'temp') ? nextAttemptAt(opts) : null;
}
