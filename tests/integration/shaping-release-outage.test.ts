/**
 * Deliveries that end while Redis is away cannot give their provider's connection slots back. Against a
 * redis-server of the test's own (stopped and started again on the same data; never the shared one): the gate
 * answers at once, and the slots are given back once Redis answers again, so the provider takes mail again,
 * verification included. Until 1 Dec 2026 the failed releases were only logged and the slots stayed taken for
 * `shaping.leaseSeconds` (600 s), blocking every delivery to the provider. Likewise the slot of an acquire that Redis
 * runs after the client stopped waiting for its answer (a stall simulated with CLIENT PAUSE).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { shapingSchema } from '../../src/config/limits-schema.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/lib/logger.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createProviderMap } from '../../src/metrics/provider.js';
import { createShapingGate, type GateJob } from '../../src/shaping/gate.js';
import { ProviderShaper } from '../../src/shaping/provider-shaper.js';
import type { ShapingLease } from '../../src/shaping/shaping-slots.js';
import { loadThrottleRules } from '../../src/shaping/throttle-rules.js';
import { createKeys } from '../../src/store/keys.js';
import { closeRedis, createRedis } from '../../src/store/redis.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { manualClock, until } from '../helpers/until.js';

let pr: PrivateRedis;
beforeAll(async () => {
  pr = await startPrivateRedis();
});
afterAll(async () => {
  await pr?.destroy();
});

it("gives a provider's connection slots back once Redis answers again after an outage", async () => {
  // The gateway's own kind of connection: fail fast while Redis is away (no offline queue), reconnect on its own.
  const redis = createRedis(pr.url, 'command');
  redis.on('error', () => undefined);
  await until(() => redis.status === 'ready', 10_000, 'the connection');
  const keys = createKeys('kurir-test-release');
  const providers = createProviderMap([]);
  const clock = manualClock(1_800_000_000_000);
  const logger = createLogger({ level: 'silent' });
  const metrics = createMetrics({ defaultMetrics: false, providers: providers.names() });
  const config = { shaping: shapingSchema.parse({}) } as Pick<Config, 'shaping'>;
  const shaper = new ProviderShaper({ redis, keys, config, providers, rules: loadThrottleRules(config.shaping.throttleRulesFile), metrics, logger, clock });
  const gate = createShapingGate(shaper, { clock, logger, recheckMs: 60_000, metrics });
  const job = (i: number, priority: GateJob['priority']): GateJob => ({
    id: `m${i}_gmail.com`,
    domain: 'gmail.com',
    senderDomain: 'example.test',
    priority,
    attemptsStarted: 1,
    expiresAt: clock.now() + 1_800_000,
  });
  try {
    // Ten deliveries to gmail in flight: every one of its connections (default maxConnections 10), the reserved one by verification.
    const leases: ShapingLease[] = [];
    for (let i = 0; i < 10; i++) {
      clock.advance(100); // within gmail's rate
      const a = await gate.ask(job(i, i === 9 ? 'verification' : 'bulk'));
      if (!a.go || !a.lease) throw new Error(`delivery ${i}: no slot`);
      leases.push(a.lease);
    }
    expect(await gate.ask(job(10, 'verification'))).toMatchObject({ go: false, reason: 'provider-connections' });

    // Redis goes away while they send; each delivery ends and gives its slot back: at once, without an error.
    await pr.shutdown();
    const started = Date.now();
    for (const lease of leases) await gate.release(lease, [{ kind: 'delivered', code: 250, reply: '250 ok' }]);
    expect(Date.now() - started).toBeLessThan(2_000);

    // Redis is back on the same data (the ten leases are still in it): the slots are given back without any delivery.
    await pr.start();
    await until(() => redis.status === 'ready', 10_000, 'the reconnection');
    await until(async () => (await redis.zcard(keys.shapingLeases('gmail'))) === 0, 15_000, "gmail's leases to be given back");
    expect((await gate.ask(job(11, 'verification'))).go).toBe(true);
    const retried = await metrics.registry.getSingleMetricAsString('kurir_shaping_releases_retried_total');
    expect(retried).toContain('{provider="gmail",outcome="released"} 10');
    expect(retried).toContain('{provider="gmail",outcome="abandoned"} 0');
  } finally {
    await gate.close();
    await closeRedis(redis);
  }
});

it('gives back the slot an acquire took after the client stopped waiting for its answer', async () => {
  // Redis answers after the command timeout (here 300 ms; 5 s in the gateway): the client has given up, Redis takes
  // the slot all the same. Until 1 Dec 2026 that slot stayed taken for its whole lease (600 s).
  const redis = createRedis(pr.url, 'command', { commandTimeout: 300 });
  redis.on('error', () => undefined);
  const admin = createRedis(pr.url, 'command');
  admin.on('error', () => undefined);
  await until(() => redis.status === 'ready' && admin.status === 'ready', 10_000, 'the connections');
  const keys = createKeys('kurir-test-late-acquire');
  const providers = createProviderMap([{ provider: 'acme', domains: ['acme.test'] }]);
  const clock = manualClock(1_800_000_000_000);
  const logger = createLogger({ level: 'silent' });
  const metrics = createMetrics({ defaultMetrics: false, providers: providers.names() });
  const config = { shaping: shapingSchema.parse({ limits: { acme: { perMinute: null, maxConnections: 2 } } }) } as Pick<Config, 'shaping'>;
  const shaper = new ProviderShaper({ redis, keys, config, providers, rules: loadThrottleRules(config.shaping.throttleRulesFile), metrics, logger, clock });
  const gate = createShapingGate(shaper, { clock, logger, recheckMs: 60_000, metrics });
  const job = (i: number): GateJob => ({
    id: `m${i}_acme.test`,
    domain: 'acme.test',
    senderDomain: 'example.test',
    priority: 'verification',
    attemptsStarted: 1,
    expiresAt: clock.now() + 1_800_000,
  });
  try {
    await gate.ask(job(0)); // the script is loaded: the late one below is a single EVALSHA
    await admin.call('CLIENT', 'PAUSE', '1000', 'ALL'); // Redis stalls for a second (a fork, a slow command, a failover)
    await expect(gate.ask(job(1))).rejects.toThrow(/Command timed out/);
    // Once Redis runs the late acquire, the slot it takes is given back without any delivery or another acquire.
    const released = async () =>
      /\{provider="acme",outcome="released"\} 1/.test(await metrics.registry.getSingleMetricAsString('kurir_shaping_releases_retried_total'));
    await until(released, 10_000, 'the late slot to be given back');
    expect(await admin.zcard(keys.shapingLeases('acme'))).toBe(1); // job 0's, still sending
    expect(await gate.ask(job(2))).toMatchObject({ go: true });
  } finally {
    await gate.close();
    await closeRedis(redis);
    await closeRedis(admin);
  }
}, 30_000);
