import type { DailyCapConfig } from '../config/limits-schema.js';

const DAY_MS = 86_400_000;

/** The UTC calendar day of `now` as YYYY-MM-DD (the key of daily counters). */
export function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

/** Milliseconds from `now` until the next UTC midnight (when daily counters reset). */
export function msUntilUtcMidnight(now: number): number {
  return DAY_MS - (now % DAY_MS);
}

/**
 * The cap in force on the UTC day of `now`, or null for no cap. With a warm-up schedule, day 1 is the
 * start date (days before it count as day 1 too: a schedule is never skipped by starting early); on day N
 * the cap is `schedule[N-1]`, and after the schedule ends it is `perDay`.
 * @example dailyCap({ perDay: 5000, warmup: { start: '2025-03-01', schedule: [50, 100, 200] } }, Date.parse('2025-03-02T10:00Z')) // 100
 */
export function dailyCap(cap: DailyCapConfig, now: number): { cap: number | null; warmupDay: number | null } {
  if (!cap.warmup) return { cap: cap.perDay, warmupDay: null };
  const start = Date.parse(`${cap.warmup.start}T00:00:00Z`);
  const day = Math.max(1, Math.floor((now - start) / DAY_MS) + 1);
  if (day <= cap.warmup.schedule.length) return { cap: cap.warmup.schedule[day - 1], warmupDay: day };
  return { cap: cap.perDay, warmupDay: null };
}
