/**
 * The rotation scheduler against real Redis with a manual clock: a pass while another gateway holds the lock
 * changes nothing (but still exports the key age); once the lock is free the due domain is rotated exactly once,
 * and the lock is released after the pass.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeyVault, parseMasterKey } from '../../../src/dkim/key-vault.js';
import { DomainService } from '../../../src/domains/domain-service.js';
import { RotationScheduler } from '../../../src/domains/rotation-scheduler.js';
import { createLogger } from '../../../src/lib/logger.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { AuditStore } from '../../../src/store/audit-store.js';
import { DomainStore } from '../../../src/store/domain-store.js';
import { createKeys } from '../../../src/store/keys.js';
import { dropPrefix, testConfig } from '../../helpers/test-gateway.js';
import { manualClock } from '../../helpers/until.js';

const prefix = `kurir-test-rotlock-${Math.random().toString(36).slice(2, 8)}`;
const redis = new Redis('redis://127.0.0.1:6379');
const DAY = 86_400_000;

afterAll(async () => {
  await dropPrefix(prefix);
  await redis.quit();
});

describe('rotation scheduler', () => {
  it('skips while another gateway holds the lock; then rotates the due domain once and releases the lock', async () => {
    const config = testConfig('/tmp', { domainKeys: { rotation: { everyDays: 90, warnDays: 0, checkIntervalSeconds: 60 } } }, undefined, prefix);
    const keys = createKeys(prefix);
    const store = new DomainStore(redis, keys);
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const published = new Map<string, string>();
    // DNS as a map: a domain's DKIM record is "published" when the test puts it there.
    const resolver = {
      resolveTxt: async (name: string) => {
        const v = published.get(name);
        if (!v) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
        return [[v]];
      },
    };
    const service = new DomainService({ config, store, vault: createKeyVault(parseMasterKey('f'.repeat(64), 'test')), resolver, clock });
    const metrics = createMetrics({ defaultMetrics: false });
    const audit = new AuditStore(redis, keys, 100);
    const scheduler = new RotationScheduler({ config, service, store, metrics, logger: createLogger({ level: 'silent' }), clock, audit });

    const added = await service.add('lock.test');
    const first = added.keys[0];
    published.set(`${first.selector}._domainkey.lock.test`, `v=DKIM1; k=rsa; p=${first.publicKeyBase64}`);
    expect((await service.verify('lock.test')).domain.state).toBe('active');
    clock.advance(91 * DAY);

    expect(await store.lockRotation('other-gateway', 10_000)).toBe(true);
    const skipped = await scheduler.runOnce();
    expect(skipped).toMatchObject({ skipped: true, started: [] });
    expect((await store.get('lock.test'))!.state).toBe('active');
    const age = (await metrics.dkimKeyAge.get()).values.find((v) => v.labels.selector === first.selector);
    expect(age?.value).toBe(91 * 86400);

    await store.unlockRotation('other-gateway');
    expect(await scheduler.runOnce()).toMatchObject({ skipped: false, started: ['lock.test'] });
    expect(await scheduler.runOnce()).toMatchObject({ skipped: false, started: [], waiting: ['lock.test'] });
    const d = (await store.get('lock.test'))!;
    expect(d.state).toBe('rotating');
    expect(d.keys.filter((k) => k.status === 'pending')).toHaveLength(1);
    expect(d.rotation).toEqual({ trigger: 'schedule', startedAt: clock.now() });
    // The pass released the lock: another gateway can take it.
    expect(await store.lockRotation('other-gateway', 10_000)).toBe(true);
    await store.unlockRotation('other-gateway');
    const entries = (await audit.page(10)).items;
    expect(entries.map((e) => [e.actor, e.action, e.target])).toEqual([['scheduler', 'scheduled rotation: new key', 'lock.test']]);
    await scheduler.close();
  });
});
