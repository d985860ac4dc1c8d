/**
 * Slot booking for provider shaping: taking a connection slot and a rate token for one delivery (or the
 * reason and wait when refused), the domain-pause check before the provider is known, and giving the slot
 * back with the delivery's outcome fed to the adaptive rate. The atomic work is in shaping-scripts.ts.
 */
import type { Redis } from 'ioredis';
import type { Config, Priority } from '../config/schema.js';
import type { Clock } from '../lib/clock.js';
import { randomHex } from '../lib/ids.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ProviderMap } from '../metrics/provider.js';
import type { Keys } from '../store/keys.js';
import type { ShapingRedis } from './shaping-scripts.js';
import type { ReplyOutcome, ThrottleRules } from './throttle-rules.js';

/** Limits in force for one provider; null means unlimited. */
export interface ProviderLimits {
  maxConnections: number | null;
  perMinute: number | null;
  adaptive: boolean;
  /** Transactions per pooled SMTP connection before it is closed (null: no limit). */
  maxMessagesPerConnection: number | null;
}

export type ShapingRefusal = 'provider-paused' | 'domain-paused' | 'provider-connections' | 'provider-rate';

/** A connection slot (and rate token) held for one delivery. */
export interface ShapingLease {
  provider: string;
  id: string;
  /** When Redis frees the slot if it is never given back (ms, `shaping.leaseSeconds` after it was taken); null: the provider has no connection cap, no slot is held. */
  heldUntil: number | null;
}

export type ShapingDecision =
  | { ok: true; lease: ShapingLease }
  | {
      ok: false;
      provider: string;
      reason: ShapingRefusal;
      /** How long until the refusal may lift; null: paused until an admin resumes it (provider or domain). */
      waitMs: number | null;
      /** The job was parked in the provider's (or paused domain's) held set: resume promotes it. */
      held: boolean;
      /** A rate slot is booked for the job in `waitMs`: it runs then without polling. */
      booked: boolean;
    };

export interface ShaperDeps {
  redis: Redis;
  keys: Keys;
  config: Pick<Config, 'shaping'>;
  providers: ProviderMap;
  rules: ThrottleRules;
  metrics: Pick<Metrics, 'shapingRefusals' | 'shapingRate' | 'shapingPaused' | 'shapingPauses'>;
  logger: Logger;
  /** The one source of time of every shaping decision (pauses, back-off, rate, leases); the scripts get it as `now`. */
  clock: Clock;
}

/** What the shaping functions need from the ProviderShaper: its scripted client, deps and limits lookup. */
export interface ShaperContext {
  redis: ShapingRedis;
  deps: ShaperDeps;
  limitsOf(provider: string): ProviderLimits;
}

/**
 * An acquire whose answer was lost after it was sent (no answer within the command timeout, or the connection
 * closed): Redis may have taken, or may still take, the slot `lease` names, so the caller gives it back by that id.
 * `cause` is the client's error. Failures before anything was sent (offline, refused) are thrown as they are.
 */
export class SlotAcquireError extends Error {
  constructor(
    readonly lease: ShapingLease,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'SlotAcquireError';
  }
}

/** ioredis errors of a command that was (or may have been) written to Redis but not answered. */
const ANSWER_LOST = /Command timed out|Connection is closed|max retries per request/i;

/** A number from a Redis string; null when empty, missing or not finite. */
export function num(value: string | null | undefined): number | null {
  if (value === null || value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/**
 * Takes a connection slot and a rate token for one delivery, or says why not and for how long. With
 * `domain` (the job's recipient domain), a pause of that domain holds the job first. With `deadline` (the
 * message's expiry, ms; 0: none), a job over the rate books no slot and takes no place in the rate queue that
 * would come after it: it would never use them, and the jobs behind it would wait for them; a held job's entry
 * is dropped after it.
 */
export async function acquireSlot(
  ctx: ShaperContext,
  provider: string,
  priority: Priority,
  jobId = '',
  domain = '',
  firstRun = false,
  deadline = 0,
): Promise<ShapingDecision> {
  const s = ctx.deps.config.shaping;
  const limits = ctx.limitsOf(provider);
  const now = ctx.deps.clock.now();
  const leaseMs = Math.round(s.leaseSeconds * 1000);
  const lease: ShapingLease = { provider, id: randomHex(8), heldUntil: limits.maxConnections === null ? null : now + leaseMs };
  const d = domain.toLowerCase();
  const [status, waitMs, rate] = await ctx.redis
    .kurirShapeAcquire(
      ctx.deps.keys.shapingState(provider),
      ctx.deps.keys.shapingLeases(provider),
      ctx.deps.keys.shapingHeld(provider),
      ctx.deps.keys.shapingBooked(provider),
      ctx.deps.keys.shapingWaiters(provider, priority),
      ctx.deps.keys.shapingPausedDomains(),
      ctx.deps.keys.shapingDomainHeld(d),
      limits.perMinute ?? 0,
      limits.maxConnections ?? 0,
      s.verificationReservedConnections,
      priority === 'verification' ? '1' : '0',
      s.burst[priority],
      lease.id,
      leaseMs,
      jobId,
      Math.round(s.bookAheadSeconds * 1000),
      d,
      now,
      firstRun ? '1' : '0',
      deadline,
    )
    .catch((err: unknown) => {
      throw err instanceof Error && ANSWER_LOST.test(err.message) ? new SlotAcquireError(lease, err) : err;
    });
  const effective = num(rate);
  const m = ctx.deps.metrics;
  if (effective !== null && effective > 0) m.shapingRate.set({ provider }, effective);
  if (status !== 6) m.shapingPaused.set({ provider }, status === 1 || status === 2 ? 1 : 0);
  if (status === 0) return { ok: true, lease };
  const reason: ShapingRefusal =
    status === 3 ? 'provider-connections' : status === 4 || status === 5 ? 'provider-rate' : status === 6 ? 'domain-paused' : 'provider-paused';
  m.shapingRefusals.inc({ limit: reason });
  const held = (status === 1 || status === 2 || status === 6) && jobId !== '';
  return { ok: false, provider, reason, waitMs: waitMs < 0 ? null : waitMs, held, booked: status === 5 };
}

/**
 * Only the domain pause, for a job whose provider is not known yet (before its MX lookup): null when the
 * domain is not paused, else the refusal (the job is parked in the domain's held set until `deadline`, its
 * message's expiry; 0: none).
 */
export async function checkDomainPause(
  ctx: ShaperContext,
  domain: string,
  jobId = '',
  firstRun = false,
  deadline = 0,
): Promise<Extract<ShapingDecision, { ok: false }> | null> {
  const d = domain.toLowerCase();
  const [status, waitMs] = await ctx.redis.kurirShapeDomain(
    ctx.deps.keys.shapingPausedDomains(),
    ctx.deps.keys.shapingDomainHeld(d),
    jobId,
    d,
    ctx.deps.clock.now(),
    firstRun ? '1' : '0',
    deadline,
  );
  if (status !== 6) return null;
  ctx.deps.metrics.shapingRefusals.inc({ limit: 'domain-paused' });
  return { ok: false, provider: '', reason: 'domain-paused', waitMs: waitMs < 0 ? null : waitMs, held: jobId !== '', booked: false };
}

/**
 * Gives the slot back and feeds the outcome of the delivery to the adaptive rate: a "too fast" reply
 * halves the rate and pauses the provider; clean deliveries make it recover. `outcomes` null: nothing was sent.
 */
export async function releaseSlot(ctx: ShaperContext, lease: ShapingLease, outcomes: readonly ReplyOutcome[] | null): Promise<void> {
  const s = ctx.deps.config.shaping;
  const { provider } = lease;
  const limits = ctx.limitsOf(provider);
  const signal = outcomes && limits.adaptive ? ctx.deps.rules.classify(outcomes) : null;
  const outcome = !outcomes ? 'none' : signal ? 'throttle' : outcomes.some((o) => o.kind === 'delivered') ? 'ok' : 'other';
  if (limits.maxConnections === null && (!limits.adaptive || outcome === 'none' || outcome === 'other')) return;
  const reply = signal ? `${signal.rule}: ${outcomes?.find((o) => o.kind === 'temp')?.reply ?? ''}`.slice(0, 300) : '';
  const [event, rate, pausedUntil] = await ctx.redis.kurirShapeRelease(
    ctx.deps.keys.shapingState(provider),
    ctx.deps.keys.shapingLeases(provider),
    ctx.deps.keys.shapingBooked(provider),
    limits.maxConnections === null ? '' : lease.id,
    outcome,
    limits.perMinute ?? 0,
    s.minPerMinute,
    Math.round(s.backoffSeconds * 1000),
    s.recoverAfter,
    s.recoverStep,
    signal?.afterSuccesses ?? 0,
    reply,
    limits.adaptive ? '1' : '0',
    ctx.deps.clock.now(),
  );
  const effective = num(rate);
  if (effective !== null && effective > 0) ctx.deps.metrics.shapingRate.set({ provider }, effective);
  if (event === 'paused') {
    ctx.deps.metrics.shapingPauses.inc({ provider });
    ctx.deps.metrics.shapingPaused.set({ provider }, 1);
    ctx.deps.logger.warn(
      { provider, rate: effective, pausedUntil: new Date(Number(pausedUntil)).toISOString(), signal: reply },
      'shaping: provider says too fast, rate halved and paused',
    );
  } else if (event === 'recovered') {
    ctx.deps.logger.info({ provider, rate: effective }, 'shaping: provider rate recovering');
  }
}
