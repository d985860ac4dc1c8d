import { describe, expect, it } from 'vitest';
import { nextAttemptAt } from '../../../src/delivery/retry.js';

const schedule = [30, 60, 120];
const now = 1_000_000;

describe('nextAttemptAt', () => {
  it('follows the schedule, repeating its last step', () => {
    const at = (attempt: number) => nextAttemptAt({ now, attempt, expiresAt: now + 86_400_000, schedule, jitter: 0 });
    expect([1, 2, 3, 4, 9].map((n) => (at(n)! - now) / 1000)).toEqual([30, 60, 120, 120, 120]);
  });

  it('spreads retries by ±jitter', () => {
    const lo = nextAttemptAt({ now, attempt: 1, expiresAt: now + 1e9, schedule, jitter: 0.2, random: () => 0 })!;
    const hi = nextAttemptAt({ now, attempt: 1, expiresAt: now + 1e9, schedule, jitter: 0.2, random: () => 0.999999 })!;
    expect(lo - now).toBe(24_000);
    expect(Math.round((hi - now) / 1000)).toBe(36);
  });

  it('makes one last attempt just before expiry, and none when even that does not fit', () => {
    expect(nextAttemptAt({ now, attempt: 1, expiresAt: now + 10_000, schedule, jitter: 0 })).toBe(now + 9_000);
    expect(nextAttemptAt({ now, attempt: 1, expiresAt: now + 1_500, schedule, jitter: 0 })).toBeNull();
  });
});
