import { describe, expect, it } from 'vitest';
import { dailyCap, msUntilUtcMidnight, utcDay } from '../../../src/shaping/daily-cap.js';

const at = (iso: string): number => Date.parse(iso);

describe('daily caps and warm-up schedules', () => {
  const warm = { perDay: 5000, warmup: { start: '2025-03-01', schedule: [50, 100, 200] } };
  it.each([
    ['before the start counts as day 1', '2025-02-20T12:00:00Z', 50, 1],
    ['day 1 is the start date', '2025-03-01T00:00:00Z', 50, 1],
    ['day 2', '2025-03-02T23:59:59Z', 100, 2],
    ['day 3, the last of the schedule', '2025-03-03T08:00:00Z', 200, 3],
    ['after the schedule: perDay', '2025-03-04T00:00:00Z', 5000, null],
  ])('%s', (_name, when, cap, day) => {
    expect(dailyCap(warm, at(when))).toEqual({ cap, warmupDay: day });
  });

  it('no warm-up: perDay, null meaning no cap', () => {
    expect(dailyCap({ perDay: 10, warmup: null }, at('2025-01-01T00:00:00Z'))).toEqual({ cap: 10, warmupDay: null });
    expect(dailyCap({ perDay: null, warmup: null }, at('2025-01-01T00:00:00Z'))).toEqual({ cap: null, warmupDay: null });
    expect(dailyCap({ perDay: null, warmup: { start: '2025-01-01', schedule: [1] } }, at('2025-01-02T00:00:00Z')).cap).toBeNull();
  });

  it('days are UTC calendar days', () => {
    expect(utcDay(at('2025-03-01T23:59:59.999Z'))).toBe('2025-03-01');
    expect(msUntilUtcMidnight(at('2025-03-01T23:59:59Z'))).toBe(1000);
    expect(msUntilUtcMidnight(at('2025-03-01T00:00:00Z'))).toBe(86_400_000);
  });
});
