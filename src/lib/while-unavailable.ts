import { isUnavailable } from './errors.js';

/**
 * Runs `fn`, and again with a growing pause (100 ms doubling to 2 s) while it fails because Redis or
 * another dependency does not answer, for at most `maxMs`, or until `signal` aborts (the process is closing:
 * its Redis clients are about to go); any other error, or the last one, is thrown.
 * For writes that record something already done (a delivery's outcome): redoing the work would be a
 * duplicate, so the write waits out a short outage instead.
 */
export async function whileUnavailable<T>(fn: () => Promise<T>, maxMs: number, signal?: AbortSignal): Promise<T> {
  const end = Date.now() + maxMs;
  for (let pause = 100; ; pause = Math.min(pause * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isUnavailable(err) || Date.now() + pause > end || signal?.aborted) throw err;
      await pauseFor(pause, signal);
      if (signal?.aborted) throw err;
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pauseFor(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
