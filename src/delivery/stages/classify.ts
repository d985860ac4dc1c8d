/**
 * The classify stage, pure: what each recipient's outcome means for its state (delivered, bounced,
 * deferred, expired; a category from config/bounce-rules.yaml), and the timeline events of the attempt.
 */
import { classifyReply, type BounceRules } from '../../feedback/rules.js';
import type { RecipientUpdate } from '../../store/message-store.js';
import type { RecipientStatus, TimelineEvent } from '../../store/types.js';
import type { Outcome } from './context.js';

/** One recipient's outcome with the state it leads to. */
export interface ClassifiedOutcome {
  outcome: Outcome;
  status: RecipientStatus;
  category: string;
}

/** An attempt as it will be recorded: per recipient, the state updates, and the outcome events. */
export interface ClassifiedAttempt {
  recipients: ClassifiedOutcome[];
  updates: RecipientUpdate[];
  /** One event per (status, category): recipients refused for different reasons get separate events. */
  events: TimelineEvent[];
  /** The distinct statuses of the attempt, for the log. */
  results: RecipientStatus[];
}

/**
 * Classifies an attempt's outcomes. A temporary outcome is `deferred` until `retryAt`, or `expired` when
 * no retry fits before the message expires (`retryAt` null); `host` is the label of the last host tried.
 */
export function classifyAttempt(
  rules: BounceRules,
  outcomes: readonly Outcome[],
  opts: { attempt: number; now: number; retryAt: number | null; host?: string },
): ClassifiedAttempt {
  const { attempt, now, retryAt, host } = opts;
  const recipients = outcomes.map((o): ClassifiedOutcome => {
    const status: RecipientStatus =
      o.kind === 'delivered' ? 'delivered' : o.kind === 'perm' ? 'bounced' : o.kind === 'expired' || retryAt === null ? 'expired' : 'deferred';
    const category = status === 'delivered' ? 'none' : status === 'expired' ? 'message-expired' : classifyReply(rules, { code: o.code, text: o.reply }).category;
    return { outcome: o, status, category };
  });
  const updates = recipients.map(({ outcome: o, status, category }): RecipientUpdate => ({
    address: o.address,
    state: {
      status,
      attempts: attempt,
      updatedAt: now,
      reply: o.reply,
      ...(status === 'delivered' ? {} : { category }),
      nextAttemptAt: status === 'deferred' ? (retryAt ?? undefined) : undefined,
    },
  }));
  const groups = new Map<string, { status: RecipientStatus; category: string; list: Outcome[] }>();
  for (const { outcome, status, category } of recipients) {
    const key = `${status}\0${category}`;
    const group = groups.get(key) ?? { status, category, list: [] };
    group.list.push(outcome);
    groups.set(key, group);
  }
  const events: TimelineEvent[] = [];
  for (const { status, category, list } of groups.values()) {
    const addresses = list.map((o) => o.address);
    const reply = list[0].reply;
    if (status === 'delivered') events.push({ type: 'delivered', at: now, recipients: addresses, host: host ?? '', reply });
    else if (status === 'bounced') events.push({ type: 'bounced', at: now, recipients: addresses, reply, category, host });
    else if (status === 'deferred') events.push({ type: 'deferred', at: now, recipients: addresses, reply, category, nextAttemptAt: retryAt as number });
    else events.push({ type: 'expired', at: now, recipients: addresses, reply });
  }
  return { recipients, updates, events, results: [...new Set([...groups.values()].map((g) => g.status))] };
}
