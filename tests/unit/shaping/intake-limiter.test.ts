/** IntakeLimiter against a real Redis (unique prefix): reservation, refusal, refund, peeks, warm-up. */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitsSchema } from '../../../src/config/limits-schema.js';
import type { Config } from '../../../src/config/schema.js';
import type { Credential } from '../../../src/intake/credentials.js';
import { KurirError } from '../../../src/lib/errors.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { IntakeLimiter } from '../../../src/shaping/intake-limiter.js';
import { createKeys } from '../../../src/store/keys.js';
import { dropPrefix } from '../../helpers/test-gateway.js';

const prefix = `kurir-test-limits-${Math.random().toString(36).slice(2, 8)}`;
let redis: Redis;
const now = Date.parse('2025-03-02T12:00:00Z');
const clock = { now: () => now };
const booking: Credential = { kind: 'api-key', name: 'booking', domains: null, admin: false };
const special: Credential = { kind: 'api-key', name: 'special', domains: null, admin: false };
const smtp: Credential = { kind: 'smtp-account', name: 'booking', domains: null, admin: false };

function limiter(limits: Record<string, unknown>, name = 'x') {
  const config = {
    limits: limitsSchema.parse(limits),
    apiKeys: [
      { name: 'booking', key: 'k'.repeat(16), domains: ['*'], admin: false },
      { name: 'special', key: 's'.repeat(16), domains: ['*'], admin: false, limits: { perDay: null, perSecond: 1 } },
    ],
    smtpAccounts: [{ name: 'booking', username: 'u', password: 'p'.repeat(8), domains: ['*'], admin: false }],
  } as unknown as Pick<Config, 'limits' | 'apiKeys' | 'smtpAccounts'>;
  const metrics = createMetrics({ defaultMetrics: false });
  return { metrics, limiter: new IntakeLimiter({ redis, keys: createKeys(`${prefix}-${name}`), config, clock, metrics }) };
}

async function refusal(p: Promise<unknown>): Promise<KurirError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KurirError);
  return err as KurirError;
}

beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379', { enableOfflineQueue: false });
  return new Promise((r) => redis.once('ready', r));
});
afterAll(async () => {
  await redis.quit();
  await dropPrefix(prefix);
  for (const n of ['rcpt', 'cred', 'day', 'refund', 'peek']) await dropPrefix(`${prefix}-${n}`);
});

/** What SMTP RCPT TO does with the limiter: peek, then throw the refusal when there is one. */
const checkRecipients = async (l: IntakeLimiter, addresses: string[]): Promise<void> => (await l.peekRecipients(addresses))?.();

describe('IntakeLimiter', () => {
  it('limits verification messages per recipient, counting only accepted ones', async () => {
    const { limiter: l, metrics } = limiter({ recipient: { max: 2, windowSeconds: 600 } }, 'rcpt');
    const req = { credential: booking, recipients: ['A@dest.test'], priority: 'verification' as const, fromDomain: 'example.test' };
    await l.reserve(req);
    await l.reserve({ ...req, recipients: ['a@dest.test'] });
    for (let i = 0; i < 3; i++) {
      const err = await refusal(l.reserve(req));
      expect(err.code).toBe('RECIPIENT_RATE_LIMITED');
      expect(err.retryAfterSeconds).toBeGreaterThan(590);
      expect(err.details).toMatchObject({ limit: 'recipient', recipients: ['A@dest.test'] });
    }
    // Refused attempts gave their points back: the counter is still at the limit, not above it.
    expect(await redis.get(`${prefix}-rcpt:limit:recipient:a@dest.test`)).toBe('2');
    // Other priorities and other recipients are not limited; a multi-recipient message is refused whole.
    await l.reserve({ ...req, priority: 'normal' });
    await l.reserve({ ...req, recipients: ['b@dest.test'] });
    const err = await refusal(l.reserve({ ...req, recipients: ['c@dest.test', 'a@dest.test'] }));
    expect(err.details).toMatchObject({ recipients: ['a@dest.test'] });
    expect(await redis.get(`${prefix}-rcpt:limit:recipient:c@dest.test`)).toBe('0');
    expect(await metrics.registry.getSingleMetricAsString('kurir_shaping_refusals_total')).toContain('kurir_shaping_refusals_total{limit="recipient"} 4');
  });

  it('takes exactly the limit under concurrency', async () => {
    const { limiter: l } = limiter({ recipient: { max: 3, windowSeconds: 600 } }, 'rcpt');
    const req = { credential: booking, recipients: ['race@dest.test'], priority: 'verification' as const, fromDomain: 'example.test' };
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => l.reserve(req)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
  });

  it('limits credentials per second and per day, with per-credential overrides and separate budgets per kind', async () => {
    const { limiter: l } = limiter({ credential: { perSecond: 100, perDay: 2 } }, 'cred');
    const req = { credential: booking, recipients: ['x@dest.test'], priority: 'normal' as const, fromDomain: 'example.test' };
    await l.reserve(req);
    await l.reserve(req);
    const err = await refusal(l.reserve(req));
    expect(err.code).toBe('RATE_LIMITED');
    expect(err.details).toMatchObject({ limit: 'credential-daily' });
    expect(err.retryAfterSeconds).toBe(12 * 3600); // until UTC midnight
    await l.reserve({ ...req, credential: smtp }); // the SMTP account has its own budget
    await expect(l.checkCredential(booking)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await expect(l.checkCredential(smtp)).resolves.toBeUndefined();
    // special: no daily cap, 1 per second
    await l.reserve({ ...req, credential: special });
    const fast = await refusal(l.reserve({ ...req, credential: special }));
    expect(fast.details).toMatchObject({ limit: 'credential-rate' });
    expect(fast.retryAfterSeconds).toBe(1);
  });

  it('caps recipients per day per sender domain and globally, following the warm-up schedule', async () => {
    const { limiter: l } = limiter({ domains: { 'new.test': { warmup: { start: '2025-03-01', schedule: [1, 3, 10] } } }, global: { perDay: 5 } }, 'day');
    const req = { credential: booking, recipients: ['a@d.test', 'b@d.test'], priority: 'bulk' as const, fromDomain: 'new.test' };
    await l.reserve(req); // day 2 of the warm-up: 3 recipients
    const err = await refusal(l.reserve(req));
    expect(err.details).toMatchObject({ limit: 'domain-daily' });
    expect(err.message).toMatch(/new\.test daily cap of 3 recipients \(warm-up day 2\)/);
    await l.reserve({ ...req, recipients: ['c@d.test'] });
    await l.reserve({ ...req, fromDomain: 'example.test' }); // global: 5 of 5 used
    const global = await refusal(l.reserve({ ...req, recipients: ['z@d.test'], fromDomain: 'example.test' }));
    expect(global.details).toMatchObject({ limit: 'global-daily' });
  });

  it('refunds a reservation', async () => {
    const { limiter: l } = limiter({ recipient: { max: 1, windowSeconds: 600 } }, 'refund');
    const req = { credential: booking, recipients: ['r@dest.test'], priority: 'verification' as const, fromDomain: 'example.test' };
    const r = await l.reserve(req);
    await r.refund();
    await r.refund(); // idempotent
    await (await l.reserve(req)).refund();
    await l.reserve(req);
    await expect(l.reserve(req)).rejects.toMatchObject({ code: 'RECIPIENT_RATE_LIMITED' });
  });

  it('peeks without consuming', async () => {
    const { limiter: l } = limiter({ recipient: { max: 1, windowSeconds: 600 } }, 'peek');
    await checkRecipients(l, ['p@dest.test']);
    await checkRecipients(l, ['p@dest.test']);
    await l.reserve({ credential: booking, recipients: ['p@dest.test'], priority: 'verification', fromDomain: 'example.test' });
    await expect(checkRecipients(l, ['P@dest.test'])).rejects.toMatchObject({ code: 'RECIPIENT_RATE_LIMITED', retryAfterSeconds: expect.any(Number) });
  });

  it('does nothing when disabled', async () => {
    const { limiter: l } = limiter({ enabled: false, recipient: { max: 1 } }, 'peek');
    const req = { credential: booking, recipients: ['p@dest.test'], priority: 'verification' as const, fromDomain: 'example.test' };
    await l.reserve(req);
    await checkRecipients(l, ['p@dest.test']);
  });
});

describe('IntakeLimiter with Redis down', () => {
  it('answers UNAVAILABLE (503 / 451 4.3.0), not an internal error', async () => {
    const down = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const config = { limits: limitsSchema.parse({}), apiKeys: [], smtpAccounts: [] } as unknown as Pick<Config, 'limits' | 'apiKeys' | 'smtpAccounts'>;
    const l = new IntakeLimiter({ redis: down, keys: createKeys(`${prefix}-down`), config, clock, metrics: createMetrics({ defaultMetrics: false }) });
    await expect(l.reserve({ credential: booking, recipients: ['a@b.test'], priority: 'verification', fromDomain: 'example.test' })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    await expect(checkRecipients(l, ['a@b.test'])).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    down.disconnect();
  });
});
