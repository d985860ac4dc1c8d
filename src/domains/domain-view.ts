import type { DomainEvent, DomainKeyStatus, DomainRecord, DomainState } from '../store/domain-store.js';
import type { Config } from '../config/schema.js';
import { type DnsRecordView, filesFor, type PolicyFileView, recordsFor } from './records.js';
import { dueTimes, type RotationPlan, rotationPlan } from './rotation-policy.js';

/** A DKIM key as the API and CLI show it: public parts only. */
export interface DomainKeyView {
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  bits?: number;
  status: DomainKeyStatus;
  publicKey: string;
  createdAt: string;
  activatedAt?: string;
  retiredAt?: string;
  /** Retired keys: keep the DNS record until then (messages signed with it are final, plus a margin). */
  keepPublishedUntil?: string;
  /** Retired keys past keepPublishedUntil, and revoked keys: the DNS record can (for revoked keys: should) be deleted. */
  removable?: boolean;
  revokedAt?: string;
}

/** The scheduled rotation of a domain as the API shows it. */
export interface RotationView {
  /** null: not rotated on schedule (domainKeys.rotation null, or this domain's rotationEveryDays null). */
  everyDays: number | null;
  /** `domain`: set for this domain (rotationEveryDays); `config`: domainKeys.rotation. */
  source: 'config' | 'domain';
  /** When the oldest active key reaches everyDays (the scheduler then starts a rotation). */
  nextRotationAt?: string;
  /** When the KurirDkimKeyAgeing alert starts (everyDays − warnDays). */
  warnAt?: string;
  /** A rotation waiting for DNS: who started it and since when. */
  waiting?: { trigger: 'schedule' | 'manual'; since: string };
}

/** A timeline event as the API shows it. */
export interface DomainEventView extends Omit<DomainEvent, 'at'> {
  at: string;
}

export interface DomainView {
  name: string;
  source: 'runtime';
  state: DomainState;
  reason?: string;
  createdAt: string;
  updatedAt: string;
  keys: DomainKeyView[];
  records: DnsRecordView[];
  /** Files to serve over HTTPS: the MTA-STS policy. */
  files: PolicyFileView[];
  mtaStsMx?: string[];
  rotation: RotationView;
  lastVerification?: { at: string; ok: boolean; problems: string[] };
  /** Newest last. */
  events: DomainEventView[];
}

/** What the view shows besides the stored record. */
export interface ViewExtras {
  records: DnsRecordView[];
  files: PolicyFileView[];
  plan: RotationPlan | null;
  due?: { rotateAt: number; warnAt: number };
}

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The public view of a domain. Sealed private keys never appear in it. */
export function presentDomain(d: DomainRecord, extras: ViewExtras, now: number): DomainView {
  const { records, files, plan, due } = extras;
  const keys = d.keys.map((k): DomainKeyView => {
    const v: DomainKeyView = { selector: k.selector, algorithm: k.algorithm, status: k.status, publicKey: k.publicKeyBase64, createdAt: iso(k.createdAt)! };
    if (k.bits !== undefined) v.bits = k.bits;
    if (k.activatedAt !== undefined) v.activatedAt = iso(k.activatedAt);
    if (k.retiredAt !== undefined) v.retiredAt = iso(k.retiredAt);
    if (k.status === 'revoked') {
      // Revoked (possibly compromised): its record is no longer listed and should go now, whatever a retirement set.
      v.removable = true;
    } else if (k.keepPublishedUntil !== undefined) {
      v.keepPublishedUntil = iso(k.keepPublishedUntil);
      v.removable = now >= k.keepPublishedUntil;
    }
    if (k.revokedAt !== undefined) v.revokedAt = iso(k.revokedAt);
    return v;
  });
  const rotation: RotationView = { everyDays: plan?.everyDays ?? null, source: d.rotationEveryDays === undefined ? 'config' : 'domain' };
  if (plan && due && d.state !== 'removed') {
    rotation.nextRotationAt = iso(due.rotateAt);
    if (plan.warnDays > 0) rotation.warnAt = iso(due.warnAt);
  }
  if (d.rotation) rotation.waiting = { trigger: d.rotation.trigger, since: iso(d.rotation.startedAt)! };
  const events = (d.events ?? []).map((e) => ({ ...e, at: iso(e.at)! }));
  const view: DomainView = {
    name: d.name,
    source: 'runtime',
    state: d.state,
    createdAt: iso(d.createdAt)!,
    updatedAt: iso(d.updatedAt)!,
    keys,
    records,
    files,
    rotation,
    events,
  };
  if (d.mtaStsMx) view.mtaStsMx = d.mtaStsMx;
  if (d.reason) view.reason = d.reason;
  if (d.lastVerification) view.lastVerification = { ...d.lastVerification, at: iso(d.lastVerification.at)! };
  return view;
}

/** The view of `d` under `config`: its records, MTA-STS policy file and rotation schedule. */
export function domainViewOf(d: DomainRecord, config: Config, now: number): DomainView {
  const plan = rotationPlan(d, config);
  return presentDomain(d, { records: recordsFor(d, config, now), files: filesFor(d, config), plan, due: plan ? dueTimes(d, plan) : undefined }, now);
}
