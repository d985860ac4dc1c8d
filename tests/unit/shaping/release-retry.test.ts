/**
 * ReleaseRetries alone, over a release that fails while "Redis is away": retried until it succeeds, given up when
 * the slot's lease has run out (manual clock), one more try on close and none after it.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/lib/logger.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { ReleaseRetries } from '../../../src/shaping/release-retry.js';
import type { ShapingLease } from '../../../src/shaping/shaping-slots.js';
import { manualClock, until } from '../../helpers/until.js';

function retrier() {
  const clock = manualClock(1_800_000_000_000);
  const metrics = createMetrics({ defaultMetrics: false, providers: ['acme'] });
  const state = { down: true, calls: [] as string[] };
  const retries = new ReleaseRetries({
    clock,
    logger: createLogger({ level: 'silent' }),
    metrics,
    release: async (lease) => {
      state.calls.push(lease.id);
      if (state.down) throw new Error('Stream isn\u2019t writeable and enableOfflineQueue options is false');
    },
  });
  const lease = (id: string, ttlMs: number | null = 600_000): ShapingLease => ({
    provider: 'acme',
    id,
    heldUntil: ttlMs === null ? null : clock.now() + ttlMs,
  });
  const counted = async (outcome: string) => {
    const text = await metrics.registry.getSingleMetricAsString('kurir_shaping_releases_retried_total');
    return Number(new RegExp(`\\{provider="acme",outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  };
  return { retries, clock, state, lease, counted };
}

describe('ReleaseRetries', () => {
  it('retries a failed release with a back-off until it succeeds, and ignores a lease that holds no slot', async () => {
    const { retries, state, lease, counted } = retrier();
    retries.add(lease('a'));
    retries.add(lease('no-slot', null));
    expect(retries.pending).toBe(1);
    await until(() => state.calls.length >= 2, 5_000, 'two retries');
    expect(retries.pending).toBe(1);
    state.down = false;
    await until(() => retries.pending === 0, 10_000, 'the release');
    expect(state.calls.every((id) => id === 'a')).toBe(true);
    expect(await counted('released')).toBe(1);
    expect(await counted('abandoned')).toBe(0);
    await retries.close();
  });

  it("gives a release up once the slot's lease has run out: Redis has freed the slot itself", async () => {
    const { retries, clock, state, lease, counted } = retrier();
    retries.add(lease('a', 1_000));
    clock.advance(1_000);
    await until(() => retries.pending === 0, 5_000, 'the release to be given up');
    expect(state.calls).toEqual([]);
    expect(await counted('abandoned')).toBe(1);
    await retries.close();
  });

  it('tries once more on close, then no more', async () => {
    const up = retrier();
    up.retries.add(up.lease('a'));
    up.state.down = false; // Redis is back before the first retry (250 ms): close gives the slot back
    await up.retries.close();
    expect(up.state.calls).toEqual(['a']);
    expect(await up.counted('released')).toBe(1);

    const { retries, state, lease, counted } = retrier();
    retries.add(lease('b'));
    await retries.close();
    expect(state.calls).toEqual(['b']);
    expect(retries.pending).toBe(0);
    expect(await counted('abandoned')).toBe(1);
    retries.add(lease('c'));
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(state.calls).toEqual(['b']);
  });
});
