/** The injectable source of time: tests and replays can pass their own. */
export interface Clock {
  /** The current time in milliseconds since the epoch, as `Date.now()`. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
