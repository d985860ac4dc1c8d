/**
 * Runs one delivery job under per-provider shaping. The slot is taken before the job's MX is resolved
 * when the provider is already known from the recipient domain (or an earlier send), else right before
 * the first SMTP send, once the MX host tells the provider. A job that gets no slot is held: the worker
 * moves it back to the delayed set (priority kept, no attempt counted, nothing on the timeline) until its
 * booked rate slot or its turn (see ProviderShaper), or for a short jittered wait when connections are
 * busy, so a large backlog does not spin. A paused recipient domain holds the job like a paused provider,
 * before anything else (also before the MX lookup when the provider is not known yet).
 */
import type { Priority } from '../config/schema.js';
import { deliverToDomain, type DeliveryDeps, type DeliveryResult } from '../delivery/deliver.js';
import type { RecipientOutcome, sendMessage } from '../delivery/smtp-client.js';
import { sendMessage as sendDirect } from '../delivery/smtp-client.js';
import type { ProviderShaper, ShapingDecision, ShapingLease } from './provider-shaper.js';

type Refusal = Extract<ShapingDecision, { ok: false }>;

/** Thrown out of the send function when the provider (known only after the MX lookup) has no slot. */
class ShapingWait extends Error {
  constructor(readonly decision: Refusal) {
    super(`shaping: ${decision.reason}`);
  }
}

export interface ShapedJob {
  id: string;
  messageId: string;
  domain: string;
  priority: Priority;
  /** How many times the job was taken by a worker so far (BullMQ attemptsStarted), for the back-off. */
  attemptsStarted: number;
}

export interface ShapedResult extends DeliveryResult {
  /** Held by shaping: run again at this time (ms). */
  holdUntil?: number;
}

/**
 * Extra wait after a refusal, so jobs do not come back in lockstep: none for a booked slot, a little for
 * a turn in the rate queue (already spaced by the shaper), and for connection slots and pauses a random
 * wait whose cap doubles with each hold of the same job.
 */
function spreadMs(job: ShapedJob, refusal: Refusal): number {
  if (refusal.booked) return 0;
  if (refusal.reason === 'provider-rate') return Math.round(Math.random() * 20);
  const k = Math.min(Math.max(job.attemptsStarted - 1, 0), 7);
  const cap = job.priority === 'verification' ? 200 : refusal.reason === 'provider-connections' ? 2000 : 1000;
  return Math.round(Math.random() * Math.min(cap, 50 * 2 ** k));
}

async function hold(deps: DeliveryDeps, job: ShapedJob, refusal: Refusal, recheckMs: number): Promise<ShapedResult> {
  const now = deps.clock.now();
  const paused = refusal.reason === 'provider-paused' || refusal.reason === 'domain-paused';
  let wait = refusal.reason === 'provider-connections' ? 50 : (refusal.waitMs ?? recheckMs);
  if (paused) {
    // A long hold must not outlive the message: an expired one gets its `expired` event now, and a
    // pause never delays that by more than the re-check interval.
    const record = await deps.messages.getRecord(job.messageId);
    if (!record || now >= record.expiresAt) {
      const refuse: typeof sendMessage = async () => {
        throw new ShapingWait(refusal);
      };
      try {
        return await deliverToDomain({ ...deps, send: refuse }, job.messageId, job.domain);
      } catch (err) {
        if (!(err instanceof ShapingWait)) throw err;
      }
    } else {
      wait = Math.min(wait, recheckMs, Math.max(0, record.expiresAt - now) + 50);
    }
  }
  return { holdUntil: now + Math.max(wait, refusal.booked ? 0 : 10) + spreadMs(job, refusal) };
}

/** Delivers a job's message to its domain within the provider's limits, or says how long to hold it. */
export async function deliverShaped(deps: DeliveryDeps, shaper: ProviderShaper, job: ShapedJob, recheckMs: number): Promise<ShapedResult> {
  let lease: ShapingLease | null = null;
  let outcomes: RecipientOutcome[] | null = null;
  const known = shaper.knownProvider(job.domain);
  if (known) {
    const d = await shaper.acquire(known, job.priority, job.id, job.domain);
    if (!d.ok) return hold(deps, job, d, recheckMs);
    lease = d.lease;
  } else {
    const paused = await shaper.checkDomain(job.domain, job.id);
    if (paused) return hold(deps, job, paused, recheckMs);
  }
  const base = deps.send ?? sendDirect;
  const send: typeof sendMessage = async (target, envelope, raw, opts) => {
    const provider = shaper.providerFor(job.domain, target.servername);
    if (!lease || lease.provider !== provider) {
      if (lease) await shaper.release(lease, null);
      lease = null;
      const d = await shaper.acquire(provider, job.priority, job.id, job.domain);
      if (!d.ok) throw new ShapingWait(d);
      lease = d.lease;
    }
    // Further MX hosts of the same message (when one does not answer) use the same slot.
    const result = await base(target, envelope, raw, opts);
    outcomes = result.outcomes;
    return result;
  };
  try {
    return await deliverToDomain({ ...deps, send }, job.messageId, job.domain);
  } catch (err) {
    if (err instanceof ShapingWait) return hold(deps, job, err.decision, recheckMs);
    throw err;
  } finally {
    const held = lease as ShapingLease | null;
    if (held) await shaper.release(held, outcomes).catch((err: unknown) => deps.logger.warn({ err, provider: held.provider }, 'shaping: release failed'));
  }
}
