/** Pure steps of a domain's lifecycle that the service composes: its event timeline and what a DNS verification changes. */
import { type DomainEvent, type DomainKeyRecord, type DomainRecord, type DomainVerification, MAX_DOMAIN_EVENTS } from '../store/domain-store.js';

/** One timeline event. */
export function domainEvent(at: number, type: DomainEvent['type'], by: DomainEvent['by'], message: string, selectors?: string[]): DomainEvent {
  return { at, type, by, message, ...(selectors?.length ? { selectors } : {}) };
}

/** `d` with `event` appended; only the last MAX_DOMAIN_EVENTS are kept. */
export function withEvent(d: DomainRecord, event: DomainEvent): DomainRecord {
  return { ...d, events: [...(d.events ?? []), event].slice(-MAX_DOMAIN_EVENTS) };
}

/**
 * Why verifying `d` must not switch signing, or null when it may: RSA is always signed, so a domain with no
 * RSA key active or waiting for DNS (its waiting RSA key revoked) would become active signing with Ed25519
 * alone, which receivers without RFC 8463 support treat as unsigned.
 */
export function verificationRefusal(d: DomainRecord): string | null {
  if (d.keys.some((k) => k.algorithm === 'rsa' && (k.status === 'active' || k.status === 'pending'))) return null;
  const waiting = d.keys.filter((k) => k.status === 'pending').map((k) => k.selector);
  if (!waiting.length) return null;
  return `domain: ${d.name} has no RSA key active or waiting for DNS (RSA is always signed), only ${waiting.join(', ')}: revoke ${waiting.join(', ')} and rotate to create a new RSA key`;
}

/**
 * The domain after a DKIM verification. Every pending key matched: they sign from now on (the domain becomes
 * active, the active keys of the same algorithm they replace retire until `keepPublishedUntil`, the rotation
 * ends). An active key whose algorithm has no pending key keeps signing (a rotation whose new RSA key was
 * revoked keeps the old RSA key). A failed check by the
 * scheduler is recorded as a rotation-waiting-dns event, but only when what is missing changed: it runs every
 * scheduler interval, and every write makes every gateway reload. Answers null when nothing is to be written.
 */
export function afterVerification(
  d: DomainRecord,
  verification: DomainVerification,
  opts: { by: DomainEvent['by']; keepPublishedUntil: number },
): DomainRecord | null {
  const now = verification.at;
  const pending = d.keys.filter((k) => k.status === 'pending');
  const selectors = pending.map((k) => k.selector);
  let next: DomainRecord = { ...d, lastVerification: verification };
  if (!verification.ok && opts.by === 'scheduler') {
    const before = d.lastVerification;
    if (before && !before.ok && before.problems.join('\n') === verification.problems.join('\n')) return null;
    const message = `signing stays on the current key until DNS serves ${selectors.join(', ')}: ${verification.problems.join('; ')}`;
    next = withEvent(next, domainEvent(now, 'rotation-waiting-dns', opts.by, message, selectors));
  }
  if (!verification.ok || !pending.length) return next;
  const replaced = new Set(pending.map((k) => k.algorithm));
  const retires = (k: DomainKeyRecord): boolean => k.status === 'active' && replaced.has(k.algorithm);
  const wasSigning = d.keys.filter(retires).map((k) => k.selector);
  next.keys = d.keys.map((k) => {
    if (k.status === 'pending') return { ...k, status: 'active', activatedAt: now };
    if (retires(k)) return { ...k, status: 'retired', retiredAt: now, keepPublishedUntil: opts.keepPublishedUntil };
    return k;
  });
  next.state = 'active';
  delete next.reason;
  delete next.rotation;
  const until = new Date(opts.keepPublishedUntil).toISOString();
  return withEvent(
    next,
    wasSigning.length
      ? domainEvent(
          now,
          'rotation-switched',
          opts.by,
          `DNS serves ${selectors.join(', ')}: signing switched; ${wasSigning.join(', ')} retired, keep published until ${until}`,
          selectors,
        )
      : domainEvent(now, 'activated', opts.by, `DNS serves ${selectors.join(', ')}: signing with it`, selectors),
  );
}
