import { shownSubject } from '../intake/subject-summary.js';
import type { MessageView } from '../store/types.js';

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/**
 * The view of a stored message that people read — `GET /v1/messages/:id` and `kurir message show`: envelope,
 * state per recipient and the timeline, times in ISO 8601.
 */
export function presentMessage(view: MessageView): Record<string, unknown> {
  const r = view.record;
  const recipients: Record<string, unknown> = {};
  for (const [addr, s] of Object.entries(view.recipients)) {
    recipients[addr] = { ...s, updatedAt: iso(s.updatedAt), nextAttemptAt: iso(s.nextAttemptAt) };
  }
  return {
    id: r.id,
    status: view.status,
    from: r.mailFrom,
    to: r.recipients,
    priority: r.priority,
    interface: r.interface,
    createdAt: iso(r.createdAt),
    expiresAt: iso(r.expiresAt),
    messageId: r.messageId,
    subject: shownSubject(r.subject),
    size: r.size,
    dkim: r.dkim,
    tags: r.tags ?? [],
    metadata: r.metadata ?? {},
    recipients,
    // Recipients suppressed between RCPT TO and the end of DATA: not in `to`, never sent (docs/smtp.md).
    ...(r.leftOut?.length ? { leftOut: r.leftOut } : {}),
    events: view.events.map((e) => ({ ...e, at: iso(e.at), ...('nextAttemptAt' in e ? { nextAttemptAt: iso(e.nextAttemptAt) } : {}) })),
  };
}
