/**
 * The first stages of a delivery: load the job's message and the recipients of its domain still waiting,
 * expire them when the message's lifetime is over, and read the body right before it is needed.
 */
import { domainOf } from '../../lib/address.js';
import { FINAL_RECIPIENT_STATUSES } from '../../store/types.js';
import type { DeliveryDeps, DeliveryJob, LoadedJob, Outcome } from './context.js';

/**
 * Loads the job's message record and the recipients of the job's domain that are not final yet; null
 * when there is nothing to do (the message is gone, or every such recipient is final, e.g. cancelled).
 * The attempt number is one more than the most attempts any of them has had.
 */
export async function loadJob(deps: DeliveryDeps, job: DeliveryJob): Promise<LoadedJob | null> {
  const record = await deps.messages.getRecord(job.messageId);
  if (!record) return null;
  const addresses = record.recipients.filter((r) => domainOf(r) === job.domain);
  const states = await deps.messages.getRecipients(job.messageId, addresses);
  const pending = addresses.filter((a) => !FINAL_RECIPIENT_STATUSES.has(states[a]?.status ?? 'queued'));
  if (!pending.length) return null;
  const attempt = Math.max(...pending.map((a) => states[a]?.attempts ?? 0)) + 1;
  return { record, pending, attempt };
}

/** `expired` outcomes for every pending recipient, with `reply` as the reason. */
export function expiredOutcomes(loaded: LoadedJob, reply = 'message expired before delivery'): Outcome[] {
  return loaded.pending.map((address) => ({ address, kind: 'expired' as const, code: null, reply }));
}

/** Expiry is due: the message's lifetime is over at `now`; its pending recipients are then `expiredOutcomes`. */
export function expiryDue(loaded: LoadedJob, now: number): boolean {
  return now >= loaded.record.expiresAt;
}

/**
 * The signed message as it will be sent; null when it is gone (the message became final meanwhile),
 * which the pipeline records as an expiry like a message past its lifetime.
 */
export async function loadBody(deps: DeliveryDeps, loaded: LoadedJob): Promise<Buffer | null> {
  return deps.messages.getBody(loaded.record.id);
}
