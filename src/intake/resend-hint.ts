/**
 * Whether the booking system could send one more message to an address now, as far as the address is
 * concerned: not suppressed, and under the per-recipient limit (read without consuming a point). What
 * support needs before saying "we will send you a new code". Credential and daily caps are not part of it:
 * they depend on who sends, not on the recipient.
 */
import type { Clock } from '../lib/clock.js';
import { toKurirError } from '../lib/errors.js';
import type { IntakeLimiter, RecipientAllowance } from '../shaping/intake-limiter.js';
import type { Suppression, SuppressionStore } from '../store/suppression-store.js';

/** The resend outlook of one address. */
export interface ResendHint {
  address: string;
  /** A new message of a limited priority would be accepted now (false when suppressed or over the limit). */
  allowed: boolean;
  /** Why not: the address is suppressed (refused until the suppression is removed), or its budget is used up. */
  reason: 'suppressed' | 'recipient-limit' | null;
  /** When the next message is allowed (ms): now when allowed; null while suppressed. */
  nextAllowedAt: number | null;
  /** The address's suppression, when it has one. */
  suppression: Suppression | null;
  /** The per-recipient limit and its use, null when none applies. */
  limit: RecipientAllowance | null;
}

export interface ResendHintDeps {
  suppressions: Pick<SuppressionStore, 'get'>;
  limits?: Pick<IntakeLimiter, 'recipientAllowance'>;
  clock: Clock;
}

/** The resend outlook of `address` (normalized, lower case); consumes nothing. */
export async function resendHint(deps: ResendHintDeps, address: string): Promise<ResendHint> {
  const [suppression, limit] = await Promise.all([deps.suppressions.get(address), deps.limits?.recipientAllowance(address) ?? null]).catch((err: unknown) => {
    throw toKurirError(err);
  });
  const now = deps.clock.now();
  if (suppression) return { address, allowed: false, reason: 'suppressed', nextAllowedAt: null, suppression, limit };
  const over = limit !== null && limit.used >= limit.max && limit.nextAllowedAt > now;
  return { address, allowed: !over, reason: over ? 'recipient-limit' : null, nextAllowedAt: over ? limit.nextAllowedAt : now, suppression: null, limit };
}
