/**
 * The outcome vocabulary shared by the bounce rules (src/feedback/classify/rules.ts) and the metrics
 * that label outcomes (src/metrics/labels.ts re-exports it): kept here, below both, so the rules need
 * nothing from metrics/.
 */

/**
 * Outcome categories: the `category` values of config/bounce-rules.yaml (src/feedback/classify/rules.ts
 * validates rules against this list). A delivered attempt uses "none"; 5.7.x auth/DMARC/PTR replies are
 * "policy"; a message whose lifetime ran out is "message-expired".
 */
export const DELIVERY_CATEGORIES = [
  'none',
  'invalid-recipient',
  'bad-domain',
  'mailbox-full',
  'inactive-mailbox',
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
