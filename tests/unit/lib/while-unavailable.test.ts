/**
 * whileUnavailable against a real ioredis client that was closed (what a delivery's record meets once the gateway has
 * closed its Redis clients): it retries an unavailable error until its bound, and stops at once when its signal aborts.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { whileUnavailable } from '../../../src/lib/while-unavailable.js';

let closed: Redis;
let tries = 0;
/** One try of a command on the closed client, counted. */
const get = (): Promise<string | null> => {
  tries++;
  return closed.get('k');
};

beforeAll(async () => {
  closed = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
  closed.disconnect();
});
afterAll(() => closed.disconnect());

it('retries an unavailable error until its bound, then throws it', async () => {
  tries = 0;
  const started = Date.now();
  const err = await whileUnavailable(get, 800).catch((e: unknown) => e);
  expect((err as Error).message).toMatch(/Connection is closed/);
  // Tries at 0, 100, 300 and 700 ms; the next pause (800 ms) would end past the bound.
  expect(tries).toBe(4);
  expect(Date.now() - started).toBeGreaterThanOrEqual(650);
});

it('stops waiting as soon as its signal aborts, with the last error', async () => {
  const closing = new AbortController();
  tries = 0;
  setTimeout(() => closing.abort(), 250);
  const started = Date.now();
  const err = await whileUnavailable(get, 600_000, closing.signal).catch((e: unknown) => e);
  expect((err as Error).message).toMatch(/Connection is closed/);
  expect(Date.now() - started).toBeLessThan(1000);
  // Tried at 0 and 100 ms: the abort came during the second pause (until 300 ms), and nothing was tried after it.
  expect(tries).toBe(2);
  // Already aborted: one try, no wait.
  tries = 0;
  await expect(whileUnavailable(get, 600_000, closing.signal)).rejects.toThrow(/Connection is closed/);
  expect(tries).toBe(1);
});

it('passes any other error through at once', async () => {
  tries = 0;
  const bug = new TypeError('not a try-later');
  await expect(
    whileUnavailable(async () => {
      tries++;
      throw bug;
    }, 10_000),
  ).rejects.toBe(bug);
  expect(tries).toBe(1);
});
