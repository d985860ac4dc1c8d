import type { MessageRecord } from '../../src/store/types.js';

/**
 * A stored message's record as the store tests write it: a verification message from example.test, accepted
 * over HTTP by `booking` at `createdAt` (now by default), expiring 30 minutes later; `over` changes any field.
 */
export function messageRecord(id: string, recipients: string[], over: Partial<MessageRecord> = {}): MessageRecord {
  const createdAt = over.createdAt ?? Date.now();
  return {
    id,
    owner: 'booking',
    interface: 'http',
    mailFrom: 'a@example.test',
    fromDomain: 'example.test',
    recipients,
    priority: 'verification',
    createdAt,
    expiresAt: createdAt + 1_800_000,
    size: 10,
    messageId: `<${id}@example.test>`,
    dkim: [],
    ...over,
  };
}
