/**
 * The shaping gate: what the delivery pipeline asks before it sends. It answers with a value — go, with
 * the lease that holds a connection slot and a rate token, or wait until a time — and never throws to mean
 * "not now". It knows nothing of delivery: a job is an id, a recipient domain, a priority and a deadline.
 *
 * The pipeline asks twice at most. Before the MX lookup (`ask`): the provider is often known already from
 * the recipient domain (or an earlier send), and a held job then costs no DNS query; when it is not known,
 * only a pause of the recipient domain can hold the job there. Per MX host, right before a send
 * (`askForHost`): the host names the provider, and the lease is taken (or kept, for the same provider).
 *
 * A refused job waits until its booked rate slot or its turn (see ProviderShaper), or for a short jittered
 * wait when connections are busy, so a large backlog does not spin; a paused provider or domain holds it
 * for the re-check interval. No wait for a pause or the rate outlives the message by more than 50 ms and
 * the spread: the job comes back at its expiry and the pipeline reports it `expired` on time.
 */
import type { Priority } from '../config/schema.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ProviderShaper, ShapingDecision, ShapingLease, ShapingRefusal } from './provider-shaper.js';
import { SlotAcquireError } from './shaping-slots.js';
import { ReleaseRetries } from './release-retry.js';
import type { SourceAnswer, SourceIps, SourceReservation } from './source-ips.js';
import type { ReplyOutcome } from './throttle-rules.js';

type Refusal = Extract<ShapingDecision, { ok: false }>;

/** What the gate needs to know of a delivery job. */
export interface GateJob {
  /** The queue's job id: a held job is parked under it, so a resume can promote it. */
  id: string;
  domain: string;
  /** The sender (From) domain: it can choose the source-IP pool. */
  senderDomain: string;
  priority: Priority;
  /** How many times a worker took the job so far (the queue counts runs started): the spread of repeated waits grows with it. */
  attemptsStarted: number;
  /** When the message expires (ms): a pause or the provider's rate holds the job no later than this. */
  expiresAt: number;
}

/** Why the gate said wait: a provider or domain limit, or every source IP of the job's pool at its warm-up cap. */
export type GateRefusal = ShapingRefusal | 'ip-warmup';

/** The gate's answer: send now under `lease` (null: nothing to hold), or come back at `until` (ms). */
export type GateAnswer = { go: true; lease: ShapingLease | null } | { go: false; until: number; reason: ShapingRefusal };

export interface ShapingGate {
  /**
   * Before the route is known: the slot of the provider known from the recipient domain (or an earlier
   * send), else only the recipient domain's pause (go without a lease).
   */
  ask(job: GateJob): Promise<GateAnswer>;
  /**
   * Right before a send to `mxHost` (the MX host name; the smarthost's with one): the slot of that host's
   * provider. `held` is kept when it is for that provider; otherwise it is given back (unused) first.
   */
  askForHost(job: GateJob, mxHost: string | undefined, held: ShapingLease | null): Promise<GateAnswer>;
  /**
   * Gives a lease back with the outcomes of the send (null: nothing was sent), which feed the provider's
   * adaptive rate. Never throws: when Redis does not answer, the failure is logged and the slot is given back
   * in the background once it does (src/shaping/release-retry.ts); the caller goes on at once.
   */
  release(lease: ShapingLease | null, outcomes: readonly ReplyOutcome[] | null): Promise<void>;
  /** On shutdown, after the last delivery ended: one more try for releases still owed, then none. */
  close(): Promise<void>;
  /**
   * First of all: the source IP (bind address and HELO) of the job's pool, counted against the address's
   * warm-up caps; a wait when every address of the pool is at its cap. Null reservation: no pool.
   */
  askSource(job: GateJob): Promise<SourceAnswer>;
  /** Gives back the warm-up count of a reservation under which nothing was sent. Never throws. */
  giveBackSource(reservation: SourceReservation | null): Promise<void>;
}

export interface GateDeps {
  clock: Clock;
  logger: Logger;
  /** How long a job held by a pause without an end waits before it asks again (ms). */
  recheckMs: number;
  /** kurir_shaping_releases_retried_total; absent in tests of the gate alone. */
  metrics?: Pick<Metrics, 'shapingReleasesRetried'>;
}

/** The gate of a gateway without shaping: always go, nothing to hold. */
export const openGate: ShapingGate = {
  ask: async () => ({ go: true, lease: null }),
  askForHost: async () => ({ go: true, lease: null }),
  release: async () => undefined,
  close: async () => undefined,
  askSource: async () => ({ go: true, reservation: null }),
  giveBackSource: async () => undefined,
};

/**
 * `gate` with source-IP pools: the address is chosen (and warm-up caps enforced) whether provider shaping
 * is on or off, since the caps are set per address on purpose.
 */
export function withSourceIps(gate: ShapingGate, sources: SourceIps, deps: Pick<GateDeps, 'clock'>): ShapingGate {
  if (!sources.configured) return gate;
  return {
    ...gate,
    async askSource(job) {
      const answer = await sources.pick(job.priority, job.senderDomain);
      // A wait for the next hour or day must not outlive the message: its `expired` event comes on time.
      return answer.go ? answer : { ...answer, until: Math.min(answer.until, Math.max(job.expiresAt + 50, deps.clock.now() + 10)) };
    },
    giveBackSource: (r) => sources.giveBack(r),
  };
}

/**
 * Extra wait after a refusal, so jobs do not come back in lockstep: none for a booked slot, a little for
 * a turn in the rate queue (already spaced by the shaper), and for connection slots and pauses a random
 * wait whose cap doubles with each hold of the same job.
 */
function spreadMs(job: GateJob, refusal: Refusal): number {
  if (refusal.booked) return 0;
  if (refusal.reason === 'provider-rate') return Math.round(Math.random() * 20);
  const k = Math.min(Math.max(job.attemptsStarted - 1, 0), 7);
  const cap = job.priority === 'verification' ? 200 : refusal.reason === 'provider-connections' ? 2000 : 1000;
  return Math.round(Math.random() * Math.min(cap, 50 * 2 ** k));
}

/** When a refused job asks again (ms). */
function waitUntil(now: number, job: GateJob, refusal: Refusal, recheckMs: number): number {
  if (refusal.reason === 'provider-connections') return now + 50 + spreadMs(job, refusal);
  let wait = refusal.waitMs ?? recheckMs;
  if (refusal.reason !== 'provider-rate') wait = Math.min(wait, recheckMs);
  // A pause or a turn at the rate must not outlive the message: its `expired` event comes on time. (The shaper
  // books no slot and queues no turn after the expiry, so a capped job leaves nothing behind it.)
  wait = Math.min(wait, Math.max(0, job.expiresAt - now) + 50);
  return now + Math.max(wait, refusal.booked ? 0 : 10) + spreadMs(job, refusal);
}

/** The gate over a ProviderShaper (per-provider slots and rates, provider and domain pauses, in Redis). */
export function createShapingGate(shaper: ProviderShaper, deps: GateDeps): ShapingGate {
  const answer = (job: GateJob, d: ShapingDecision | null, lease: ShapingLease | null = null): GateAnswer => {
    if (d === null) return { go: true, lease };
    if (d.ok) return { go: true, lease: d.lease };
    return { go: false, until: waitUntil(deps.clock.now(), job, d, deps.recheckMs), reason: d.reason };
  };
  const retries = new ReleaseRetries({ clock: deps.clock, logger: deps.logger, metrics: deps.metrics, release: (lease) => shaper.release(lease, null) });
  const acquire = async (job: GateJob, provider: string, firstRun: boolean): Promise<ShapingDecision> => {
    try {
      return await shaper.acquire(provider, job.priority, job.id, job.domain, firstRun, job.expiresAt);
    } catch (err) {
      if (!(err instanceof SlotAcquireError)) throw err;
      // Redis may take the slot after the client gave up on the answer (it ran the script late): given back by its id,
      // as a failed release is, else it would stay taken for its whole lease. A slot never taken costs one ZREM.
      if (err.lease.heldUntil !== null) {
        deps.logger.warn({ err: err.cause, provider }, 'shaping: acquire not answered; the slot it may have taken is given back');
        retries.add(err.lease);
      }
      throw err.cause;
    }
  };
  const release = async (lease: ShapingLease, outcomes: readonly ReplyOutcome[] | null): Promise<void> => {
    await shaper.release(lease, outcomes).catch((err: unknown) => {
      deps.logger.warn({ err, provider: lease.provider }, 'shaping: release failed; a held connection slot is given back once Redis answers');
      retries.add(lease);
    });
  };
  return {
    async ask(job) {
      const known = shaper.knownProvider(job.domain);
      // A job on its first run (attemptsStarted 1) was never refused, so it sits in no held or booked set.
      const firstRun = job.attemptsStarted <= 1;
      if (known) return answer(job, await acquire(job, known, firstRun));
      return answer(job, await shaper.checkDomain(job.domain, job.id, firstRun, job.expiresAt));
    },
    async askForHost(job, mxHost, held) {
      const provider = shaper.providerFor(job.domain, mxHost);
      // Further MX hosts of the same message (when one does not answer) use the same slot.
      if (held && held.provider === provider) return { go: true, lease: held };
      if (held) await release(held, null);
      return answer(job, await acquire(job, provider, job.attemptsStarted <= 1));
    },
    async release(lease, outcomes) {
      if (lease) await release(lease, outcomes);
    },
    close: () => retries.close(),
    askSource: openGate.askSource,
    giveBackSource: openGate.giveBackSource,
  };
}
