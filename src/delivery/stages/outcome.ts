/**
 * The last stages of a delivery. Classify, pure: what each recipient's outcome means for its state
 * (delivered, bounced, deferred, expired; a category from config/bounce-rules.yaml) and the timeline events
 * of the attempt. Record: the outcomes become metrics, suppressions (feedback) and, in one store
 * transaction, recipient states and timeline events; the store's event sink queues the webhooks. Last, the
 * provider's rolling incident window (src/store/incident-store.ts) counts them: one pipelined write.
 */
import { randomUUID } from 'node:crypto';
import { classifyReply, type BounceRules } from '../../feedback/classify/rules.js';
import { isUnavailable } from '../../lib/errors.js';
import { whileUnavailable } from '../../lib/while-unavailable.js';
import type { OutcomeTally } from '../../store/incident-store.js';
import type { RecipientUpdate } from '../../store/message-store-types.js';
import { FINAL_RECIPIENT_STATUSES, type RecipientStatus, type TimelineEvent } from '../../store/types.js';
import type { DeliveryDeps, LoadedJob, Outcome } from './job.js';

/** How long the record of an attempt that delivered waits for Redis to take writes again (see recordAttempt). */
export const DELIVERED_RECORD_MS = 10 * 60_000;

/** One recipient's outcome with the state it leads to. */
export interface ClassifiedOutcome {
  outcome: Outcome;
  status: RecipientStatus;
  category: string;
  /** With category auth-failure: which authentication check the receiver said failed. */
  cause?: string;
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
    if (status === 'delivered' || status === 'expired') return { outcome: o, status, category: status === 'delivered' ? 'none' : 'message-expired' };
    const { category, cause } = classifyReply(rules, { code: o.code, text: o.reply });
    return { outcome: o, status, category, ...(cause ? { cause } : {}) };
  });
  const updates = recipients.map(
    ({ outcome: o, status, category }): RecipientUpdate => ({
      address: o.address,
      state: {
        status,
        attempts: attempt,
        updatedAt: now,
        reply: o.reply,
        ...(status === 'delivered' ? {} : { category }),
        nextAttemptAt: status === 'deferred' ? (retryAt ?? undefined) : undefined,
      },
    }),
  );
  const groups = new Map<string, { status: RecipientStatus; category: string; cause?: string; list: Outcome[] }>();
  for (const { outcome, status, category, cause } of recipients) {
    const key = `${status}\0${category}\0${cause ?? ''}`;
    const group = groups.get(key) ?? { status, category, ...(cause ? { cause } : {}), list: [] };
    group.list.push(outcome);
    groups.set(key, group);
  }
  const events: TimelineEvent[] = [];
  for (const { status, category, cause, list } of groups.values()) {
    const addresses = list.map((o) => o.address);
    const reply = list[0].reply;
    const why = cause ? { category, cause } : { category };
    if (status === 'delivered') events.push({ type: 'delivered', at: now, recipients: addresses, host: host ?? '', reply });
    else if (status === 'bounced') events.push({ type: 'bounced', at: now, recipients: addresses, reply, ...why, host });
    else if (status === 'deferred') events.push({ type: 'deferred', at: now, recipients: addresses, reply, ...why, nextAttemptAt: retryAt as number });
    else events.push({ type: 'expired', at: now, recipients: addresses, reply });
  }
  return { recipients, updates, events, results: [...new Set([...groups.values()].map((g) => g.status))] };
}

/**
 * The recipients whose outcome in this attempt must change nothing. With the lease lost: every one not delivered
 * (the run holding the lease decides). With it held, a recipient that became final while this attempt was
 * sending: delivered by another run of the job (one that had lost its lease and was still sending; the mail
 * arrived, so a 5xx for the second copy neither bounces nor suppresses it), or cancelled (a deferral or expiry
 * would say nothing new; a 5xx still counts: the receiver refused the address). Deliveries are never superseded (a
 * second one is marked `duplicate` by the store's write). That read and the record are two steps; only a change
 * landing between them escapes it.
 */
async function supersededOutcomes(deps: DeliveryDeps, id: string, attempt: ClassifiedAttempt, held: boolean): Promise<Set<string>> {
  const failed = attempt.recipients.filter((r) => r.status !== 'delivered');
  if (!held) return new Set(failed.map((r) => r.outcome.address));
  if (!failed.length) return new Set();
  const states = await deps.messages.getRecipients(
    id,
    failed.map((r) => r.outcome.address),
  );
  const gone = failed.filter(({ outcome, status }) => {
    const state = states[outcome.address];
    // This attempt's own state: an earlier try of this record was applied, its answer lost (the store replays it).
    if (state && state.status === status && state.attempts === attempt.updates[0]?.state.attempts && state.updatedAt === attempt.updates[0]?.state.updatedAt)
      return false;
    const now = state?.status;
    return now === 'delivered' || (now !== undefined && FINAL_RECIPIENT_STATUSES.has(now) && status !== 'bounced');
  });
  return new Set(gone.map((r) => r.outcome.address));
}

/** Outcome events with the part concerning `gone` split off and marked superseded (a delivery is never marked). */
function markSuperseded(events: readonly TimelineEvent[], gone: ReadonlySet<string>): readonly TimelineEvent[] {
  if (!gone.size) return events;
  return events.flatMap((e): TimelineEvent[] => {
    if (e.type !== 'deferred' && e.type !== 'bounced' && e.type !== 'expired') return [e];
    const late = e.recipients.filter((r) => gone.has(r));
    if (!late.length) return [e];
    const rest = e.recipients.filter((r) => !gone.has(r));
    return [...(rest.length ? [{ ...e, recipients: rest }] : []), { ...e, recipients: late, superseded: true }];
  });
}

/**
 * The attempt's outcomes as the incident window counts them: per (status, category, cause), leaving out the
 * superseded ones. Those changed no recipient's state (the run holding the lease, or the earlier final state,
 * decided it and is counted where it happened); counting them too would add a second outcome for one recipient.
 */
export function outcomeTallies(attempt: ClassifiedAttempt, superseded: ReadonlySet<string>): OutcomeTally[] {
  const tallies = new Map<string, OutcomeTally>();
  for (const { outcome, status, category, cause } of attempt.recipients) {
    if (superseded.has(outcome.address)) continue;
    const key = `${status}\0${category}\0${cause ?? ''}`;
    // classifyAttempt never answers queued; the cast only narrows RecipientStatus for the window's type.
    const tally = tallies.get(key) ?? { status: status as OutcomeTally['status'], category, ...(cause ? { cause, reply: outcome.reply } : {}), count: 0 };
    tally.count++;
    tallies.set(key, tally);
  }
  return [...tallies.values()];
}

/**
 * The record of an attempt that delivered to `delivered`, once its first window ended with Redis still refusing
 * writes (`first`, the last error). A delivery left unrecorded is sent again by every later run of the job (each a
 * copy in the recipient's inbox), and a Redis refusing writes (OOM, a failover, a full disk) can last minutes: the
 * write waits that out, up to {@link DELIVERED_RECORD_MS}. Safe past the lease: each try asks holdsLease, and a run
 * that lost it records only its events and deliveries. Not past the worker's close (`deps.closing`): its Redis
 * clients go next, so the wait ends there and says at error level what was delivered and not recorded.
 */
async function recordDelivered(
  deps: DeliveryDeps,
  id: string,
  provider: string,
  delivered: string[],
  write: () => Promise<void>,
  first: unknown,
): Promise<void> {
  let err = first;
  if (!deps.closing?.aborted) {
    deps.logger.warn({ err, id, provider }, 'delivery done but not recorded: Redis refuses writes; retrying the record, not the send');
    // Redis may still run the queue's scripts meanwhile (under OOM a script whose first write frees memory goes on), so
    // the job's lease can run out and the job be taken again: a run in this process then waits (see runDelivery; the
    // recipients are marked in DeliveryDeps.unrecorded by recordAttempt until this returns).
    try {
      return await whileUnavailable(write, DELIVERED_RECORD_MS, deps.closing);
    } catch (e) {
      if (!deps.closing?.aborted || !isUnavailable(e)) throw e;
      err = e;
    }
  }
  // The addresses are the only trace of these deliveries (docs/security.md): the job's next run sends them a copy again.
  deps.logger.error(
    { err, id, provider, recipients: delivered },
    'delivered but not recorded: the worker closed while Redis refused writes; the job runs again once its lease runs out and sends these recipients another copy',
  );
  throw err;
}

/**
 * Records a classified attempt: counts each recipient's result under `provider`, lets the feedback hook
 * suppress hard bounces (its `suppressed` events are committed with the attempt's), and writes states and
 * events (`attemptEvents` first, then the outcome events). The SMTP transaction is done by now, so a
 * Redis outage (or Redis refusing writes) must not make the job run (and send) again: the write waits it out for
 * up to half the job's lock (at most 20 s), and, when a recipient was delivered, up to {@link DELIVERED_RECORD_MS}
 * (`recordDelivered`); either wait ends when the worker closes (`deps.closing`). A run that no longer holds its job's lease (`holdsLease`) may have been overtaken by
 * another run of the job, which decides the recipients' states: it records its events and its deliveries (the
 * mail did arrive; recording it spares a resend), and no other state and no suppression; its other outcome events
 * are marked `superseded` (kept on the timeline, not sent to webhooks). So is an outcome for a recipient that
 * became final while this run was sending (see `supersededOutcomes`). A delivery of a recipient another run recorded
 * as delivered first is marked `duplicate` by the store in the same script as the write (no check-then-write gap);
 * a retry of this record whose first try was applied but answered too late is not (the write's id makes it a no-op):
 * the first delivery's state and webhook stand. The metrics count every outcome of the attempt; the incident window
 * only those neither superseded nor duplicate (`outcomeTallies`).
 */
export async function recordAttempt(
  deps: DeliveryDeps,
  loaded: LoadedJob,
  provider: string,
  attempt: ClassifiedAttempt,
  attemptEvents: readonly TimelineEvent[],
  now: number,
  holdsLease?: () => Promise<boolean>,
): Promise<void> {
  const { config, metrics } = deps;
  const { record } = loaded;
  // The attempt happened and the receiver answered: the metrics count every recipient's result, superseded or
  // not (kurir_delivery_superseded_total counts those apart; docs/metrics.md).
  for (const { status, category, cause } of attempt.recipients) {
    metrics.deliveryAttempts.inc({ provider, result: status, category });
    if (cause) metrics.deliveryAuthFailures.inc({ provider, cause });
    if (status === 'delivered') metrics.deliveryTime.observe({ priority: record.priority, provider }, (now - record.createdAt) / 1000);
  }
  let counted = false;
  let superseded: ReadonlySet<string> = new Set();
  let duplicates: readonly string[] = [];
  // One id for this record across its retries: a try applied whose answer was lost is not applied again.
  const writeId = randomUUID();
  let tries = 0;
  const write = async (): Promise<void> => {
    const retry = tries++ > 0;
    const held = holdsLease ? await holdsLease() : true;
    const gone = await supersededOutcomes(deps, record.id, attempt, held);
    superseded = gone;
    if (gone.size) {
      // Counted once per attempt, not per retry of this write.
      if (!counted) metrics.deliverySuperseded.inc({ reason: held ? 'settled' : 'lease-lost' }, gone.size);
      counted = true;
      const fields = { id: record.id, results: attempt.results, provider, superseded: gone.size };
      // A cancel during an attempt is an admin's doing; a lost lease is a fault worth a look.
      if (held) deps.logger.info(fields, 'delivery attempt ended for recipients that became final meanwhile (cancelled, or delivered by another run)');
      else deps.logger.warn(fields, 'delivery attempt ended after its job lease was lost: only its events and deliveries are recorded');
    }
    const kept = attempt.recipients.filter((r) => !gone.has(r.outcome.address));
    const events = [...attemptEvents, ...markSuperseded(attempt.events, gone)];
    if (deps.feedback && kept.length) {
      const synced = kept.map(({ outcome: o, status }) => ({ address: o.address, status, code: o.code, reply: o.reply }));
      events.push(...(await deps.feedback.onOutcomes(record, synced, now)));
    }
    const updates = attempt.updates.filter((u) => !gone.has(u.address));
    // A delivery of a recipient already delivered is marked a duplicate by the store's script, in the write itself.
    ({ duplicates } = await deps.messages.updateDetailed(record.id, updates, events, record, { id: writeId, retry }));
  };
  const shortMs = Math.min(20_000, (config.delivery.jobLockSeconds * 1000) / 2);
  const delivered = attempt.recipients.filter((r) => r.status === 'delivered').map((r) => r.outcome.address);
  // From the first try: a lease that runs out while this record waits (Redis refusing writes, a loaded machine) lets
  // the job be taken again, and a run in this process then waits for the record instead of sending a copy. Until
  // 2 Dec 2026 the mark came only after the short window, and a run that started within it sent a second copy.
  const marks = delivered.map((address) => `${record.id}\0${address}`);
  for (const key of marks) deps.unrecorded?.add(key);
  try {
    await whileUnavailable(write, shortMs, deps.closing);
  } catch (err) {
    if (!isUnavailable(err) || !delivered.length) throw err;
    await recordDelivered(deps, record.id, provider, delivered, write, err);
  } finally {
    for (const key of marks) deps.unrecorded?.delete(key);
  }
  if (duplicates.length) {
    metrics.deliverySuperseded.inc({ reason: 'duplicate' }, duplicates.length);
    deps.logger.warn(
      { id: record.id, provider, duplicates: duplicates.length },
      'delivered again to recipients already delivered (two runs of the job sent it): recorded as a duplicate, no webhook',
    );
  }
  // The incident view is a summary, not the record: losing one attempt's counts must not fail the job.
  await deps.incidents
    ?.record(provider, now, outcomeTallies(attempt, new Set([...superseded, ...duplicates])))
    .catch((err: unknown) => deps.logger.warn({ err, id: record.id, provider }, 'incident window not updated'));
}
