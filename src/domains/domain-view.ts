import type { DomainKeyStatus, DomainRecord, DomainState } from '../store/domain-store.js';
import type { DnsRecordView } from './records.js';

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
  /** Retired keys past keepPublishedUntil: the DNS record can be deleted. */
  removable?: boolean;
  revokedAt?: string;
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
  lastVerification?: { at: string; ok: boolean; problems: string[] };
}

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The public view of a domain. Sealed private keys never appear in it. */
export function presentDomain(d: DomainRecord, records: DnsRecordView[], now: number): DomainView {
  const keys = d.keys.map((k): DomainKeyView => {
    const v: DomainKeyView = { selector: k.selector, algorithm: k.algorithm, status: k.status, publicKey: k.publicKeyBase64, createdAt: iso(k.createdAt)! };
    if (k.bits !== undefined) v.bits = k.bits;
    if (k.activatedAt !== undefined) v.activatedAt = iso(k.activatedAt);
    if (k.retiredAt !== undefined) v.retiredAt = iso(k.retiredAt);
    if (k.keepPublishedUntil !== undefined) {
      v.keepPublishedUntil = iso(k.keepPublishedUntil);
      v.removable = now >= k.keepPublishedUntil;
    }
    if (k.revokedAt !== undefined) v.revokedAt = iso(k.revokedAt);
    return v;
  });
  const view: DomainView = { name: d.name, source: 'runtime', state: d.state, createdAt: iso(d.createdAt)!, updatedAt: iso(d.updatedAt)!, keys, records };
  if (d.reason) view.reason = d.reason;
  if (d.lastVerification) view.lastVerification = { ...d.lastVerification, at: iso(d.lastVerification.at)! };
  return view;
}
