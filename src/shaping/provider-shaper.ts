/**
 * Per-destination shaping, cluster-wide in Redis: for each provider (recipient domains bucketed by the
 * provider map, by domain or MX host), a cap on concurrent SMTP transactions and a rate in messages per
 * minute, both shared by every worker. The rate is a GCRA (one "theoretical arrival time" per provider)
 * whose tolerance depends on the priority: a
 * verification message may borrow a few intervals ahead, bulk borrows none, so verification overtakes the
 * others in shaping slots as it does in the queue. Part of `maxConnections` is reserved for verification.
 *
 * Adaptive slow-down: when a delivery's reply matches config/throttle-rules.yaml, the provider's effective
 * rate is halved (once per back-off window, however many in-flight deliveries see the signal) and the
 * provider pauses for `backoffSeconds`; after every `recoverAfter` clean deliveries the rate grows by
 * `recoverStep` until it is back at the configured rate.
 *
 * A job over the rate does not poll: when the next free slot is within `bookAheadSeconds` it books it
 * and is delayed exactly until then; otherwise it joins a per-priority queue for the booking window and
 * is delayed until its turn (one rate interval per job ahead of it). Verification never waits for
 * bookings. Pauses and slow-downs void the bookings (their jobs queue again at the new rate). A job whose
 * message expires before its slot or turn takes neither: it is held until the expiry and expired then.
 *
 * Time comes from the injected clock (`deps.clock`), passed into the scripts as `now`: pauses, back-off,
 * rate and leases all read one clock, which tests can move. Workers' clocks must agree (NTP), as the delivery queue's
 * delayed jobs, timed by each worker's clock, already require.
 *
 * Each decision is one Lua script (atomic); state lives in `<prefix>:shaping:<provider>` (hash),
 * `…:leases` (zset of connection leases, reclaimed after `leaseSeconds` if a worker dies), `…:held-until`
 * (ids of jobs parked while the provider is paused, promoted on resume; scored by their message's expiry, after
 * which the entry is dropped: the job then ends as `expired`), `…:booked` and `…:waiters:<priority>`.
 *
 * A single recipient domain can be paused too (`<prefix>:shaping-domain:paused`, a hash of domain →
 * `until|since|by`; held job ids in `<prefix>:shaping-domain:<domain>:held-until`, likewise): checked first, in the same
 * script, so a resume never misses a job that is being held at that moment.
 */
import type { Priority } from '../config/schema.js';
import {
  forgetHeld,
  listPausedDomains,
  pauseDomain,
  pauseProvider,
  providerStatuses,
  refreshShapingMetrics,
  resumeDomain,
  resumeProvider,
  type PausedDomain,
  type ProviderStatus,
} from './shaping-pauses.js';
import { withShapingScripts } from './shaping-scripts.js';
import {
  acquireSlot,
  checkDomainPause,
  releaseSlot,
  type ProviderLimits,
  type ShaperContext,
  type ShaperDeps,
  type ShapingDecision,
  type ShapingLease,
} from './shaping-slots.js';
import type { ReplyOutcome } from './throttle-rules.js';

export type { PausedDomain, ProviderStatus } from './shaping-pauses.js';
export type { ProviderLimits, ShaperDeps, ShapingDecision, ShapingLease, ShapingRefusal } from './shaping-slots.js';

const LEARNED_DOMAINS = 10_000;

/**
 * The delivery path's entry to per-provider shaping: maps recipient domains to providers, takes and releases connection and rate slots,
 * and pauses or resumes providers and recipient domains (the Redis work is in shaping-slots.ts and shaping-pauses.ts).
 */
export class ProviderShaper {
  /** The scripted Redis client, deps and limits lookup shared with the slot and pause functions. */
  private readonly ctx: ShaperContext;
  /** Provider of recipient domains whose MX host decided it (learned from earlier sends). */
  private readonly learned = new Map<string, string>();

  constructor(private readonly deps: ShaperDeps) {
    this.ctx = { redis: withShapingScripts(deps.redis), deps, limitsOf: (provider) => this.limitsOf(provider) };
  }

  /** Whether shaping is on (`shaping.enabled`). */
  get enabled(): boolean {
    return this.deps.config.shaping.enabled;
  }

  /** Every provider the map can return (the admin API lists these). */
  names(): string[] {
    return this.deps.providers.names();
  }

  /** Limits of a provider: `shaping.limits[provider]` over `shaping.default`. */
  limitsOf(provider: string): ProviderLimits {
    const s = this.deps.config.shaping;
    const own = s.limits[provider] ?? {};
    return {
      maxConnections: own.maxConnections !== undefined ? own.maxConnections : s.default.maxConnections,
      perMinute: own.perMinute !== undefined ? own.perMinute : s.default.perMinute,
      adaptive: own.adaptive ?? s.default.adaptive,
      maxMessagesPerConnection: own.maxMessagesPerConnection !== undefined ? own.maxMessagesPerConnection : s.default.maxMessagesPerConnection,
    };
  }

  /**
   * Messages per pooled connection for a send to `recipients` (one domain) over the MX host `mxHost`: the
   * provider's `maxMessagesPerConnection` (null: no limit), or undefined when shaping is off (the pool's
   * own default then). The connection pool's lookup.
   */
  messagesPerConnection(recipients: readonly string[], mxHost?: string): number | null | undefined {
    if (!this.enabled || !recipients.length) return undefined;
    const first = recipients[0];
    const domain = first.slice(first.lastIndexOf('@') + 1).toLowerCase();
    return this.limitsOf(this.providerFor(domain, mxHost)).maxMessagesPerConnection;
  }

  /** The provider of a recipient domain: by domain rules, else by the MX host when one is known. */
  providerFor(domain: string, mxHost?: string): string {
    const byDomain = this.deps.providers.byDomain(domain);
    if (byDomain !== 'other' || !mxHost) return byDomain;
    const byMx = this.deps.providers.byMx(mxHost);
    if (this.learned.size >= LEARNED_DOMAINS && !this.learned.has(domain)) this.learned.delete(this.learned.keys().next().value as string);
    this.learned.set(domain, byMx);
    return byMx;
  }

  /** The provider of a domain before its MX is resolved: by domain rules or from an earlier send; undefined if unknown. */
  knownProvider(domain: string): string | undefined {
    const byDomain = this.deps.providers.byDomain(domain);
    return byDomain !== 'other' ? byDomain : this.learned.get(domain);
  }

  /**
   * Takes a connection slot and a rate token for one delivery, or says why not and for how long. With
   * `domain` (the job's recipient domain), a pause of that domain holds the job first. `firstRun`: the job
   * was never taken before, so it sits in no held, booked or waiting set (their clean-up is skipped).
   * `deadline`: the message's expiry (ms; 0: none); no rate slot or turn after it is taken for the job.
   */
  async acquire(provider: string, priority: Priority, jobId = '', domain = '', firstRun = false, deadline = 0): Promise<ShapingDecision> {
    return acquireSlot(this.ctx, provider, priority, jobId, domain, firstRun, deadline);
  }

  /**
   * Only the domain pause, for a job whose provider is not known yet (before its MX lookup): null when the
   * domain is not paused, else the refusal (the job is parked in the domain's held set until `deadline`, its
   * message's expiry; 0: none).
   */
  async checkDomain(domain: string, jobId = '', firstRun = false, deadline = 0): Promise<Extract<ShapingDecision, { ok: false }> | null> {
    return checkDomainPause(this.ctx, domain, jobId, firstRun, deadline);
  }

  /**
   * Drops jobs of a cancelled message from every held set (each provider's, and their recipient domains'), in one
   * round trip: they would be counted as held until their message's expiry otherwise.
   */
  async forgetHeld(jobIds: readonly string[], domains: readonly string[]): Promise<void> {
    return forgetHeld(this.ctx, this.names(), jobIds, domains);
  }

  /** Drops the jobs a resume returned (and the caller promoted) from the resumed provider's or domain's held set, in one round trip. */
  async dropResumed(scope: { provider: string } | { domain: string }, jobIds: readonly string[]): Promise<void> {
    return 'provider' in scope ? forgetHeld(this.ctx, [scope.provider], jobIds, []) : forgetHeld(this.ctx, [], jobIds, [scope.domain]);
  }

  /** Pauses delivery to one recipient domain (every provider) until `resumeDomain` (or for `seconds`). Jobs wait delayed, not failed. */
  async pauseDomain(domain: string, opts: { by: string; seconds?: number }): Promise<void> {
    return pauseDomain(this.ctx, domain, opts);
  }

  /**
   * Ends a domain's pause and returns the ids of the jobs it held (the caller promotes them). `wasPaused`
   * false: the domain was not paused (an expired timed pause counts as not paused).
   */
  async resumeDomain(domain: string, by: string): Promise<{ wasPaused: boolean; held: string[] }> {
    return resumeDomain(this.ctx, domain, by);
  }

  /** Recipient domains paused by an admin now, by name. */
  async pausedDomains(): Promise<PausedDomain[]> {
    return listPausedDomains(this.ctx);
  }

  /**
   * Gives the slot back and feeds the outcome of the delivery to the adaptive rate: a "too fast" reply
   * halves the rate and pauses the provider; clean deliveries make it recover. `outcomes` null: nothing was sent.
   */
  async release(lease: ShapingLease, outcomes: readonly ReplyOutcome[] | null): Promise<void> {
    return releaseSlot(this.ctx, lease, outcomes);
  }

  /** The state of every provider, for the admin API. */
  async status(): Promise<ProviderStatus[]> {
    return providerStatuses(this.ctx, this.names());
  }

  /**
   * Sets the shaping gauges of every provider from Redis (effective rate of rate-limited providers, paused
   * or not), so a process shows the cluster's state even for providers it has not sent to lately.
   */
  async refreshMetrics(): Promise<void> {
    return refreshShapingMetrics(this.ctx, this.names());
  }

  /** Pauses sending to a provider until `resume` (or for `seconds`). Jobs wait delayed, not failed. */
  async pause(provider: string, opts: { by: string; seconds?: number }): Promise<void> {
    return pauseProvider(this.ctx, provider, opts);
  }

  /**
   * Ends an admin pause and any back-off, and returns the ids of the jobs held meanwhile (the caller
   * promotes them so they run now rather than at their next re-check).
   */
  async resume(provider: string, by: string): Promise<string[]> {
    return resumeProvider(this.ctx, provider, by);
  }
}
