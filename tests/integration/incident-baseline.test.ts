/**
 * The confirmation baseline of GET /v1/incidents (IncidentStore.baseline) reads the same window as the alert's
 * recording rule provider:kurir_confirmation_ratio:baseline7d: the hour up to the same minute on each of the
 * last 7 days. Until 1 Dec 2026 it read the two clock hours around that time instead, so with traffic uneven
 * within those hours the view and the alert compared the hour with different baselines (one said ok, the other
 * fired). The history here is the one of the promtool test "the baseline reads the same hour as GET
 * /v1/incidents" in dashboards/alerts-weekly.test.yml, which gives the recording rule 25 / 30 as well.
 * Real Redis on 127.0.0.1:6379 under a prefix of its own.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidentReport } from '../../src/admin/incidents.js';
import { IncidentStore } from '../../src/store/incident-store.js';
import { createKeys } from '../../src/store/keys.js';
import { PlacementStore } from '../../src/store/placement-store.js';
import { dropPrefix } from '../helpers/test-gateway.js';

const prefix = `kurir-test-incbase-${process.pid}`;
const keys = createKeys(prefix);
const DAY = 86_400_000;
/** "Now" of the tests: 10:32:00 on 2 Dec 2026; the history is on 1 Dec. */
const now = Date.UTC(2026, 11, 2, 10, 32, 0);
const at = (h: number, m: number): number => Date.UTC(2026, 11, 1, h, m, 0);
let redis: Redis;
let store: IncidentStore;

/** `n` verification deliveries or confirmations of `provider` at `t`. */
async function count(provider: string, t: number, kind: 'delivered' | 'confirmed', n: number): Promise<void> {
  for (let i = 0; i < n; i++) await store.recordVerification(provider, t, kind);
}

beforeAll(async () => {
  redis = new Redis('redis://127.0.0.1:6379');
  store = new IncidentStore(redis, keys);
  // gmail, a day ago: 20 delivered and 10 confirmed at 09:20 (before the hour), 30 delivered and 25 confirmed at
  // 09:48 (inside it), 40 delivered and none confirmed at 10:52 (after it, still in the clock hour).
  await count('gmail', at(9, 20), 'delivered', 20);
  await count('gmail', at(9, 20), 'confirmed', 10);
  await count('gmail', at(9, 48), 'delivered', 30);
  await count('gmail', at(9, 48), 'confirmed', 25);
  await count('gmail', at(10, 52), 'delivered', 40);
});

afterAll(async () => {
  await redis.quit();
  await dropPrefix(prefix);
});

describe('confirmation baseline of the incident view', () => {
  it('counts the hour up to the same minute a day ago, as the recording rule does, not the two clock hours', async () => {
    // The two clock hours 09:00-11:00 held 90 delivered and 35 confirmed (39 %); the hour 09:33-10:32 held 30 and 25.
    expect(await store.baseline('gmail', now)).toEqual({ delivered: 30, confirmed: 25 });
    // One minute later the window starts at 09:34 and still holds only 09:48; an hour later (10:33-11:32) only 10:52.
    expect(await store.baseline('gmail', now + 60_000)).toEqual({ delivered: 30, confirmed: 25 });
    expect(await store.baseline('gmail', now + 3_600_000)).toEqual({ delivered: 40, confirmed: 0 });
    // The edge minutes: 09:20 is the first minute of the hour ending 10:19, and outside the one ending 10:20.
    expect(await store.baseline('gmail', at(10, 19) + DAY + 59_000)).toEqual({ delivered: 50, confirmed: 35 });
    expect(await store.baseline('gmail', at(10, 20) + DAY)).toEqual({ delivered: 30, confirmed: 25 });
    // Seven days back and no further.
    expect(await store.baseline('gmail', now + 6 * DAY)).toEqual({ delivered: 30, confirmed: 25 });
    expect(await store.baseline('gmail', now + 7 * DAY)).toEqual({ delivered: 0, confirmed: 0 });
  });

  it('GET /v1/incidents judges the hour against that baseline', async () => {
    // This hour: 30 delivered, 18 confirmed (60 %): under 80 % of 25/30 (83 %), not under 80 % of 35/90 (39 %).
    await count('gmail', now - 5 * 60_000, 'delivered', 30);
    await count('gmail', now - 5 * 60_000, 'confirmed', 18);
    const report = await incidentReport(
      { incidents: store, placement: new PlacementStore(redis, keys, 100), seeds: [], providerNames: ['gmail', 'other'] },
      now,
    );
    const gmail = report.providers.find((p) => p.provider === 'gmail');
    expect(gmail?.facts.confirmations).toEqual({ delivered: 30, confirmed: 18, rate: 0.6, baseline: 25 / 30 });
    expect(gmail?.findings.map((f) => f.text)).toEqual([
      'gmail: 60% of 30 verification messages confirmed in the last hour, against 83% in the same hour of the last 7 days',
    ]);
  });

  it('reads an hour written before the per-minute fields in proportion to its minutes inside the window', async () => {
    // Hour totals only, as written until 1 Dec 2026: 60 delivered and 30 confirmed between 09:00 and 10:00.
    await redis.hset(keys.incidentHour('yahoo', Math.floor(at(9, 0) / 3_600_000)), 'vd', 60, 'cf', 30);
    // 09:33-10:32 holds 27 of that hour's minutes.
    expect(await store.baseline('yahoo', now)).toEqual({ delivered: 27, confirmed: 13.5 });
  });
});
