import { describe, expect, it } from 'vitest';
import { checkSettings } from '../../../src/domains/domain-settings.js';
import { dueTimes, nextRotationStep, rotationPlan } from '../../../src/domains/rotation-policy.js';
import type { DomainKeyRecord, DomainRecord } from '../../../src/store/domain-store.js';
import { testConfig } from '../../helpers/test-gateway.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

const key = (selector: string, status: DomainKeyRecord['status'], activatedAt?: number): DomainKeyRecord => ({
  selector,
  algorithm: 'rsa',
  bits: 2048,
  publicKeyBase64: 'x',
  sealedPrivateKey: 's',
  status,
  createdAt: T0 - DAY,
  ...(activatedAt === undefined ? {} : { activatedAt }),
});

const domain = (over: Partial<DomainRecord> = {}): DomainRecord => ({
  name: 'd.test',
  state: 'active',
  createdAt: T0,
  updatedAt: T0,
  rev: 1,
  keys: [key('k1', 'active', T0)],
  ...over,
});

describe('rotation plan and next step', () => {
  const config = testConfig('/tmp', { domainKeys: { rotation: { everyDays: 90, warnDays: 14 } } });

  it('takes the configuration, a per-domain override, or nothing (null: off)', () => {
    expect(rotationPlan({}, config)).toEqual({ everyDays: 90, warnDays: 14, source: 'config' });
    expect(rotationPlan({ rotationEveryDays: 7 }, config)).toEqual({ everyDays: 7, warnDays: 1.75, source: 'domain' });
    expect(rotationPlan({ rotationEveryDays: null }, config)).toBeNull();
    expect(rotationPlan({ rotationEveryDays: 30 }, testConfig('/tmp', { domainKeys: { rotation: null } }))).toBeNull();
  });

  it('none while young, warn past everyDays − warnDays (once per key), rotate at everyDays', () => {
    const plan = rotationPlan({}, config);
    expect(nextRotationStep(domain(), plan, T0 + 75 * DAY)).toEqual({ action: 'none' });
    expect(nextRotationStep(domain(), plan, T0 + 76 * DAY)).toMatchObject({ action: 'warn', ageDays: 76 });
    const warned = domain({ events: [{ at: T0, type: 'key-age-warning', by: 'scheduler', message: '', selectors: ['k1'] }] });
    expect(nextRotationStep(warned, plan, T0 + 80 * DAY)).toEqual({ action: 'none' });
    expect(nextRotationStep(warned, plan, T0 + 90 * DAY)).toMatchObject({ action: 'rotate', ageDays: 90 });
    // The oldest active key counts (an Ed25519 key activated with it, or a key without activatedAt: its creation).
    expect(nextRotationStep(domain({ keys: [key('k1', 'active', T0 + 10 * DAY), key('e1', 'active')] }), plan, T0 + 89 * DAY)).toMatchObject({
      action: 'rotate',
    });
  });

  it('a short per-domain period warns a quarter of the period before the rotation, strictly after activation', () => {
    for (const everyDays of [14, 7, 1]) {
      const plan = rotationPlan({ rotationEveryDays: everyDays }, config)!;
      const due = dueTimes(domain(), plan)!;
      expect(due.warnAt).toBe(T0 + everyDays * 0.75 * DAY);
      expect(due.rotateAt).toBe(T0 + everyDays * DAY);
      expect(nextRotationStep(domain(), plan, T0)).toEqual({ action: 'none' });
      expect(nextRotationStep(domain(), plan, due.warnAt - 1)).toEqual({ action: 'none' });
      expect(nextRotationStep(domain(), plan, due.warnAt)).toMatchObject({ action: 'warn' });
    }
    // A long period keeps warnDays (90 − 14: day 76).
    expect(dueTimes(domain(), rotationPlan({ rotationEveryDays: 90 }, config)!)!.warnAt).toBe(T0 + 76 * DAY);
  });

  it('rotationEveryDays is a whole number of days: a fraction is refused naming the field', () => {
    expect(() => checkSettings({ rotationEveryDays: 1.5 })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'rotationEveryDays' }));
    expect(checkSettings({ rotationEveryDays: 2 })).toEqual({ rotationEveryDays: 2 });
  });

  it('verifies only the rotations it started; leaves manual and non-active domains alone', () => {
    const plan = rotationPlan({}, config);
    const keys = [key('k1', 'active', T0), key('k2', 'pending')];
    expect(nextRotationStep(domain({ state: 'rotating', keys, rotation: { trigger: 'schedule', startedAt: T0 } }), plan, T0)).toEqual({ action: 'verify' });
    expect(nextRotationStep(domain({ state: 'rotating', keys, rotation: { trigger: 'manual', startedAt: T0 } }), plan, T0 + 200 * DAY)).toEqual({
      action: 'none',
    });
    expect(nextRotationStep(domain({ state: 'suspended' }), plan, T0 + 200 * DAY)).toEqual({ action: 'none' });
    expect(nextRotationStep(domain({ state: 'pending-dns', keys: [key('k1', 'pending')] }), plan, T0 + 200 * DAY)).toEqual({ action: 'none' });
    expect(nextRotationStep(domain(), null, T0 + 200 * DAY)).toEqual({ action: 'none' });
  });
});
