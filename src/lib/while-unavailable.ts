import { isUnavailable } from './errors.js';

/**
 * Runs `fn`, and again with a growing pause (100 ms doubling to 2 s) while it fails because Redis or
 * another dependency does not answer, for at most `maxMs`; any other error, or the last one, is thrown.
 * For writes that record something already done (a delivery's outcome): redoing the work would be a
 * duplicate, so the write waits out a short outage instead.
 */
export async function whileUnavailable<T>(fn: () => Promise<T>, maxMs: number): Promise<T> {
  const end = Date.now() + maxMs;
  for (let pause = 100; ; pause = Math.min(pause * 2, 2000)) {
    try {
      return await fn();
    } catch (err) {
      if (!isUnavailable(err) || Date.now() + pause > end) throw err;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}
