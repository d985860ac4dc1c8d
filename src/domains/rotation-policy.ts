/**
 * When a runtime-managed domain's DKIM keys are due for a scheduled rotation: plain functions of the domain,
 * the configuration and the time, used by the scheduler (rotation-scheduler.ts) and the domain view.
 */
import type { Config } from '../config/schema.js';
import type { DomainKeyRecord, DomainRecord } from '../store/domain-store.js';

const DAY_MS = 86_400_000;

/**
 * The warning comes warnDays before the rotation, but at most this share of the period before it: a short
 * period (a domain rotated every 14 days, under warnDays 14) then warns three quarters through its key's life,
 * not from the moment the key is activated, which made KurirDkimKeyAgeing fire for every key at once.
 */
const WARN_LEAD_SHARE = 0.25;

/** The schedule that applies to a domain. */
export interface RotationPlan {
  everyDays: number;
  /** How long before everyDays the key-age warning starts: domainKeys.rotation.warnDays, at most a quarter of everyDays. */
  warnDays: number;
  /** `domain`: its own rotationEveryDays; `config`: domainKeys.rotation. */
  source: 'config' | 'domain';
}

/** What the scheduler does next for a domain. */
export type RotationStep =
  | { action: 'rotate'; key: DomainKeyRecord; ageDays: number }
  | { action: 'verify' }
  | { action: 'warn'; key: DomainKeyRecord; ageDays: number }
  | { action: 'none' };

/** The schedule of `d`, or null when it is not rotated on schedule (domainKeys.rotation null, or the domain's rotationEveryDays null). */
export function rotationPlan(d: Pick<DomainRecord, 'rotationEveryDays'>, config: Config): RotationPlan | null {
  const global = config.domainKeys.rotation;
  if (!global || d.rotationEveryDays === null) return null;
  const everyDays = d.rotationEveryDays ?? global.everyDays;
  return { everyDays, warnDays: Math.min(global.warnDays, everyDays * WARN_LEAD_SHARE), source: d.rotationEveryDays === undefined ? 'config' : 'domain' };
}

/** Since when a key signs (its activation; its creation for keys activated before that was recorded). */
export function signingSince(k: DomainKeyRecord): number {
  return k.activatedAt ?? k.createdAt;
}

/** The active key that has signed longest: the domain's age for rotation. */
export function oldestActiveKey(d: DomainRecord): DomainKeyRecord | undefined {
  let oldest: DomainKeyRecord | undefined;
  for (const k of d.keys) if (k.status === 'active' && (!oldest || signingSince(k) < signingSince(oldest))) oldest = k;
  return oldest;
}

/** When the active keys are due (ms), and when the KurirDkimKeyAgeing warning starts; undefined without an active key. */
export function dueTimes(d: DomainRecord, plan: RotationPlan): { rotateAt: number; warnAt: number } | undefined {
  const oldest = oldestActiveKey(d);
  if (!oldest) return undefined;
  const since = signingSince(oldest);
  return { rotateAt: since + plan.everyDays * DAY_MS, warnAt: since + (plan.everyDays - plan.warnDays) * DAY_MS };
}

/**
 * The next scheduled step: `verify` while a scheduled rotation waits for DNS; `rotate` an active domain whose
 * oldest active key reached everyDays; `warn` (once per key, recorded as a key-age-warning event) past
 * everyDays − warnDays. Manual rotations are left to the admin who started them.
 */
export function nextRotationStep(d: DomainRecord, plan: RotationPlan | null, now: number): RotationStep {
  if (d.rotation?.trigger === 'schedule' && d.keys.some((k) => k.status === 'pending')) return { action: 'verify' };
  if (!plan || d.state !== 'active' || d.keys.some((k) => k.status === 'pending')) return { action: 'none' };
  const key = oldestActiveKey(d);
  const due = dueTimes(d, plan);
  if (!key || !due) return { action: 'none' };
  const ageDays = Math.floor((now - signingSince(key)) / DAY_MS);
  if (now >= due.rotateAt) return { action: 'rotate', key, ageDays };
  const warned = d.events?.some((e) => e.type === 'key-age-warning' && e.selectors?.includes(key.selector));
  if (plan.warnDays > 0 && now >= due.warnAt && !warned) return { action: 'warn', key, ageDays };
  return { action: 'none' };
}
