/**
 * Applies an ESP notification once: an SNS MessageId (SNS delivers at least once) or a Mailgun signature
 * token (replay protection). The marker (`Keys.espSeen`) is written in two steps: a short claim while the
 * notification is applied, and the long-lived "seen" marker only after it was. A process that dies, or
 * loses Redis, while applying leaves only the claim, which expires after CLAIM_SECONDS; the provider's next
 * delivery is then applied. Until 1 Dec 2026 the long-lived marker was written first and taken back only on
 * a caught error, so such a notification was answered as a duplicate (or a replay) ever after, and lost.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../lib/logger.js';

/**
 * How long a notification being applied is claimed. Applying takes milliseconds (each Redis command times
 * out after 5 s); SNS's default policy retries an HTTPS delivery 3 times, 20 s apart, so the claim of a
 * process that died is gone before the first retry, and the retry is applied.
 */
export const CLAIM_SECONDS = 15;

const CLAIM_PREFIX = 'claim:';
/** Deletes the claim only while it is still this request's (it may have expired and passed to another). */
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/** What became of one delivery of a notification. */
export type ApplyOnce<T> =
  | { state: 'applied'; result: T }
  /** Applied before: a redelivery or a replay. */
  | { state: 'seen' }
  /** Another request is applying it right now (or its claim is still held): the provider should retry later. */
  | { state: 'in-progress' };

export interface ApplyOnceOptions {
  redis: Redis;
  /** The notification's marker key (`Keys.espSeen`). */
  key: string;
  /** How long the applied notification is remembered. */
  seenSeconds: number;
  now: number;
  logger: Logger;
}

/**
 * Runs `apply` unless the notification was applied before or is being applied: claims the key for
 * CLAIM_SECONDS, applies, then marks it seen for `seenSeconds`. When `apply` throws, the claim is given back
 * (best effort: if that fails too, it expires) and the error is rethrown, so the provider's retry applies
 * it. When only the seen marker cannot be written, the result still stands: the notification was applied.
 */
export async function applyOnce<T>(opts: ApplyOnceOptions, apply: () => Promise<T>): Promise<ApplyOnce<T>> {
  const { redis, key } = opts;
  const claim = `${CLAIM_PREFIX}${randomUUID()}`;
  if ((await redis.set(key, claim, 'EX', CLAIM_SECONDS, 'NX')) !== 'OK') {
    const held = await redis.get(key);
    // null: a claim that expired between the two commands; the next delivery will take it.
    return held === null || held.startsWith(CLAIM_PREFIX) ? { state: 'in-progress' } : { state: 'seen' };
  }
  let result: T;
  try {
    result = await apply();
  } catch (err) {
    await redis.eval(RELEASE, 1, key, claim).catch(() => undefined);
    throw err;
  }
  try {
    await redis.set(key, `seen:${opts.now}`, 'EX', opts.seenSeconds);
  } catch (err) {
    opts.logger.warn({ err, key }, 'ESP notification applied, but not marked as seen: a redelivery may apply it again');
  }
  return { state: 'applied', result };
}
