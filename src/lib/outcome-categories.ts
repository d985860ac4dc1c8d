/**
 * The outcome vocabulary shared by the bounce rules (src/feedback/classify/rules.ts) and the metrics
 * that label outcomes (src/metrics/labels.ts re-exports it): kept here, below both, so the rules need
 * nothing from metrics/.
 */

/**
 * Outcome categories: the `category` values of config/bounce-rules.yaml (src/feedback/classify/rules.ts
 * validates rules against this list). A delivered attempt uses "none"; a refusal because the receiver's
 * authentication checks of Kurir's mail failed (SPF, DKIM, DMARC, PTR, TLS) is "auth-failure", with an
 * {@link AuthCause}; other 5.7.x policy refusals are "policy"; a message whose lifetime ran out is "message-expired".
 */
export const DELIVERY_CATEGORIES = [
  'none',
  'invalid-recipient',
  'bad-domain',
  'mailbox-full',
  'inactive-mailbox',
  'auth-failure',
  'policy',
  'spam-block',
  'rate-limit',
  'greylist',
  'network',
  'dns',
  'protocol',
  'message-expired',
  'other',
] as const;
export type DeliveryCategory = (typeof DELIVERY_CATEGORIES)[number];

export const BOUNCE_TYPES = ['hard', 'soft'] as const;
export type BounceType = (typeof BOUNCE_TYPES)[number];

/**
 * Which of the receiver's authentication checks refused Kurir's mail (the `cause` of an `auth-failure`
 * rule): the sending IP's PTR record, SPF, DKIM, DMARC (policy or missing record), From alignment, TLS
 * required, or "unauthenticated" when the receiver only says neither SPF nor DKIM passed.
 */
export const AUTH_CAUSES = ['ptr', 'spf', 'dkim', 'dmarc', 'alignment', 'tls', 'unauthenticated'] as const;
export type AuthCause = (typeof AUTH_CAUSES)[number];
