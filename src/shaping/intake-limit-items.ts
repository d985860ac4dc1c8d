/**
 * The pieces of an intake limit check (intake-limiter.ts): one limit item per limiter a submission counts against,
 * and what becomes of a check that fails: a refusal naming the limit and when to try again, or UNAVAILABLE when
 * Redis does not answer.
 */
import { type RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { KurirError, toKurirError } from '../lib/errors.js';
import type { Metrics } from '../metrics/metrics.js';

/** Label values of kurir_shaping_refusals_total{limit} set at intake. */
export type IntakeLimitName = 'recipient' | 'credential-rate' | 'credential-daily' | 'domain-daily' | 'global-daily';

/** One limiter a submission counts against: its counter key, the points it takes, and how a refusal reads. */
export interface LimitItem {
  limit: IntakeLimitName;
  limiter: RateLimiterRedis;
  key: string;
  points: number;
  /** When the client may try again, from the refusing limiter's answer. */
  retryMs: (res: RateLimiterRes) => number;
  describe: string;
  /** The recipient address, for recipient limits. */
  address?: string;
}

/** Whether a limiter's rejection is its answer "over the limit" (not a store failure). */
export function isOver(err: unknown): err is RateLimiterRes {
  return err instanceof RateLimiterRes;
}

/** A store failure of a limiter: Redis not answering is UNAVAILABLE (503 / 451 4.3.0), like everywhere else. */
export function storeError(err: unknown): KurirError {
  if (err instanceof Error && /Redis connection is not ready/i.test(err.message)) return new KurirError('UNAVAILABLE', undefined, { cause: err });
  return toKurirError(err);
}

/**
 * The refusal of a check in which `over` went over their limits, counted in kurir_shaping_refusals_total: the first
 * limit refused decides the error (RECIPIENT_RATE_LIMITED naming the recipients, else RATE_LIMITED) and its Retry-After.
 */
export function limitRefusal(over: Array<{ item: LimitItem; res: RateLimiterRes }>, metrics: Pick<Metrics, 'shapingRefusals'>): KurirError {
  const limits = [...new Set(over.map((o) => o.item.limit))];
  for (const limit of limits) metrics.shapingRefusals.inc({ limit });
  const first = over[0].item.limit;
  const same = over.filter((o) => o.item.limit === first);
  const retryAfterSeconds = Math.max(1, Math.ceil(Math.max(...same.map((o) => o.item.retryMs(o.res))) / 1000));
  if (first === 'recipient') {
    const addresses = same.map((o) => o.item.address as string);
    return new KurirError('RECIPIENT_RATE_LIMITED', `${addresses.join(', ')}: ${same[0].item.describe}; try again in ${retryAfterSeconds} s`, {
      field: 'to',
      retryAfterSeconds,
      details: { limit: first, recipients: addresses, retryAfterSeconds },
    });
  }
  return new KurirError('RATE_LIMITED', `${same[0].item.describe}; try again in ${retryAfterSeconds} s`, {
    retryAfterSeconds,
    details: { limit: first, retryAfterSeconds },
  });
}

/** `fn` run at most once: every call answers the promise of the first. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | null = null;
  return () => (p ??= fn());
}
