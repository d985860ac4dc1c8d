/**
 * The record stage: an attempt's outcomes become metrics, suppressions (feedback) and, in one store
 * transaction, recipient states and timeline events; the store's event sink queues the webhooks.
 */
import { whileUnavailable } from '../../lib/while-unavailable.js';
import type { TimelineEvent } from '../../store/types.js';
import type { ClassifiedAttempt } from './classify.js';
import type { DeliveryDeps, LoadedJob } from './context.js';

/**
 * Records a classified attempt: counts each recipient's result under `provider`, lets the feedback hook
 * suppress hard bounces (its `suppressed` events are committed with the attempt's), and writes states and
 * events (`attemptEvents` first, then the outcome events). The SMTP transaction is done by now, so a
 * Redis outage must not make the job run (and send) again: the write waits it out for a while, well
 * within the job's lock.
 */
export async function recordAttempt(
  deps: DeliveryDeps,
  loaded: LoadedJob,
  provider: string,
  attempt: ClassifiedAttempt,
  attemptEvents: readonly TimelineEvent[],
  now: number,
): Promise<void> {
  const { config, metrics } = deps;
  const { record } = loaded;
  for (const { status, category } of attempt.recipients) {
    metrics.deliveryAttempts.inc({ provider, result: status, category });
    if (status === 'delivered') metrics.deliveryTime.observe({ priority: record.priority, provider }, (now - record.createdAt) / 1000);
  }
  const recordMs = Math.min(20_000, (config.delivery.jobLockSeconds * 1000) / 2);
  await whileUnavailable(async () => {
    const events = [...attemptEvents, ...attempt.events];
    if (deps.feedback) {
      const synced = attempt.recipients.map(({ outcome: o, status }) => ({ address: o.address, status, code: o.code, reply: o.reply }));
      events.push(...(await deps.feedback.onOutcomes(record, synced, now)));
    }
    await deps.messages.update(record.id, attempt.updates, events);
  }, recordMs);
}
