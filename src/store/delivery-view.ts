/**
 * A message as delivery reads it (src/store/message-store.ts `getForDelivery`, or the hash the queue's step read
 * with a job), built from the message hash of the one-hash layout (src/store/message-scripts.ts).
 */
import { RECIPIENT_FIELD_PREFIX } from './message-scripts.js';
import type { MessageRecord, RecipientState } from './types.js';

/** A message as delivery reads it: the record, each recipient's state and the body (null once dropped). */
export interface DeliveryView {
  record: MessageRecord;
  recipients: Record<string, RecipientState>;
  body: Buffer | null;
}

/** A hash with a record but no recipient fields was written in the layout before 2026-11-29 and must be migrated. */
export function olderLayout(hash: Record<string, Buffer>): boolean {
  return hash.record !== undefined && !Object.keys(hash).some((f) => f.startsWith(RECIPIENT_FIELD_PREFIX));
}

/** The delivery view of a message hash of the one-hash layout (record, `r:<address>` states, body). */
export function deliveryViewOf(hash: Record<string, Buffer>): DeliveryView {
  const recipients: Record<string, RecipientState> = {};
  for (const [field, value] of Object.entries(hash)) {
    if (field.startsWith(RECIPIENT_FIELD_PREFIX)) recipients[field.slice(RECIPIENT_FIELD_PREFIX.length)] = JSON.parse(value.toString()) as RecipientState;
  }
  return { record: JSON.parse(hash.record.toString()) as MessageRecord, recipients, body: hash.body ?? null };
}

/**
 * What `MessageStore.getForDelivery` answers, from the message hash the queue's step read with a job (field, value,
 * …); undefined when that hash cannot answer it (no record, or a record without recipient fields: an older layout
 * to migrate), so the caller reads the message itself.
 */
export function deliveryViewFromHash(flat: readonly Buffer[]): DeliveryView | undefined {
  const hash: Record<string, Buffer> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i].toString()] = flat[i + 1];
  return hash.record && !olderLayout(hash) ? deliveryViewOf(hash) : undefined;
}
