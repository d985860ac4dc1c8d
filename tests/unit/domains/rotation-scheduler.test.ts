/**
 * The rotation scheduler against real Redis with a manual clock: a pass while another gateway holds the lock
 * changes nothing (but still exports the key age); once the lock is free the due domain is rotated exactly once,
 * and the lock is released after the pass. A domain that used all 25 selector names of a month (`k2026m01`,
 * `k2026m01b` … `k2026m01z`) gets 409 CONFLICT from rotate, and the scheduler warns once per pass and goes on.
 * A step whose audit entry cannot be written is done, logged and counted (kurir_audit_write_failures_total{kind="change"}).
 */
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeyVault, parseMasterKey } from '../../../src/dkim/key-vault.js';
import { DomainService } from '../../../src/domains/domain-service.js';
import { nextSelector } from '../../../src/domains/records.js';
import { RotationScheduler } from '../../../src/domains/rotation-scheduler.js';
import { KurirError } from '../../../src/lib/errors.js';
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

/** DNS as a map: a domain's DKIM record is "published" when the test puts it there. */
function mapResolver(published: Map<string, string>): { resolveTxt(name: string): Promise<string[][]> } {
  return {
    resolveTxt: async (name: string) => {
      const v = published.get(name);
      if (!v) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
      return [[v]];
    },
  };
}

describe('rotation scheduler', () => {
  it('skips while another gateway holds the lock; then rotates the due domain once and releases the lock', async () => {
    const config = testConfig('/tmp', { domainKeys: { rotation: { everyDays: 90, warnDays: 0, checkIntervalSeconds: 60 } } }, undefined, prefix);
    const keys = createKeys(prefix);
    const store = new DomainStore(redis, keys);
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const published = new Map<string, string>();
    const resolver = mapResolver(published);
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

  it('a rotation whose audit entry cannot be written is started, logged and counted as a failed change entry', async () => {
    const ownPrefix = `${prefix}-audit`;
    const config = testConfig('/tmp', { domainKeys: { rotation: { everyDays: 90, warnDays: 0, checkIntervalSeconds: 60 } } }, undefined, ownPrefix);
    const keys = createKeys(ownPrefix);
    const store = new DomainStore(redis, keys);
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const published = new Map<string, string>();
    const service = new DomainService({
      config,
      store,
      vault: createKeyVault(parseMasterKey('f'.repeat(64), 'test')),
      resolver: mapResolver(published),
      clock,
    });
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const metrics = createMetrics({ defaultMetrics: false });
    const scheduler = new RotationScheduler({
      config,
      service,
      store,
      metrics,
      logger: createLogger({ level: 'info', destination: sink }),
      clock,
      audit: new AuditStore(redis, keys, 100),
    });
    try {
      const first = (await service.add('unaudited.test')).keys[0];
      published.set(`${first.selector}._domainkey.unaudited.test`, `v=DKIM1; k=rsa; p=${first.publicKeyBase64}`);
      expect((await service.verify('unaudited.test')).domain.state).toBe('active');
      clock.advance(91 * DAY);
      // The audit stream's key holds a string: XADD answers WRONGTYPE.
      await redis.set(keys.auditLog(), 'not a stream');
      expect(await scheduler.runOnce()).toMatchObject({ started: ['unaudited.test'] });
      const counted = (await metrics.auditWriteFailures.get()).values.map((v) => [v.labels.kind, v.value]);
      expect(Object.fromEntries(counted)).toEqual({ view: 0, export: 0, change: 1 });
      expect(lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'audit: entry could not be written')).toMatchObject({ level: 50, kind: 'change' });
    } finally {
      await scheduler.close();
      await dropPrefix(ownPrefix);
    }
  });

  it('nextSelector throws a KurirError CONFLICT naming the month and when to rotate again', () => {
    const taken = new Set(['k2026m01', ...'bcdefghijklmnopqrstuvwxyz'.split('').map((c) => `k2026m01${c}`)]);
    const err = (() => {
      try {
        nextSelector('rsa', Date.UTC(2026, 0, 20), taken);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(KurirError);
    expect(err).toMatchObject({ code: 'CONFLICT', field: 'selector' });
    expect((err as Error).message).toContain('k2026m01 and k2026m01b … k2026m01z were all used');
    expect((err as Error).message).toContain('rotate again from 2026-02-01');
  });

  it("when a month's selector names run out (found by an audit, 1 Dec 2026: 500 before): rotate answers CONFLICT; the scheduler warns once per pass and carries on", async () => {
    const config = testConfig('/tmp', { domainKeys: { rotation: { everyDays: 90, warnDays: 0, checkIntervalSeconds: 60 } } }, undefined, prefix);
    const store = new DomainStore(redis, createKeys(prefix));
    const clock = manualClock(Date.UTC(2026, 0, 1));
    const published = new Map<string, string>();
    const resolver = mapResolver(published);
    const service = new DomainService({ config, store, vault: createKeyVault(parseMasterKey('f'.repeat(64), 'test')), resolver, clock });
    const added = await service.add('many.test', { rotationEveryDays: 1 });
    const first = added.keys[0];
    published.set(`${first.selector}._domainkey.many.test`, `v=DKIM1; k=rsa; p=${first.publicKeyBase64}`);
    await service.verify('many.test');
    // 24 rotations whose new key is revoked before it is published use k2026m01b … k2026m01y.
    for (let i = 0; i < 24; i++) {
      const d = await service.rotate('many.test');
      await service.revoke('many.test', d.keys.find((k) => k.status === 'pending')!.selector);
    }
    const last = await service.rotate('many.test');
    expect(last.keys.at(-1)!.selector).toBe('k2026m01z');
    await service.revoke('many.test', 'k2026m01z');
    await expect(service.rotate('many.test')).rejects.toMatchObject({ code: 'CONFLICT', field: 'selector' });

    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const logger = createLogger({ level: 'debug', destination: sink });
    const metrics = createMetrics({ defaultMetrics: false });
    const scheduler = new RotationScheduler({ config, service, store, metrics, logger, clock });
    clock.advance(2 * DAY); // due (every day), still January
    for (let pass = 1; pass <= 2; pass++) {
      expect(await scheduler.runOnce()).toMatchObject({ skipped: false, started: [], failed: ['many.test'] });
      await new Promise((r) => setImmediate(r));
      const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.msg?.includes('rotation scheduler') && l.domain === 'many.test');
      expect(warnings).toHaveLength(pass);
      expect(warnings.at(-1)).toMatchObject({ level: 40, err: expect.stringContaining('no free rsa selector left this month') });
    }
    expect((await store.get('many.test'))!.state).toBe('active');
    await scheduler.close();
  }, 60_000);
});
