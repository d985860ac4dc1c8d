/**
 * The not-blocked cache of the HTTP auth throttle (authLimits.clearCacheMs), on the shared Redis with two
 * AuthThrottle instances on one prefix standing for two gateways, and an injected clock: a valid-key request
 * costs no Redis round trip while its IP is remembered clear; a block set on the other gateway reaches this one
 * once the remembered time has passed; a failure on this gateway forgets the IP at once.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authLimitsSchema } from '../../src/config/guard-schema.js';
import { AuthThrottle } from '../../src/intake/auth-throttle.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createKeys } from '../../src/store/keys.js';
import { dropPrefix } from '../helpers/test-gateway.js';

const prefix = `kurir-test-authcache-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const config = authLimitsSchema.parse({ maxFailuresPerIp: 3, blockSeconds: 60, clearCacheMs: 1000 });
let now = 1_000_000;
const clock = { now: () => now };
let redis: Redis;
let commands = 0;
let a: AuthThrottle;
let b: AuthThrottle;

beforeAll(async () => {
  redis = new Redis('redis://127.0.0.1:6379');
  await redis.ping(); // the limiter refuses a connection that is not ready yet
  // Counts what this client sends (ioredis sends each command, and each MULTI block, through sendCommand).
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    commands++;
    return send(...args);
  }) as Redis['sendCommand'];
  const deps = { redis, keys, config, metrics: createMetrics(), logger: pino({ level: 'silent' }), sleep: async () => undefined, clock };
  a = new AuthThrottle(deps);
  b = new AuthThrottle(deps);
});

afterAll(async () => {
  await dropPrefix(prefix);
  redis.disconnect();
});

describe('auth throttle: not-blocked cache', () => {
  it('asks Redis once per IP per clearCacheMs for valid-key requests', async () => {
    const c0 = commands;
    await a.check({ iface: 'http', ip: '192.0.2.1' });
    const first = commands - c0;
    expect(first).toBeGreaterThan(0);
    for (let i = 0; i < 10; i++) await a.check({ iface: 'http', ip: '192.0.2.1' });
    expect(commands - c0).toBe(first);
    now += 1001;
    await a.check({ iface: 'http', ip: '192.0.2.1' });
    expect(commands - c0).toBe(2 * first);
  });

  it('a block set on the other gateway reaches valid keys here once the remembered time has passed', async () => {
    const ip = '192.0.2.2';
    await a.check({ iface: 'http', ip });
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await b.fail({ iface: 'http', ip, reason: 'unknown-key' })).code);
    expect(answers).toEqual(['AUTH_FAILED', 'AUTH_FAILED', 'AUTH_BLOCKED']);
    await expect(b.check({ iface: 'http', ip })).rejects.toMatchObject({ code: 'AUTH_BLOCKED' });
    await expect(a.check({ iface: 'http', ip })).resolves.toBeUndefined(); // still remembered clear here
    now += 1001;
    await expect(a.check({ iface: 'http', ip })).rejects.toMatchObject({ code: 'AUTH_BLOCKED' });
  });

  it('a failure on this gateway forgets the IP at once, and SMTP attempts (with a user name) always ask Redis', async () => {
    const ip = '192.0.2.3';
    await a.check({ iface: 'http', ip });
    for (let i = 0; i < 3; i++) await a.fail({ iface: 'http', ip, reason: 'unknown-key' });
    await expect(a.check({ iface: 'http', ip })).rejects.toMatchObject({ code: 'AUTH_BLOCKED' });
    const smtpIp = '192.0.2.4';
    await a.check({ iface: 'smtp', ip: smtpIp, user: 'booking' });
    const c0 = commands;
    await a.check({ iface: 'smtp', ip: smtpIp, user: 'booking' });
    expect(commands).toBeGreaterThan(c0);
  });

  it('a check whose read was under way when a failure came in does not remember the IP as clear', async () => {
    const ip = '192.0.2.5';
    const inFlight = a.check({ iface: 'http', ip }); // its read goes out first and sees no block
    const fails = [0, 1, 2].map(() => a.fail({ iface: 'http', ip, reason: 'unknown-key' }));
    await inFlight;
    expect((await Promise.all(fails)).map((e) => e.code)).toContain('AUTH_BLOCKED');
    await expect(a.check({ iface: 'http', ip })).rejects.toMatchObject({ code: 'AUTH_BLOCKED' });
  });
});
