/**
 * ProviderShaper against a real Redis (unique prefix): slots, GCRA rate by priority, pauses, adaptive rate.
 * Time is a manual clock: back-off windows and timed pauses run out when the test moves it, not by sleeping.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shapingSchema } from '../../../src/config/limits-schema.js';
import type { Config } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/lib/logger.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { createProviderMap } from '../../../src/metrics/provider.js';
import { ProviderShaper } from '../../../src/shaping/provider-shaper.js';
import { loadThrottleRules } from '../../../src/shaping/throttle-rules.js';
import { createKeys } from '../../../src/store/keys.js';
import { dropPrefix } from '../../helpers/test-gateway.js';
import { manualClock } from '../../helpers/until.js';

const prefix = `kurir-test-shaper-${Math.random().toString(36).slice(2, 8)}`;
let redis: Redis;
let n = 0;
const providers = createProviderMap([{ provider: 'acme', domains: ['acme.test'], mx: ['*.acme-mx.test'] }]);
const rules = loadThrottleRules('config/throttle-rules.yaml');

function shaper(shaping: Record<string, unknown>) {
  const metrics = createMetrics({ defaultMetrics: false, providers: providers.names() });
  const config = { shaping: shapingSchema.parse(shaping) } as Pick<Config, 'shaping'>;
  const clock = manualClock();
  const s = new ProviderShaper({
    redis,
    keys: createKeys(`${prefix}-${n++}`),
    config,
    providers,
    rules,
    metrics,
    logger: createLogger({ level: 'silent' }),
    clock,
  });
  return { s, metrics, clock };
}

const ok = [{ kind: 'delivered' as const, code: 250, reply: '250 ok' }];
const tooFast = [{ kind: 'temp' as const, code: 421, reply: '421 4.7.28 rate limited' }];

beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379');
});
afterAll(async () => {
  await redis.quit();
  for (let i = 0; i < n; i++) await dropPrefix(`${prefix}-${i}`);
});

describe('ProviderShaper', () => {
  it('maps providers by domain, then by MX host, and remembers the MX-based answer', () => {
    const { s } = shaper({});
    expect(s.providerFor('gmail.com')).toBe('gmail');
    expect(s.knownProvider('corp.test')).toBeUndefined();
    expect(s.providerFor('corp.test', 'mx1.acme-mx.test')).toBe('acme');
    expect(s.knownProvider('corp.test')).toBe('acme');
    expect(s.limitsOf('other')).toEqual({ maxConnections: null, perMinute: null, adaptive: false, maxMessagesPerConnection: 100 });
    expect(s.limitsOf('acme')).toEqual({ maxConnections: 10, perMinute: 1200, adaptive: true, maxMessagesPerConnection: 100 });
  });

  it('caps concurrent connections, keeping reserved ones for verification', async () => {
    const { s } = shaper({ limits: { acme: { maxConnections: 3, perMinute: null } }, verificationReservedConnections: 1 });
    const a = await s.acquire('acme', 'bulk');
    const b = await s.acquire('acme', 'normal');
    const c = await s.acquire('acme', 'bulk');
    expect([a.ok, b.ok, c.ok]).toEqual([true, true, false]);
    expect(c).toMatchObject({ reason: 'provider-connections' });
    const v = await s.acquire('acme', 'verification');
    expect(v.ok).toBe(true);
    expect((await s.acquire('acme', 'verification')).ok).toBe(false);
    if (a.ok) await s.release(a.lease, ok);
    expect((await s.acquire('acme', 'bulk')).ok).toBe(false); // b and v hold 2: all bulk may use
    if (v.ok) await s.release(v.lease, null);
    expect((await s.acquire('acme', 'bulk')).ok).toBe(true);
  });

  it('spaces messages at the rate: bookings ahead, then a queue for the booking window; verification jumps both', async () => {
    const { s, metrics } = shaper({ limits: { acme: { perMinute: 60, maxConnections: null } }, burst: { verification: 3, bulk: 0 }, bookAheadSeconds: 3 });
    const waits: Array<number | string> = [];
    for (const id of ['j1', 'j2', 'j3', 'j4', 'j5', 'j6']) {
      const d = await s.acquire('acme', 'bulk', id);
      waits.push(d.ok ? 'ok' : `${d.booked ? 'booked' : 'turn'} ${Math.round((d.waitMs ?? 0) / 1000)}`);
    }
    // 1/s: j1 now, j2-j4 book the next 3 s, j5 and j6 come back when the window has room for them.
    expect(waits).toEqual(['ok', 'booked 1', 'booked 2', 'booked 3', 'turn 1', 'turn 2']);
    const anon = await s.acquire('acme', 'bulk');
    expect(anon).toMatchObject({ ok: false, reason: 'provider-rate', booked: false });
    // Verification borrows past every booking (3 s) plus its burst (3 intervals), then waits too.
    const v = await Promise.all([1, 2, 3, 4].map(() => s.acquire('acme', 'verification')));
    expect(v.map((d) => d.ok)).toEqual([true, true, true, false]);
    // A job that booked a slot runs when it comes back, whatever the rate.
    expect((await s.acquire('acme', 'bulk', 'j2')).ok).toBe(true);
    expect((await s.acquire('acme', 'bulk', 'j2')).ok).toBe(false);
    expect(await metrics.registry.getSingleMetricAsString('kurir_shaping_refusals_total')).toContain('{limit="provider-rate"} 8');
  });

  it('does not hold back a burst far below the rate (the millisecond clock tick is tolerated)', async () => {
    // 60,000,000/min is one message per microsecond: 20 acquisitions in one millisecond are far below it.
    // Without the one-tick tolerance, at most 1 + burst (2 for normal) would pass per millisecond.
    const { s } = shaper({ limits: { acme: { perMinute: 60_000_000, maxConnections: null } } });
    const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => s.acquire('acme', 'normal', `b${i}`)));
    expect(burst.filter((d) => d.ok)).toHaveLength(20);
  });

  it('halves the rate once per back-off window on "too fast", pauses, and recovers gradually', async () => {
    const { s, metrics, clock } = shaper({
      limits: { acme: { perMinute: 600, maxConnections: null } },
      backoffSeconds: 0.3,
      recoverAfter: 2,
      recoverStep: 0.5,
      minPerMinute: 100,
      burst: { verification: 1000 },
    });
    const lease = async () => {
      const d = await s.acquire('acme', 'verification');
      if (!d.ok) throw new Error(`no slot: ${d.reason}`);
      return d.lease;
    };
    const l1 = await lease();
    const l2 = await lease();
    await s.release(l1, tooFast);
    await s.release(l2, tooFast); // same burst: ignored
    let [st] = (await s.status()).filter((p) => p.provider === 'acme');
    expect(st).toMatchObject({ effectivePerMinute: 300, throttles: 1 });
    expect(st.backoffUntil).not.toBeNull();
    expect(st.lastSignal).toMatch(/^rate-limited: 421 4\.7\.28/);
    expect(await s.acquire('acme', 'verification', 'job-1')).toMatchObject({ ok: false, reason: 'provider-paused', held: true });
    expect(await metrics.registry.getSingleMetricAsString('kurir_shaping_effective_rate_per_minute')).toContain('{provider="acme"} 300');
    expect(await metrics.registry.getSingleMetricAsString('kurir_shaping_pauses_total')).toContain('{provider="acme"} 1');
    clock.advance(350);
    await s.release(await lease(), tooFast); // after the window: halves again, but not below minPerMinute
    clock.advance(350);
    await s.release(await lease(), tooFast);
    [st] = (await s.status()).filter((p) => p.provider === 'acme');
    expect(st.effectivePerMinute).toBe(100);
    clock.advance(350);
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      await s.release(await lease(), ok);
      seen.push((await s.status()).find((p) => p.provider === 'acme')!.effectivePerMinute!);
    }
    expect(seen.slice(0, 6)).toEqual([100, 150, 150, 225, 225, 337.5]);
    expect(seen.at(-1)).toBe(600); // back at the configured rate, never above
    expect(st.heldJobs).toBe(1);
  });

  it('counts "connection refused" only after enough successes', async () => {
    const { s } = shaper({ limits: { acme: { perMinute: 600, maxConnections: null } }, burst: { verification: 1000 } });
    const refused = [{ kind: 'temp' as const, code: null, reply: 'connect ECONNREFUSED 127.0.0.1:25' }];
    const take = async () => {
      const d = await s.acquire('acme', 'verification');
      if (!d.ok) throw new Error(d.reason);
      return d.lease;
    };
    await s.release(await take(), refused);
    expect((await s.status()).find((p) => p.provider === 'acme')!.throttles).toBe(0);
    for (let i = 0; i < 20; i++) await s.release(await take(), ok);
    await s.release(await take(), refused);
    expect((await s.status()).find((p) => p.provider === 'acme')!.throttles).toBe(1);
  });

  it('pauses until resumed, holding jobs, and resume returns them', async () => {
    const { s } = shaper({});
    await s.pause('gmail', { by: 'admin' });
    expect(await s.acquire('gmail', 'verification', 'j1')).toEqual({
      ok: false,
      provider: 'gmail',
      reason: 'provider-paused',
      waitMs: null,
      held: true,
      booked: false,
    });
    await s.acquire('gmail', 'bulk', 'j2');
    const st = (await s.status()).find((p) => p.provider === 'gmail')!;
    expect(st).toMatchObject({ adminPaused: 'indefinitely', pausedBy: 'admin', heldJobs: 2 });
    expect((await s.resume('gmail', 'admin')).sort()).toEqual(['j1', 'j2']);
    expect((await s.acquire('gmail', 'bulk', 'j2')).ok).toBe(true);
    await s.pause('gmail', { by: 'admin', seconds: 60 });
    const timed = await s.acquire('gmail', 'bulk');
    expect(!timed.ok && timed.waitMs).toBeGreaterThan(59_000);
  });

  it('shows a timed pause that has run out as no pause: adminPaused and pausedBy null, gauge 0; resume still returns its held jobs', async () => {
    const { s, metrics, clock } = shaper({});
    const gauge = async () => (await metrics.registry.getSingleMetricAsString('kurir_shaping_paused')).match(/\{provider="gmail"\} (\d+)/)?.[1];
    await s.pause('gmail', { by: 'ops', seconds: 600 });
    expect(await s.acquire('gmail', 'bulk', 'j1', '', true)).toMatchObject({ ok: false, reason: 'provider-paused', held: true });
    const gmail = async () => (await s.status()).find((p) => p.provider === 'gmail')!;
    expect(await gmail()).toMatchObject({ adminPaused: new Date(clock.now() + 600_000).toISOString(), pausedBy: 'ops', heldJobs: 1 });
    await s.refreshMetrics();
    expect(await gauge()).toBe('1');
    clock.advance(600_000); // the pause ends at this instant
    expect(await gmail()).toMatchObject({ adminPaused: null, pausedBy: null, backoffUntil: null, heldJobs: 1 });
    await s.refreshMetrics();
    expect(await gauge()).toBe('0');
    // Nothing is paused any more, and a resume still hands back the job the pause held.
    expect((await s.acquire('gmail', 'bulk', 'j2', '', true)).ok).toBe(true);
    expect(await s.resume('gmail', 'ops')).toEqual(['j1']);
    // Until the caller has promoted them and drops them, a second resume finds them again (a failed promotion is retried).
    expect(await s.resume('gmail', 'ops')).toEqual(['j1']);
    await s.dropResumed({ provider: 'gmail' }, ['j1']);
    expect(await s.resume('gmail', 'ops')).toEqual([]);
  });

  it('drops a held job once its message has expired: not counted, not returned by resume, not kept in Redis', async () => {
    const keys = createKeys(`${prefix}-${n}`); // the keys of the shaper made next
    const { s, clock } = shaper({});
    const at = (ms: number) => clock.now() + ms;
    await s.pause('gmail', { by: 'admin' });
    await s.pauseDomain('corp.test', { by: 'admin' });
    expect(await s.acquire('gmail', 'bulk', 'short', '', true, at(1000))).toMatchObject({ ok: false, reason: 'provider-paused', held: true });
    expect(await s.acquire('gmail', 'bulk', 'long', '', true, at(60_000))).toMatchObject({ ok: false, held: true });
    expect(await s.checkDomain('corp.test', 'dshort', true, at(1000))).toMatchObject({ reason: 'domain-paused', held: true });
    expect(await s.checkDomain('corp.test', 'dlong', true, at(60_000))).toMatchObject({ reason: 'domain-paused', held: true });
    expect((await s.status()).find((p) => p.provider === 'gmail')!.heldJobs).toBe(2);
    expect((await s.pausedDomains())[0].heldJobs).toBe(2);
    clock.advance(1000); // the short messages expire now (their jobs end `expired`)
    expect((await s.status()).find((p) => p.provider === 'gmail')!.heldJobs).toBe(1);
    expect((await s.pausedDomains())[0].heldJobs).toBe(1);
    expect(await redis.zrange(keys.shapingHeld('gmail'), '0', '-1')).toEqual(['long']);
    expect(await redis.zrange(keys.shapingDomainHeld('corp.test'), '0', '-1')).toEqual(['dlong']);
    // A held job is dropped by the next refusal too, without a read of the status.
    expect(await s.acquire('gmail', 'bulk', 'next', '', true, at(1000))).toMatchObject({ held: true });
    clock.advance(1000);
    expect(await s.acquire('gmail', 'bulk', 'later', '', true)).toMatchObject({ held: true }); // no deadline: held for good
    expect((await redis.zrange(keys.shapingHeld('gmail'), '0', '-1')).sort()).toEqual(['later', 'long']);
    // Sets written before held entries had an expiry are still promoted (and removed) by a resume.
    await redis.sadd(keys.legacyShapingHeld('gmail'), 'old');
    await redis.sadd(keys.legacyShapingDomainHeld('corp.test'), 'dold');
    const held = await s.resume('gmail', 'admin');
    expect([...held].sort()).toEqual(['later', 'long', 'old']);
    const domainHeld = (await s.resumeDomain('corp.test', 'admin')).held;
    expect([...domainHeld].sort()).toEqual(['dlong', 'dold']);
    await s.dropResumed({ provider: 'gmail' }, held);
    await s.dropResumed({ domain: 'corp.test' }, domainHeld);
    expect(await redis.exists(keys.shapingHeld('gmail'), keys.legacyShapingHeld('gmail'), keys.shapingDomainHeld('corp.test'))).toBe(0);
  });

  it('forgets the held jobs of a cancelled message, whichever provider or domain holds them', async () => {
    const keys = createKeys(`${prefix}-${n}`); // the keys of the shaper made next
    const { s } = shaper({});
    await s.pause('gmail', { by: 'admin' });
    await s.pause('acme', { by: 'admin' });
    await s.pauseDomain('corp.test', { by: 'admin' });
    await s.acquire('gmail', 'bulk', 'm1_gmail.com', '', true);
    await s.acquire('acme', 'bulk', 'm1_acme.test', '', true);
    await s.acquire('acme', 'bulk', 'm2_acme.test', '', true);
    await s.checkDomain('corp.test', 'm1_corp.test', true);
    await s.forgetHeld(['m1_gmail.com', 'm1_acme.test', 'm1_corp.test'], ['gmail.com', 'acme.test', 'Corp.Test']);
    expect(await redis.exists(keys.shapingHeld('gmail'), keys.shapingDomainHeld('corp.test'))).toBe(0);
    expect(await redis.zrange(keys.shapingHeld('acme'), '0', '-1')).toEqual(['m2_acme.test']);
  });

  it("clears a job's held, booked and waiting entries on a later run, and skips that clean-up on its first run", async () => {
    const keys = createKeys(`${prefix}-${n}`); // the keys of the shaper made next
    const { s } = shaper({ limits: { acme: { perMinute: 60, maxConnections: null } }, bookAheadSeconds: 3 });
    // j1 passes, j2 books the next slot; on its next run it takes the booked slot whatever the rate.
    expect((await s.acquire('acme', 'bulk', 'j1', '', true)).ok).toBe(true);
    expect(await s.acquire('acme', 'bulk', 'j2', '', true)).toMatchObject({ ok: false, booked: true });
    expect(await redis.zscore(keys.shapingBooked('acme'), 'j2')).not.toBeNull();
    expect((await s.acquire('acme', 'bulk', 'j2', '', false)).ok).toBe(true);
    expect(await redis.zscore(keys.shapingBooked('acme'), 'j2')).toBeNull();
    // A held entry (as a pause leaves it) goes on a later run; a first run does not look for one.
    const okeys = createKeys(`${prefix}-${n}`);
    const open = shaper({ limits: { acme: { perMinute: null, maxConnections: null } } });
    await redis.zadd(okeys.shapingHeld('acme'), '+inf', 'j3', '+inf', 'j4');
    expect((await open.s.acquire('acme', 'bulk', 'j3', '', false)).ok).toBe(true);
    expect((await open.s.acquire('acme', 'bulk', 'j4', '', true)).ok).toBe(true);
    expect(await redis.zrange(okeys.shapingHeld('acme'), '0', '-1')).toEqual(['j4']);
  });

  it('takes no slot and no turn after the deadline (the message expiry), and gives up an earlier turn then', async () => {
    const keys = createKeys(`${prefix}-${n}`); // the keys of the shaper made next
    const { s, clock } = shaper({ limits: { acme: { perMinute: 60, maxConnections: null } }, burst: { bulk: 0 }, bookAheadSeconds: 1 });
    const at = (ms: number) => clock.now() + ms;
    expect((await s.acquire('acme', 'bulk', 'j1', '', true)).ok).toBe(true);
    // The next slot is 1 s away: booked for a message living 2 s, not for one living 0.5 s (the next job gets it).
    expect(await s.acquire('acme', 'bulk', 'short', '', true, at(500))).toMatchObject({ ok: false, booked: false, waitMs: 1000 });
    expect(await s.acquire('acme', 'bulk', 'j2', '', true, at(2000))).toMatchObject({ ok: false, booked: true, waitMs: 1000 });
    // Beyond the window: j3 queues for its turn in 1 s; run again with a deadline before its new turn, it leaves the queue.
    expect(await s.acquire('acme', 'bulk', 'j3', '', true)).toMatchObject({ ok: false, booked: false, waitMs: 1000 });
    expect(await redis.zrange(keys.shapingWaiters('acme', 'bulk'), '0', '-1')).toEqual(['j3']);
    expect(await s.acquire('acme', 'bulk', 'j3', '', false, at(1500))).toMatchObject({ ok: false, booked: false, waitMs: 2000 });
    expect(await redis.zrange(keys.shapingWaiters('acme', 'bulk'), '0', '-1')).toEqual([]);
    expect(await s.acquire('acme', 'bulk', 'j4', '', true)).toMatchObject({ ok: false, booked: false, waitMs: 1000 });
  });

  it('pauses one recipient domain whatever its provider, holding its jobs until resumed', async () => {
    const { s, metrics, clock } = shaper({ limits: { acme: { perMinute: null, maxConnections: null } } });
    await s.pauseDomain('Corp.Test', { by: 'ops' });
    // Held before any provider limit, with or without a known provider; other domains of the provider go on.
    expect(await s.acquire('acme', 'verification', 'j1', 'corp.test')).toEqual({
      ok: false,
      provider: 'acme',
      reason: 'domain-paused',
      waitMs: null,
      held: true,
      booked: false,
    });
    expect(await s.checkDomain('CORP.test', 'j2')).toMatchObject({ reason: 'domain-paused', waitMs: null, held: true });
    expect(await s.checkDomain('other.test', 'j3')).toBeNull();
    expect((await s.acquire('acme', 'bulk', 'j4', 'acme.test')).ok).toBe(true);
    expect(await s.pausedDomains()).toEqual([{ domain: 'corp.test', pausedUntil: 'indefinitely', pausedAt: expect.any(String), pausedBy: 'ops', heldJobs: 2 }]);
    expect(await metrics.registry.getSingleMetricAsString('kurir_shaping_refusals_total')).toContain('{limit="domain-paused"} 2');

    const resumed = await s.resumeDomain('corp.test', 'ops');
    expect({ ...resumed, held: resumed.held.sort() }).toEqual({ wasPaused: true, held: ['j1', 'j2'] });
    await s.dropResumed({ domain: 'CORP.test' }, resumed.held); // what delivery-control does once it promoted them
    expect(await s.pausedDomains()).toEqual([]);
    expect((await s.acquire('acme', 'bulk', 'j1', 'corp.test')).ok).toBe(true);
    expect(await s.resumeDomain('corp.test', 'ops')).toEqual({ wasPaused: false, held: [] });

    // A timed pause says how long; once it has run out the domain sends again.
    await s.pauseDomain('corp.test', { by: 'ops', seconds: 0.3 });
    const timed = await s.acquire('acme', 'bulk', 'j5', 'corp.test');
    expect(!timed.ok && timed.waitMs).toBeGreaterThan(200);
    expect((await s.pausedDomains())[0]).toMatchObject({ domain: 'corp.test', heldJobs: 1 });
    clock.advance(350);
    expect((await s.acquire('acme', 'bulk', 'j5', 'corp.test')).ok).toBe(true);
    expect(await s.pausedDomains()).toEqual([]);
  });

  it("gives the pool each provider's messages per connection (by domain, or MX host), nothing when shaping is off", () => {
    const { s } = shaper({ limits: { acme: { maxMessagesPerConnection: 3 }, other: { maxMessagesPerConnection: null } } });
    expect(s.messagesPerConnection(['a@acme.test'])).toBe(3);
    expect(s.messagesPerConnection(['a@corp.test', 'b@corp.test'], 'mx1.acme-mx.test')).toBe(3);
    expect(s.messagesPerConnection(['a@gmail.com'])).toBe(100);
    expect(s.messagesPerConnection(['a@small.test'], 'mx.small.test')).toBeNull();
    expect(shaper({ enabled: false }).s.messagesPerConnection(['a@acme.test'])).toBeUndefined();
  });
});
