/**
 * Waiting in tests without fixed sleeps: `until` polls a condition and returns its first truthy value (or
 * fails naming what it waited for); `manualClock` is a Clock that moves only when the test says so.
 */
import type { Clock } from '../../src/lib/clock.js';

type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/**
 * Polls `check` every `intervalMs` until it returns a truthy value, and returns that value; throws after
 * `timeoutMs` with `what` in the message.
 * @example const job = await until(() => queue.getJob(id), 5000, 'the job');
 */
export async function until<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = 'the condition', intervalMs = 25): Promise<Truthy<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Truthy<T>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A Clock for tests: starts at `start` (ms) and moves only by `advance` or `set`. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
  set(ms: number): void;
}

/** A ManualClock starting at `start` (default: the real time now). */
export function manualClock(start = Date.now()): ManualClock {
  let now = start;
  return {
    now: () => now,
    advance: (ms) => {
      now += ms;
    },
    set: (ms) => {
      now = ms;
    },
  };
}
