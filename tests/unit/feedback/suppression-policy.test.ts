/**
 * The suppression rule (src/feedback/suppression/policy.ts) against a real Redis under a unique prefix, and
 * the bounce MX's recipient check (src/smtp/bounce-server.ts).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRecipient } from '../../../src/smtp/bounce-server.js';
import { SuppressionPolicy, type Classification } from '../../../src/feedback/suppression/policy.js';
import { createLogger } from '../../../src/lib/logger.js';
import { verpAddress } from '../../../src/lib/verp.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { createKeys } from '../../../src/store/keys.js';
import { SuppressionStore } from '../../../src/store/suppression-store.js';
import { dropPrefix } from '../../helpers/test-gateway.js';

const prefix = `kurir-test-supp-${Math.random().toString(36).slice(2, 10)}`;
const keys = createKeys(prefix);
let redis: Redis;
let policy: SuppressionPolicy;
let store: SuppressionStore;
const metrics = createMetrics({ defaultMetrics: false });
const DAY = 86_400_000;

const hard: Classification = { category: 'invalid-recipient', type: 'hard', senderSide: false, ruleId: 'x' };
const soft: Classification = { category: 'mailbox-full', type: 'soft', senderSide: false, ruleId: 'y' };
const policyFail: Classification = { category: 'policy', type: 'hard', senderSide: true, ruleId: 'z' };

beforeAll(async () => {
  redis = new Redis('redis://127.0.0.1:6379');
  store = new SuppressionStore(redis, keys);
  policy = new SuppressionPolicy({
    redis,
    keys,
    suppressions: store,
    metrics,
    logger: createLogger({ level: 'silent' }),
    config: { softBounceThreshold: 3, softBounceWindowDays: 7 },
  });
});

afterAll(async () => {
  await redis?.quit();
  await dropPrefix(prefix);
});

const added = async (reason: string): Promise<number> => (await metrics.suppressionsAdded.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

describe('SuppressionPolicy', () => {
  it('suppresses a hard failure at once, counting the metric only for a new entry', async () => {
    const t0 = Date.now();
    expect(await policy.onFailure({ address: 'Hard@Example.org', classification: hard, source: 'smtp', messageId: 'm1', at: t0 })).toMatchObject({
      action: 'suppressed',
      reason: 'invalid-recipient',
      added: true,
    });
    expect(await policy.onFailure({ address: 'hard@example.org', classification: hard, source: 'dsn', messageId: 'm2', at: t0 })).toMatchObject({
      action: 'suppressed',
      added: false,
    });
    expect(await added('invalid-recipient')).toBe(1);
    expect((await store.check(['hard@example.org']))[0]).toMatchObject({
      address: 'hard@example.org',
      reason: 'invalid-recipient',
      source: 'smtp',
      messageId: 'm1',
    });
  });

  it('never suppresses for a sender-side category', async () => {
    expect(await policy.onFailure({ address: 'victim@example.org', classification: policyFail, source: 'dsn', messageId: 'm1', at: Date.now() })).toEqual({
      action: 'sender-side',
    });
    expect(await store.check(['victim@example.org'])).toEqual([]);
  });

  it('suppresses soft failures only at the threshold, once per message, within the window', async () => {
    const a = 'soft@example.org';
    const t0 = Date.now();
    expect(await policy.onFailure({ address: a, classification: soft, source: 'dsn', messageId: 'm1', at: t0 })).toMatchObject({
      action: 'soft-counted',
      count: 1,
    });
    expect(await policy.onFailure({ address: a, classification: soft, source: 'dsn', messageId: 'm1', at: t0 + 1000 })).toMatchObject({ count: 1 });
    // Eight days later the first one has left the window.
    expect(await policy.onFailure({ address: a, classification: soft, source: 'dsn', messageId: 'm2', at: t0 + 8 * DAY })).toMatchObject({ count: 1 });
    expect(await policy.onFailure({ address: a, classification: soft, source: 'dsn', messageId: 'm3', at: t0 + 9 * DAY })).toMatchObject({ count: 2 });
    expect(await store.check([a])).toEqual([]);
    expect(await policy.onFailure({ address: a, classification: soft, source: 'smtp', messageId: 'm4', at: t0 + 10 * DAY })).toMatchObject({
      action: 'suppressed',
      reason: 'mailbox-full',
    });
    expect(await redis.exists(keys.softBounces(a))).toBe(0);
  });

  it('lets a delivery cancel synchronous soft failures but not those reported by DSNs', async () => {
    const a = 'mixed@example.org';
    const t0 = Date.now();
    await policy.onFailure({ address: a, classification: soft, source: 'smtp', messageId: 'm1', at: t0 });
    await policy.onFailure({ address: a, classification: soft, source: 'dsn', messageId: 'm2', at: t0 + 1 });
    await policy.onDelivered([a, 'nothing-recorded@example.org']);
    expect(await redis.zrange(keys.softBounces(a), '0', '-1')).toEqual(['dsn:m2']);
    expect(await policy.onFailure({ address: a, classification: soft, source: 'dsn', messageId: 'm3', at: t0 + 2 })).toMatchObject({ count: 2 });
  });

  it('suppresses a complaint with reason complaint and source arf', async () => {
    expect(await policy.onComplaint({ address: 'angry@example.org', messageId: 'm9', at: Date.now() })).toMatchObject({
      action: 'suppressed',
      reason: 'complaint',
      source: 'arf',
    });
    expect((await store.check(['angry@example.org']))[0]).toMatchObject({ reason: 'complaint', source: 'arf', messageId: 'm9' });
  });
});

describe('bounce MX recipient check', () => {
  const config = {
    bounce: { domain: 'bounce.example.test', secret: 's' },
    feedback: { fblAddress: 'fbl', reports: { tlsRptLocalPart: 'tls-reports' } },
    domainKeys: { dmarcReportLocalPart: 'dmarc' },
  } as Parameters<typeof checkRecipient>[1];
  const verp = verpAddress('01hq7x3k9m2n4p6r8t0v2w4y6z', 'bounce.example.test', 'secret-1');

  it.each([
    [verp, { ok: true, kind: 'verp', messageId: '01hq7x3k9m2n4p6r8t0v2w4y6z' }],
    [verp.toUpperCase(), { ok: true, kind: 'verp' }],
    ['FBL@Bounce.Example.Test', { ok: true, kind: 'fbl' }],
    ['DMARC@bounce.example.test', { ok: true, kind: 'dmarc' }],
    ['tls-reports@bounce.example.test', { ok: true, kind: 'tlsrpt' }],
    ['dmarc@example.test', { ok: false, reason: 'relay-denied' }],
    [verp.replace(/\.[0-9a-f]+@/, '.000000000000@'), { ok: false, reason: 'forged-verp', code: 550 }],
    [verpAddress('01hq7x3k9m2n4p6r8t0v2w4y6z', 'bounce.example.test', 'another-secret'), { ok: false, reason: 'forged-verp' }],
    ['postmaster@bounce.example.test', { ok: false, reason: 'no-such-address', code: 550 }],
    ['fbl@example.test', { ok: false, reason: 'relay-denied', code: 550 }],
    [verp.replace('bounce.example.test', 'other.test'), { ok: false, reason: 'relay-denied' }],
    ['', { ok: false, reason: 'relay-denied' }],
    ['@bounce.example.test', { ok: false, reason: 'relay-denied' }],
  ])('%s', (address, want) => {
    expect(checkRecipient(address, config, 'secret-1')).toMatchObject(want);
  });

  it('refuses the report addresses when the bounce MX takes no DMARC/TLS reports', () => {
    expect(checkRecipient('dmarc@bounce.example.test', config, 'secret-1', false)).toMatchObject({ ok: false, reason: 'no-such-address' });
  });
});
