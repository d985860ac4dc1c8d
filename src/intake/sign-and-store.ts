/**
 * The last step of intake (intake-service.ts): sign the checked message, score it (pre-send scoring, when on), build
 * its record and store it with its delivery jobs in one script; when any of that fails, give back what the request
 * claimed (its Idempotency-Key, and the stored message unless a retry with the key may answer it).
 */
import type { Priority } from '../config/schema.js';
import { DkimError, type DkimSigner } from '../dkim/signer.js';
import { KurirError, toKurirError } from '../lib/errors.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PreSendScorer } from '../scoring/pre-send-scorer.js';
import type { MessageStore } from '../store/message-store.js';
import type { MessageRecord, TimelineEvent } from '../store/types.js';
import type { prepareMessage } from './headers.js';
import type { Accepted, Submission } from './submission.js';

/** What this step uses of the intake's dependencies (`IntakeDeps` of intake-service.ts). */
export interface SignAndStoreDeps {
  signer: DkimSigner;
  messages: MessageStore;
  metrics: Metrics;
  /** Pre-send scoring with rspamd (scoring.rspamd); none when it is off. */
  scorer?: PreSendScorer;
}

/** A submission that passed every check of the intake policy, with what those checks worked out. */
export interface CheckedMessage {
  id: string;
  now: number;
  recipients: string[];
  priority: Priority;
  ttl: number;
  mailFrom: string;
  fromDomain: string;
  prepared: ReturnType<typeof prepareMessage>;
  release: () => Promise<void>;
  reference?: string;
  metadata?: Record<string, string>;
}

/**
 * Signs, scores, stores and queues a checked submission; resolves once the message is in Redis with its jobs
 * (`duplicate` when its id was stored already). Throws KurirError: UNAVAILABLE or INTERNAL when signing fails,
 * the scorer's refusal, or the store's failure (the message taken back unless it has an Idempotency-Key).
 */
export async function signAndStore(deps: SignAndStoreDeps, sub: Submission, m: CheckedMessage): Promise<Accepted> {
  const { messages, signer } = deps;
  const { id, now, recipients, priority, ttl, mailFrom, fromDomain, prepared, release } = m;

  const signed = await signer.sign(prepared.raw, fromDomain).catch(async (err: unknown) => {
    deps.metrics.dkimFailures.inc({ domain: fromDomain, reason: err instanceof DkimError ? err.code : 'internal' });
    await release();
    // A signing thread that stopped mid-signature: nothing was signed or stored, the client may retry.
    if (err instanceof DkimError && err.code === 'DKIM_UNAVAILABLE')
      throw new KurirError('UNAVAILABLE', 'DKIM signing is unavailable, try again', { cause: err });
    throw new KurirError('INTERNAL', 'DKIM signing failed', { cause: err });
  });
  for (const s of signed.signatures) {
    deps.metrics.dkimSignatures.inc({ domain: s.domain, selector: s.selector, algorithm: s.algorithm });
  }
  // After signing: rspamd sees the message as receivers will (DKIM included). A refusal stores nothing.
  const scored = deps.scorer
    ? await deps.scorer.score({ id, domain: fromDomain, recipients, message: signed.message, tags: sub.tags }).catch(async (err: unknown) => {
        await release();
        throw err;
      })
    : null;
  const record: MessageRecord = {
    id,
    owner: sub.credential.name,
    interface: sub.iface,
    mailFrom,
    fromDomain,
    recipients,
    priority,
    createdAt: now,
    expiresAt: now + ttl * 1000,
    size: signed.message.length,
    messageId: prepared.messageId,
    subject: prepared.subject,
    dkim: signed.signatures,
    tags: sub.tags,
    metadata: m.metadata,
    ...(m.reference ? { reference: m.reference } : {}),
    ...(sub.leftOut?.length ? { leftOut: sub.leftOut } : {}),
  };
  const events: TimelineEvent[] = scored ? [scored] : [];
  for (const l of sub.leftOut ?? []) events.push({ type: 'suppressed', at: now, recipients: [l.address], reason: l.reason, source: 'intake' });
  // Not stored and queued means not accepted. When a write fails (Redis gone, or an answer that timed out
  // after Redis did the work) the client is told to retry. With an Idempotency-Key the message is left as it
  // may be: a retry with the key, possibly already under way on another connection, answers this id (or stores
  // it under this id), so taking it back could lose a message that retry acknowledged. Without a key it is taken
  // back, so the client's retry is the only copy, unless a worker already took its job (the message is then
  // delivered: at least once). If the take-back fails too, the reconciler delivers the stored copy.
  const takeBack = async (err: unknown): Promise<never> => {
    if (!sub.idempotency) await messages.remove(id).catch(() => false);
    throw toKurirError(err);
  };
  // Stored and queued in one script, with its first events: no moment where the message is stored without its
  // jobs, or without the record of the recipients left out of it.
  const created = await messages.create(record, signed.message, events, true).catch(takeBack);
  return { id, duplicate: !created };
}
