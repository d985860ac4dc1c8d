/**
 * What the message store takes and hands out besides the records of types.ts: recipient updates, timeline events
 * as appended and the event sink they go to (webhooks), pages of message ids from the recipient and reference
 * search indexes, and the bounds of those indexes. Shared by the store, its sharded form and their callers.
 */
import { FINAL_RECIPIENT_STATUSES, type MessageRecord, type MessageStatus, type RecipientState, type TimelineEvent } from './types.js';

export interface RecipientUpdate {
  address: string;
  state: RecipientState;
}

/** What an update did besides writing: whether the message is now final, and the recipients delivered again. */
export interface UpdateResult {
  final: boolean;
  /** Recipients an update delivered that were already `delivered`: the first delivery's state stands. */
  duplicates: string[];
  /** The write id was applied before (a retry whose answer was lost): nothing was written now; the rest is the first's answer. */
  replayed?: boolean;
}

/** A record write that is applied once across its retries (MessageStore.updateDetailed). */
export interface RecordWrite {
  /** The same for every try of one write. */
  id: string;
  /** Every try after the first: only a retry can find its write already applied, so only a retry looks. */
  retry: boolean;
}

/** Derives the message status shown to users from its recipients' states. */
export function messageStatus(states: RecipientState[]): MessageStatus {
  const s = new Set(states.map((r) => r.status));
  if (s.size === 1) return states[0].status;
  if ([...s].every((x) => FINAL_RECIPIENT_STATUSES.has(x))) return s.has('delivered') ? 'partially-delivered' : s.has('bounced') ? 'bounced' : 'expired';
  return s.has('deferred') ? 'deferred' : 'queued';
}

/** A timeline event with its position in the message's timeline (stable: the timeline is append-only). */
export interface AppendedEvent {
  index: number;
  event: TimelineEvent;
}

/**
 * Told about timeline events once `update` committed them: the one hook every producer of events
 * (delivery, bounce and complaint ingest) passes through. Used for webhooks. Rejects only when events it
 * `wants` could not be handed on; they then stay in the webhook outbox for the relay.
 */
export interface EventSink {
  /** Takes events just committed for `record`, with their timeline indexes; rejects as the interface says. */
  onEvents(record: MessageRecord, events: AppendedEvent[]): Promise<void>;
  /**
   * Whether some of `events` must reach the sink even if this process dies right after the write (the record
   * when the caller has it; without it, whether any might): those go through the webhook outbox.
   */
  wants?(record: MessageRecord | undefined, events: readonly TimelineEvent[]): boolean;
}

/** A page of message ids from a search, newest first. */
export interface IdPage {
  ids: string[];
  more: boolean;
  /** Shards (`redis.shards`) that did not answer: their messages are missing from this page. */
  unavailable?: string[];
}

/** Messages kept per recipient address in the search index (the newest; older ones stay readable by id). */
export const MAX_MESSAGES_PER_RECIPIENT = 500;

/**
 * One write in this many trims the recipient or reference index it adds to (entries past the retention or
 * beyond {@link MAX_MESSAGES_PER_RECIPIENT}): two commands less on the others. Readers stop at the cap, so the
 * few entries an index holds beyond it between trims are never shown.
 */
export const INDEX_TRIM_EVERY = 16;
