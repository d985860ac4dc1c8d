/**
 * The shaping gate over a real ProviderShaper (real Redis, unique prefix, manual clock): answers as values,
 * when a refused job comes back, the lease kept or changed per MX host, the open gate, and source-IP pools on top.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shapingSchema } from '../../../src/config/limits-schema.js';
import type { Config } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/lib/logger.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { createProviderMap } from '../../../src/metrics/provider.js';
import { loadConfig } from '../../../src/config/load.js';
import { createShapingGate, openGate, withSourceIps, type GateJob } from '../../../src/shaping/gate.js';
import { SourceIps } from '../../../src/shaping/source-ips.js';
import { ProviderShaper } from '../../../src/shaping/provider-shaper.js';
import { loadThrottleRules } from '../../../src/shaping/throttle-rules.js';
import { createKeys } from '../../../src/store/keys.js';
import { dropPrefix } from '../../helpers/test-gateway.js';
import { manualClock } from '../../helpers/until.js';

const prefix = `kurir-test-gate-${Math.random().toString(36).slice(2, 8)}`;
const providers = createProviderMap([
  { provider: 'acme', domains: ['acme.test'], mx: ['*.acme-mx.test'] },
  { provider: 'zeta', mx: ['*.zeta-mx.test'] },
]);
const rules = loadThrottleRules('config/throttle-rules.yaml');
const RECHECK = 60_000;
let redis: Redis;
let n = 0;

function gate(shaping: Record<string, unknown>) {
  const clock = manualClock(1_800_000_000_000);
  const config = { shaping: shapingSchema.parse(shaping) } as Pick<Config, 'shaping'>;
  const logger = createLogger({ level: 'silent' });
  const metrics = createMetrics({ defaultMetrics: false, providers: providers.names() });
  const shaper = new ProviderShaper({ redis, keys: createKeys(`${prefix}-${n++}`), config, providers, rules, metrics, logger, clock });
  return { g: createShapingGate(shaper, { clock, logger, recheckMs: RECHECK }), shaper, clock };
}

const job = (over: Partial<GateJob> = {}): GateJob => ({
  id: `j${Math.random()}`,
  domain: 'acme.test',
  senderDomain: 'example.test',
  priority: 'verification',
  attemptsStarted: 1,
  expiresAt: 1_800_003_600_000,
  ...over,
});

beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379');
});
afterAll(async () => {
  await redis.quit();
  for (let i = 0; i < n; i++) await dropPrefix(`${prefix}-${i}`);
});

describe('shaping gate', () => {
  it('answers go with a lease for a provider known from the domain, and only checks the domain pause otherwise', async () => {
    const { g } = gate({ limits: { acme: { perMinute: null, maxConnections: 2 } } });
    expect(await g.ask(job())).toEqual({ go: true, lease: { provider: 'acme', id: expect.any(String), heldUntil: 1_800_000_600_000 } });
    expect(await g.ask(job({ domain: 'corp.test' }))).toEqual({ go: true, lease: null });
  });

  it('sends a job with a booked rate slot back exactly at that slot (no spread)', async () => {
    const { g, clock } = gate({ limits: { acme: { perMinute: 60, maxConnections: null } }, burst: { bulk: 0 } });
    expect((await g.ask(job({ priority: 'bulk' }))).go).toBe(true);
    const second = await g.ask(job({ priority: 'bulk' }));
    expect(second).toEqual({ go: false, until: clock.now() + 1000, reason: 'provider-rate' });
  });

  it("holds a paused job for the re-check interval, but never past its message's expiry by more than 50 ms and the spread", async () => {
    const { g, shaper, clock } = gate({});
    await shaper.pause('acme', { by: 'test' });
    const long = await g.ask(job({ priority: 'verification' }));
    expect(long).toMatchObject({ go: false, reason: 'provider-paused' });
    if (long.go) return;
    expect(long.until - clock.now()).toBeGreaterThanOrEqual(RECHECK);
    expect(long.until - clock.now()).toBeLessThanOrEqual(RECHECK + 200); // verification spreads by 200 ms at most
    const soon = await g.ask(job({ priority: 'verification', expiresAt: clock.now() + 1000 }));
    if (soon.go) throw new Error('expected a wait');
    expect(soon.until - clock.now()).toBeGreaterThanOrEqual(1050);
    expect(soon.until - clock.now()).toBeLessThanOrEqual(1250);
    // A timed pause that runs out lets the job go: the clock decides, not the wall.
    await shaper.resume('acme', 'test');
    await shaper.pauseDomain('corp.test', { by: 'test', seconds: 30 });
    expect(await g.ask(job({ domain: 'corp.test' }))).toMatchObject({ go: false, reason: 'domain-paused' });
    clock.advance(30_001);
    expect(await g.ask(job({ domain: 'corp.test' }))).toEqual({ go: true, lease: null });
  });

  it("holds a job over the rate no later than its message's expiry, and books it no slot and no turn it would not use", async () => {
    const keys = createKeys(`${prefix}-${n}`); // the keys of the gate made next
    // One message a minute: the next slot is a minute away, within the booking window (one interval), the one after beyond it.
    const { g, clock } = gate({ limits: { acme: { perMinute: 1, maxConnections: null } }, burst: { bulk: 0 } });
    const bulk = (id: string, ttlMs: number) => job({ id, priority: 'bulk', expiresAt: clock.now() + ttlMs });
    const day = 86_400_000;
    expect((await g.ask(bulk('first', day))).go).toBe(true);
    const wait = async (j: GateJob) => {
      const a = await g.ask(j);
      if (a.go) throw new Error('expected a wait');
      expect(a.reason).toBe('provider-rate');
      return a.until - clock.now();
    };
    // Its slot would be in 60 s, its message expires in 10 s: it comes back then (+50 ms and up to 20 ms of spread).
    const soon = await wait(bulk('soon', 10_000));
    expect(soon).toBeGreaterThanOrEqual(10_050);
    expect(soon).toBeLessThanOrEqual(10_070);
    // The slot it did not book goes to the next job, exactly.
    expect(await wait(bulk('booked', day))).toBe(60_000);
    expect(await redis.zscore(keys.shapingBooked('acme'), 'soon')).toBeNull();
    // Beyond the booking window: a turn in the rate queue, likewise capped, and not queued when it comes after the expiry.
    expect(await wait(bulk('turn1', day))).toBeLessThanOrEqual(60_020);
    const late = await wait(bulk('late', 30_000));
    expect(late).toBeGreaterThanOrEqual(30_050);
    expect(late).toBeLessThanOrEqual(30_070);
    expect(await redis.zrange(keys.shapingWaiters('acme', 'bulk'), '0', '-1')).toEqual(['turn1']);
    // The job behind it waits one interval after turn1, not two: no phantom turn of an expired message ahead of it.
    const turn2 = await wait(bulk('turn2', day));
    expect(turn2).toBeGreaterThanOrEqual(120_000);
    expect(turn2).toBeLessThanOrEqual(120_020);
  });

  it('per MX host: keeps the lease for the same provider, swaps it for another provider', async () => {
    const { g, shaper } = gate({
      limits: { acme: { perMinute: null, maxConnections: 1 }, zeta: { perMinute: null, maxConnections: 1 } },
      verificationReservedConnections: 0,
    });
    const j = job({ domain: 'corp.test' });
    const first = await g.askForHost(j, 'mx1.acme-mx.test', null);
    if (!first.go || !first.lease) throw new Error('expected a lease');
    expect(first.lease.provider).toBe('acme');
    // The same provider: the same lease, no second slot (acme has one).
    expect(await g.askForHost(j, 'mx2.acme-mx.test', first.lease)).toEqual({ go: true, lease: first.lease });
    const other = await g.askForHost(j, 'mx.zeta-mx.test', first.lease);
    if (!other.go || !other.lease) throw new Error('expected a lease');
    expect(other.lease.provider).toBe('zeta');
    // The acme slot was given back on the way.
    expect((await shaper.status()).find((p) => p.provider === 'acme')!.connectionsInUse).toBe(0);
    await g.release(other.lease, [{ kind: 'delivered', code: 250, reply: '250 ok' }]);
    expect((await shaper.status()).find((p) => p.provider === 'zeta')!.connectionsInUse).toBe(0);
  });

  it('the open gate always says go, with nothing to hold', async () => {
    expect(await openGate.ask(job())).toEqual({ go: true, lease: null });
    expect(await openGate.askForHost(job(), 'mx.test', null)).toEqual({ go: true, lease: null });
    await expect(openGate.release(null, null)).resolves.toBeUndefined();
    expect(await openGate.askSource(job())).toEqual({ go: true, reservation: null });
  });

  it('with source-IP pools: picks the address first and holds a job at the warm-up cap no later than its expiry', async () => {
    const clock = manualClock(Date.parse('2026-11-29T10:00:00Z'));
    const ipPools = {
      pools: { bulk: [{ address: '127.0.0.3', helo: 'b.example', warmupStart: '2026-11-29', warmup: { perHour: [1] } }] },
      priorities: { bulk: 'bulk' },
    };
    const config = loadConfig({ file: 'config/default.yaml', overrides: { delivery: { ipPools } } });
    const metrics = createMetrics({ defaultMetrics: false });
    const sources = new SourceIps({ redis, keys: createKeys(`${prefix}-${n++}`), config, clock, metrics });
    const g = withSourceIps(openGate, sources, { clock });
    const bulk = job({ priority: 'bulk', expiresAt: clock.now() + 600_000 });
    expect(await g.askSource(bulk)).toMatchObject({ go: true, reservation: { source: { address: '127.0.0.3', helo: 'b.example', pool: 'bulk' } } });
    // The hour turns in 60 min, but the message expires in 10: it comes back at its expiry.
    expect(await g.askSource(bulk)).toEqual({ go: false, until: bulk.expiresAt + 50, reason: 'ip-warmup', pool: 'bulk' });
    const later = await g.askSource(job({ priority: 'bulk', expiresAt: clock.now() + 86_400_000 }));
    expect(later.go === false && later.until).toBeGreaterThanOrEqual(Date.parse('2026-11-29T11:00:00Z'));
    // Verification has no pool here: go, OS-chosen address.
    expect(await g.askSource(job())).toEqual({ go: true, reservation: null });
    // No pool configured: the gate is returned as it is.
    const none = new SourceIps({ redis, keys: createKeys(`${prefix}-${n++}`), config: loadConfig({ file: 'config/default.yaml' }), clock, metrics });
    expect(withSourceIps(openGate, none, { clock })).toBe(openGate);
  });
});
