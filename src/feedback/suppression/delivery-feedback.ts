/**
 * The suppression side of synchronous outcomes, called by the delivery pipeline (src/delivery/stages/outcome.ts)
 * with an attempt's outcomes just before it commits them (so a recipient shows as bounced only once its
 * suppression is stored): a permanent refusal (5xx) goes through the same SuppressionPolicy as an
 * asynchronous bounce, and a delivery ends the address's run of soft failures. Never throws.
 */
import type { Logger } from '../../lib/logger.js';
import type { MessageRecord, RecipientStatus, TimelineEvent } from '../../store/types.js';
import type { ReplyClassifier } from '../classify/rules.js';
import type { SuppressionPolicy } from './policy.js';

/** One recipient's outcome of a delivery attempt, as the processor recorded it. */
export interface SyncOutcome {
  address: string;
  status: RecipientStatus;
  /** SMTP reply code; null when there was no reply (connection or DNS failure). */
  code: number | null;
  reply: string;
}

/** What the delivery processor calls with each attempt's outcomes, before it commits them. */
export interface DeliveryFeedbackHook {
  /** Applies suppressions for the outcomes; answers the `suppressed` events to commit with the attempt's own. */
  onOutcomes(record: MessageRecord, outcomes: SyncOutcome[], at: number): Promise<TimelineEvent[]>;
}

/**
 * The delivery pipeline's {@link DeliveryFeedbackHook}: runs an attempt's bounced recipients through the SuppressionPolicy and clears
 * the soft failures of those it delivered to.
 */
export class DeliveryFeedback implements DeliveryFeedbackHook {
  constructor(private readonly deps: { policy: SuppressionPolicy; classify: ReplyClassifier; logger: Logger }) {}

  /** Applies the policy to an attempt's outcomes; answers the `suppressed` events to commit with the attempt's own (never throws). */
  async onOutcomes(record: MessageRecord, outcomes: SyncOutcome[], at: number): Promise<TimelineEvent[]> {
    const { policy, classify, logger } = this.deps;
    const events: TimelineEvent[] = [];
    try {
      const delivered = outcomes.filter((o) => o.status === 'delivered').map((o) => o.address);
      // Not awaited: resetting soft-bounce counts must not slow deliveries down.
      if (delivered.length) policy.onDelivered(delivered).catch((err: unknown) => logger.warn({ err, id: record.id }, 'soft-bounce reset failed'));
      for (const o of outcomes) {
        if (o.status !== 'bounced') continue;
        const decision = await policy.onFailure({
          address: o.address,
          classification: classify({ code: o.code, text: o.reply }),
          source: 'smtp',
          messageId: record.id,
          at,
        });
        if (decision.action === 'suppressed' && decision.ours)
          events.push({ type: 'suppressed', at, recipients: [o.address], reason: decision.reason, source: decision.source });
      }
    } catch (err) {
      logger.error({ err, id: record.id }, 'suppression after delivery failed');
    }
    return events;
  }
}
