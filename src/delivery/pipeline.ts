/**
 * One delivery job, as a sequence of stages read top to bottom:
 *
 *   load (record, states and body in one read) → expire if due → source IP (warm-up caps) → gate → body gone? → route (MX)
 *   → expire if due → send (expire if due, gate per host) → a smarthost's refusals of Kurir deferred → retry time → classify
 *   → record → release (and give the source IP's count back when nothing was sent)
 *
 * Expiry is checked again after the route (an MX lookup and an MTA-STS fetch can take seconds) and before each host:
 * a message whose lifetime ends while its attempt runs is recorded `expired`, as at load, and not sent after its TTL.
 * Each check compares the loaded `expiresAt` with the clock: no Redis round trip.
 *
 * The stages live in stages/job.ts (load, expire, body), stages/route.ts, stages/send.ts, stages/smarthost-refusal.ts,
 * retry.ts and stages/outcome.ts (classify, record); the gate in src/shaping/gate.ts.
 *
 * Every stage answers with a value; nothing throws to mean "not now". The shaping gate answers go (with a
 * lease) or wait until a time; the pipeline answers the worker with what to do with the job: nothing more,
 * run again at a retry time, or wait for shaping. A thrown error is a bug or an infrastructure failure
 * (Redis, the store), never an outcome: the worker runs the job again after a back-off then.
 *
 * A new step (e.g. a pre-send check) is a line in this list, with its own module under stages/.
 */
import type { GateJob, GateRefusal } from '../shaping/gate.js';
import type { TimelineEvent } from '../store/types.js';
import { retryAtFor } from './retry.js';
import { expiredOutcomes, expiryDue, loadBody, loadJob, type DeliveryDeps, type DeliveryJob, type LoadedJob, type Outcome } from './stages/job.js';
import { classifyAttempt, recordAttempt } from './stages/outcome.js';
import { routeJob } from './stages/route.js';
import { sendToTargets, type Slot } from './stages/send.js';
import { deferSmarthostRefusals } from './stages/smarthost-refusal.js';

export type { DeliveryDeps, DeliveryJob } from './stages/job.js';

/** What the worker does with the job afterwards. */
export type PipelineResult =
  | { next: 'done' }
  /** Some recipients were deferred: run the job again at `at` (ms). */
  | { next: 'retry'; at: number }
  /** Shaping said not now: run the job again at `at` (ms), no attempt counted, nothing on the timeline. */
  | { next: 'wait'; at: number; reason: GateRefusal };

const DONE: PipelineResult = { next: 'done' };
/** How long a run waits for an earlier run of the job in this process to record its delivery (see DeliveryDeps.unrecorded). */
const UNRECORDED_WAIT_MS = 5000;

/** Runs one delivery job through every stage; see the module comment for the sequence. */
export async function runDelivery(deps: DeliveryDeps, job: DeliveryJob): Promise<PipelineResult> {
  const loaded = await loadJob(deps, job);
  if (!loaded) return DONE;
  if (deps.unrecorded?.size && loaded.pending.some((a) => deps.unrecorded?.has(`${job.messageId}\0${a}`))) {
    // An earlier run in this process delivered to one of them and is still waiting to record it: sending now would be a copy.
    deps.logger.info({ id: job.messageId, domain: job.domain }, 'delivery job waits: an earlier run delivered it and is recording that');
    return { next: 'retry', at: deps.clock.now() + UNRECORDED_WAIT_MS };
  }
  if (expiryDue(loaded, deps.clock.now())) return finish(deps, job, loaded, deps.providers.byDomain(job.domain), expiredOutcomes(loaded));

  const gateJob: GateJob = {
    id: job.id,
    domain: job.domain,
    senderDomain: loaded.record.fromDomain,
    priority: job.priority,
    attemptsStarted: job.attemptsStarted,
    expiresAt: loaded.record.expiresAt,
  };
  const source = await deps.gate.askSource(gateJob);
  if (!source.go) return { next: 'wait', at: source.until, reason: source.reason };
  const slot: Slot = { lease: null, replies: null, source: source.reservation };
  try {
    const gate = await deps.gate.ask(gateJob);
    if (!gate.go) return { next: 'wait', at: gate.until, reason: gate.reason };
    slot.lease = gate.lease;
    const body = await loadBody(deps, loaded);
    if (!body) return await finish(deps, job, loaded, deps.providers.byDomain(job.domain), expiredOutcomes(loaded));
    const route = await routeJob(deps, job.domain);
    if (expiryDue(loaded, deps.clock.now())) return await finish(deps, job, loaded, route.provider, expiredOutcomes(loaded));
    if ('outcome' in route)
      return await finish(
        deps,
        job,
        loaded,
        route.provider,
        loaded.pending.map((address) => ({ address, ...route.outcome })),
      );
    const sent = await sendToTargets(deps, gateJob, loaded, route, body, slot);
    if ('waitUntil' in sent) return { next: 'wait', at: sent.waitUntil, reason: sent.reason };
    const smarthost = deps.config.delivery.smarthost;
    const outcomes = smarthost ? deferSmarthostRefusals(deps.rules, sent.outcomes, `${smarthost.host}:${smarthost.port}`) : sent.outcomes;
    return await finish(deps, job, loaded, route.provider, outcomes, sent.events);
  } finally {
    // The replies of the last send feed the provider's adaptive rate (null: nothing was sent).
    await deps.gate.release(slot.lease, slot.replies);
    // Nothing handed to a receiver (no send, or no host answered): the source IP's warm-up count was not used.
    if (!slot.handedOver) await deps.gate.giveBackSource(slot.source);
  }
}

/** The last stages: when to retry, what each outcome means, and recording it all. */
async function finish(
  deps: DeliveryDeps,
  job: DeliveryJob,
  loaded: LoadedJob,
  provider: string,
  outcomes: Outcome[],
  attemptEvents: TimelineEvent[] = [],
): Promise<PipelineResult> {
  const now = deps.clock.now();
  const { attempt, record } = loaded;
  const d = deps.config.delivery;
  const retryAt = retryAtFor(outcomes, { now, attempt, expiresAt: record.expiresAt, schedule: d.retrySchedule, jitter: d.retryJitter });
  const host = attemptEvents.filter((e) => e.type === 'attempt').at(-1);
  const classified = classifyAttempt(deps.rules, outcomes, { attempt, now, retryAt, host: host?.type === 'attempt' ? host.host : undefined });
  await recordAttempt(deps, loaded, provider, classified, attemptEvents, now, job.holdsLease);
  deps.logger.info({ id: record.id, attempt, results: classified.results, retryAt }, 'delivery attempt finished');
  return retryAt !== null ? { next: 'retry', at: retryAt } : DONE;
}
