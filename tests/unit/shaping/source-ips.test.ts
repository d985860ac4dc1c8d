/**
 * Source-IP choice and warm-up caps against real Redis, on a manual clock: the pool per priority and sender
 * domain, turns within a pool, an hourly and a daily cap (spill-over to the pool's other address, then a
 * wait until the hour or the UTC day turns), the schedule moving by day from warmupStart, counts given
 * back when nothing was sent, and two processes sharing one cap.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { SourceIps, warmupCaps } from '../../../src/shaping/source-ips.js';
import { createKeys } from '../../../src/store/keys.js';
import { dropPrefix } from '../../helpers/test-gateway.js';
import { manualClock } from '../../helpers/until.js';

const prefix = `kurir-test-srcip-${process.pid}`;
const redis = new Redis('redis://127.0.0.1:6379');
let n = 0;
// 2026-11-29 10:30 UTC: day 3 of a warm-up that started on 2026-11-27.
const T0 = Date.parse('2026-11-29T10:30:00Z');

function setup(ipPools: unknown, keyPrefix = `${prefix}-${n++}`) {
  const config = loadConfig({ file: 'config/default.yaml', overrides: { hostname: 'mail.kurir.test', delivery: { ipPools } } });
  const clock = manualClock(T0);
  const metrics = createMetrics({ defaultMetrics: false, sourceIps: [{ ip: '127.0.0.3', pool: 'bulk' }] });
  const make = () => new SourceIps({ redis, keys: createKeys(keyPrefix), config, clock, metrics });
  return { sources: make(), make, clock, metrics };
}

const WARM = { warmupStart: '2026-11-27', warmup: { perHour: [1, 1, 3, 50], perDay: [5, 5, 4] } };

afterAll(async () => {
  await dropPrefix(prefix);
  await redis.quit();
});

describe('SourceIps', () => {
  it('answers go without an address when no pool is mapped, and the mapped pool otherwise (domain mapping first)', async () => {
    const { sources } = setup({
      pools: { tx: [{ address: '127.0.0.2', helo: 'a.example' }], bulk: [{ address: '127.0.0.3' }], brand: [{ address: '127.0.0.4', helo: 'c.example' }] },
      priorities: { verification: 'tx', bulk: 'bulk' },
      domains: { 'brand.test': { bulk: 'brand' } },
    });
    expect(await sources.pick('normal', 'example.test')).toEqual({ go: true, reservation: null });
    expect(await sources.pick('verification', 'example.test')).toEqual({
      go: true,
      reservation: { source: { address: '127.0.0.2', helo: 'a.example', pool: 'tx' }, counted: [] },
    });
    // No helo of its own: the gateway's hostname.
    expect(await sources.pick('bulk', 'example.test')).toMatchObject({
      go: true,
      reservation: { source: { address: '127.0.0.3', helo: 'mail.kurir.test', pool: 'bulk' } },
    });
    expect(await sources.pick('bulk', 'brand.test')).toMatchObject({
      go: true,
      reservation: { source: { address: '127.0.0.4', helo: 'c.example', pool: 'brand' } },
    });
  });

  it('takes the addresses of a pool in turn', async () => {
    const { sources } = setup({
      pools: { bulk: [{ address: '127.0.0.3' }, { address: '127.0.0.4' }, { address: '127.0.0.5' }] },
      priorities: { bulk: 'bulk' },
    });
    const picked: string[] = [];
    for (let i = 0; i < 6; i++) {
      const a = await sources.pick('bulk', 'example.test');
      if (a.go) picked.push(a.reservation?.source.address ?? '');
    }
    expect(picked).toEqual(['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
  });

  it('reads the cap of the day from warmupStart: day 1 before and on the start date, none after the schedule', () => {
    const ip = { address: '127.0.0.3', ...WARM };
    expect(warmupCaps(ip, Date.parse('2026-11-01T00:00:00Z'))).toEqual({ perHour: 1, perDay: 5 });
    expect(warmupCaps(ip, T0)).toEqual({ perHour: 3, perDay: 4 });
    expect(warmupCaps(ip, Date.parse('2026-11-30T23:59:59Z'))).toEqual({ perHour: 50, perDay: null });
    expect(warmupCaps(ip, Date.parse('2026-12-01T00:00:00Z'))).toEqual({ perHour: null, perDay: null });
    expect(warmupCaps({ address: '127.0.0.3' }, T0)).toEqual({ perHour: null, perDay: null });
  });

  it('sends N per hour from a capped address, then waits until the next hour; the daily cap then waits until UTC midnight', async () => {
    const { sources, clock, metrics } = setup({ pools: { bulk: [{ address: '127.0.0.3', ...WARM }] }, priorities: { bulk: 'bulk' } });
    for (let i = 0; i < 3; i++) expect((await sources.pick('bulk', 'example.test')).go).toBe(true);
    const held = await sources.pick('bulk', 'example.test');
    expect(held).toMatchObject({ go: false, reason: 'ip-warmup', pool: 'bulk' });
    const nextHour = Date.parse('2026-11-29T11:00:00Z');
    if (!held.go) expect(held.until).toBeGreaterThanOrEqual(nextHour);
    if (!held.go) expect(held.until).toBeLessThanOrEqual(nextHour + 1000);
    clock.set(nextHour);
    expect((await sources.pick('bulk', 'example.test')).go).toBe(true); // the 4th of the day (perDay 4)
    const dayFull = await sources.pick('bulk', 'example.test');
    const midnight = Date.parse('2026-11-30T00:00:00Z');
    if (!dayFull.go) expect(dayFull.until).toBeGreaterThanOrEqual(midnight);
    expect(dayFull.go).toBe(false);
    clock.set(midnight + 60_000); // day 4: 50 per hour, no daily cap
    expect((await sources.pick('bulk', 'example.test')).go).toBe(true);
    expect(await metrics.registry.getSingleMetricAsString('kurir_ip_warmup_waits_total')).toMatch(/kurir_ip_warmup_waits_total\{pool="bulk"\} 2/);
  });

  it('spills over to the pool address that has room before it waits', async () => {
    const { sources } = setup({
      pools: {
        bulk: [
          { address: '127.0.0.3', ...WARM },
          { address: '127.0.0.4', warmupStart: '2026-11-29', warmup: { perHour: [2] } },
        ],
      },
      priorities: { bulk: 'bulk' },
    });
    const picked: string[] = [];
    for (let i = 0; i < 6; i++) {
      const a = await sources.pick('bulk', 'example.test');
      picked.push(a.go ? (a.reservation?.source.address ?? '') : 'wait');
    }
    expect(picked.filter((p) => p === '127.0.0.3')).toHaveLength(3);
    expect(picked.filter((p) => p === '127.0.0.4')).toHaveLength(2);
    expect(picked.at(-1)).toBe('wait');
  });

  it('gives the count back when nothing was sent under the reservation', async () => {
    const { sources } = setup({
      pools: { bulk: [{ address: '127.0.0.3', warmupStart: '2026-11-29', warmup: { perHour: [1] } }] },
      priorities: { bulk: 'bulk' },
    });
    const first = await sources.pick('bulk', 'example.test');
    expect(first.go && first.reservation?.counted).toHaveLength(1);
    expect((await sources.pick('bulk', 'example.test')).go).toBe(false);
    if (first.go) await sources.giveBack(first.reservation);
    expect((await sources.pick('bulk', 'example.test')).go).toBe(true);
  });

  it('shares one cap between processes (one Redis prefix)', async () => {
    const { make } = setup({ pools: { bulk: [{ address: '127.0.0.3', warmupStart: '2026-11-29', warmup: { perHour: [5] } }] }, priorities: { bulk: 'bulk' } });
    const a = make();
    const b = make();
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).pick('bulk', 'example.test')));
    expect(answers.filter((x) => x.go)).toHaveLength(5);
  });
});
