/**
 * Per-destination shaping, cluster-wide in Redis: for each provider (recipient domains bucketed by the
 * provider map, by domain or MX host), a cap on concurrent SMTP transactions and a rate in messages per
 * minute, both shared by every worker. The rate is a GCRA (one "theoretical arrival time" per provider,
 * Redis server time, so workers' clocks do not matter) whose tolerance depends on the priority: a
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
 * bookings. Pauses and slow-downs void the bookings (their jobs queue again at the new rate).
 *
 * Each decision is one Lua script (atomic); state lives in `<prefix>:shaping:<provider>` (hash),
 * `…:leases` (zset of connection leases, reclaimed after `leaseSeconds` if a worker dies), `…:held`
 * (ids of jobs parked while the provider is paused, promoted on resume), `…:booked` and `…:waiters:<priority>`.
 *
 * A single recipient domain can be paused too (`<prefix>:shaping-domain:paused`, a hash of domain →
 * `until|since|by`; held job ids in `<prefix>:shaping-domain:<domain>:held`): checked first, in the same
 * script, so a resume never misses a job that is being held at that moment.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config, Priority } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ProviderMap } from '../metrics/provider.js';
import type { Keys } from '../store/keys.js';
import type { ReplyOutcome, ThrottleRules } from './throttle-rules.js';

/**
 * Lua: is the recipient domain paused by an admin? Needs `now`, `jobId`, `domainKeys` (index of the paused-domains
 * hash in KEYS; the domain's held set follows it) and `domain`; returns {6, waitMs (-1: until resumed), '', until}
 * and parks the job in the domain's held set when it is. A timed pause that has run out is removed.
 */
const DOMAIN_PAUSE_CHECK = `
if domain ~= '' then
  local dp = redis.call('HGET', KEYS[domainKeys], domain)
  if dp then
    local untilMs = tonumber(string.match(dp, '^(%d+)')) or 0
    if untilMs == 0 or untilMs > now then
      if jobId ~= '' then redis.call('SADD', KEYS[domainKeys + 1], jobId) end
      local wait = -1
      if untilMs > 0 then wait = math.ceil(untilMs - now) end
      return {6, wait, '', tostring(untilMs)}
    end
    redis.call('HDEL', KEYS[domainKeys], domain)
    redis.call('DEL', KEYS[domainKeys + 1])
  end
end`;

// KEYS: state leases held booked waiters(of this priority) pausedDomains domainHeld.
// ARGV: maxRate maxConn reserved isVerification burst leaseId leaseMs jobId horizonMs domain
// Returns { status, waitMs, effectiveRate, pausedUntil }: 0 ok, 1 paused by an admin (waitMs -1 = until
// resumed), 2 backing off after a "too fast" reply, 3 no connection slot, 4 over the rate (come back in
// waitMs: the job's turn in the queue for the booking window), 5 a rate slot is booked in waitMs,
// 6 the recipient domain is paused by an admin.
const ACQUIRE = `
local t = redis.call('TIME')
-- Milliseconds with the microseconds kept: the GCRA's arrival time is fractional, and a clock cut to whole
-- milliseconds would let at most 1 + burst messages through per millisecond however high the rate.
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local jobId = ARGV[8]
local domain = ARGV[10]
local domainKeys = 6
${DOMAIN_PAUSE_CHECK}
local st = redis.call('HMGET', KEYS[1], 'rate', 'tat', 'pausedUntil', 'adminPaused')
local maxRate = tonumber(ARGV[1])
local rate = tonumber(st[1]) or maxRate
if maxRate > 0 and rate > maxRate then rate = maxRate end
local admin = tonumber(st[4])
if admin and (admin == 0 or admin > now) then
  if jobId ~= '' then redis.call('SADD', KEYS[3], jobId) end
  local wait = -1
  if admin > 0 then wait = admin - now end
  return {1, wait, tostring(rate), tostring(admin)}
end
local pausedUntil = tonumber(st[3]) or 0
if pausedUntil > now then
  if jobId ~= '' then redis.call('SADD', KEYS[3], jobId) end
  return {2, pausedUntil - now, tostring(rate), tostring(pausedUntil)}
end
local maxConn = tonumber(ARGV[2])
if maxConn > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local limit = maxConn
  if ARGV[4] ~= '1' then limit = math.max(1, maxConn - tonumber(ARGV[3])) end
  if redis.call('ZCARD', KEYS[2]) >= limit then return {3, 0, tostring(rate), '0'} end
end
local booked = false
if jobId ~= '' and redis.call('ZREM', KEYS[4], jobId) == 1 then booked = true end
if rate > 0 and not booked then
  local interval = 60000 / rate
  local tat = tonumber(st[2]) or now
  if tat < now then tat = now end
  local horizon = math.max(tonumber(ARGV[9]), interval)
  local tolerance = interval * tonumber(ARGV[5])
  -- Verification never waits behind slots that other messages booked.
  if ARGV[4] == '1' then tolerance = tolerance + horizon end
  if tat - now > tolerance then
    if jobId ~= '' and tat - now <= horizon then
      redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', tat + interval))
      redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 60000)
      redis.call('ZADD', KEYS[4], math.floor(tat), jobId)
      redis.call('ZREM', KEYS[5], jobId)
      return {5, math.ceil(tat - now), tostring(rate), '0'}
    end
    local wait = tat - horizon - now
    if jobId ~= '' then
      redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
      wait = wait + redis.call('ZCARD', KEYS[5]) * interval
      redis.call('ZADD', KEYS[5], math.floor(now + wait), jobId)
    end
    return {4, math.ceil(wait), tostring(rate), '0'}
  end
  redis.call('HSET', KEYS[1], 'tat', string.format('%.3f', tat + interval))
end
if maxConn > 0 then redis.call('ZADD', KEYS[2], now + tonumber(ARGV[7]), ARGV[6]) end
if jobId ~= '' then
  redis.call('SREM', KEYS[3], jobId)
  redis.call('ZREM', KEYS[5], jobId)
  if domain ~= '' then redis.call('SREM', KEYS[7], jobId) end
end
return {0, 0, tostring(rate), '0'}`;

// The domain check alone, for a job whose provider is not known before its MX lookup.
// KEYS: pausedDomains domainHeld. ARGV: jobId domain. Returns {0} or the refusal of DOMAIN_PAUSE_CHECK.
const DOMAIN_CHECK = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local jobId = ARGV[1]
local domain = ARGV[2]
local domainKeys = 1
${DOMAIN_PAUSE_CHECK}
if jobId ~= '' then redis.call('SREM', KEYS[2], jobId) end
return {0, 0, '', '0'}`;

// KEYS: state leases booked. ARGV: leaseId outcome maxRate minRate backoffMs recoverAfter recoverStep afterSuccesses reply adaptive
// outcome: ok | throttle | other | none. Returns { event, effectiveRate, pausedUntil }; event is
// none | paused | recovered | ignored (a throttle signal inside the current back-off window, or too few successes).
const RELEASE = `
if ARGV[1] ~= '' then redis.call('ZREM', KEYS[2], ARGV[1]) end
if ARGV[10] ~= '1' or ARGV[2] == 'none' or ARGV[2] == 'other' then return {'none', '', '0'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local maxRate = tonumber(ARGV[3])
local st = redis.call('HMGET', KEYS[1], 'rate', 'pausedUntil', 'streak')
local rate = tonumber(st[1]) or maxRate
if maxRate > 0 and rate > maxRate then rate = maxRate end
if ARGV[2] == 'ok' then
  redis.call('HINCRBY', KEYS[1], 'streak', 1)
  if maxRate <= 0 or rate >= maxRate then return {'none', tostring(rate), '0'} end
  local clean = redis.call('HINCRBY', KEYS[1], 'clean', 1)
  if clean < tonumber(ARGV[6]) then return {'none', tostring(rate), '0'} end
  rate = math.min(maxRate, rate * (1 + tonumber(ARGV[7])))
  if rate >= maxRate then
    redis.call('HDEL', KEYS[1], 'rate')
  else
    redis.call('HSET', KEYS[1], 'rate', string.format('%.3f', rate))
  end
  redis.call('HSET', KEYS[1], 'clean', 0)
  return {'recovered', tostring(rate), '0'}
end
-- throttle
local pausedUntil = tonumber(st[2]) or 0
if pausedUntil > now then return {'ignored', tostring(rate), tostring(pausedUntil)} end
if (tonumber(st[3]) or 0) < tonumber(ARGV[8]) then return {'ignored', tostring(rate), '0'} end
pausedUntil = now + tonumber(ARGV[5])
if maxRate > 0 then
  rate = math.max(tonumber(ARGV[4]), rate / 2)
  redis.call('HSET', KEYS[1], 'rate', string.format('%.3f', rate))
end
redis.call('HSET', KEYS[1], 'pausedUntil', pausedUntil, 'throttledAt', now, 'clean', 0, 'streak', 0, 'lastSignal', ARGV[9], 'tat', pausedUntil)
-- Slots booked at the old rate are void: their jobs queue again at the new rate after the pause.
redis.call('DEL', KEYS[3])
redis.call('HINCRBY', KEYS[1], 'throttles', 1)
return {'paused', tostring(rate), tostring(pausedUntil)}`;

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

/** One provider's state as the admin API shows it. */
export interface ProviderStatus {
  provider: string;
  configured: ProviderLimits;
  /** The adaptive rate in force, messages per minute (null: unlimited). */
  effectivePerMinute: number | null;
  /** Back-off after a "too fast" reply: until when (ISO), or null. */
  backoffUntil: string | null;
  /** Paused by an admin: `indefinitely` or until when (ISO), or null. */
  adminPaused: string | null;
  pausedBy: string | null;
  connectionsInUse: number;
  heldJobs: number;
  throttles: number;
  lastSignal: string | null;
}

export interface ShaperDeps {
  redis: Redis;
  keys: Keys;
  config: Pick<Config, 'shaping'>;
  providers: ProviderMap;
  rules: ThrottleRules;
  metrics: Pick<Metrics, 'shapingRefusals' | 'shapingRate' | 'shapingPaused' | 'shapingPauses'>;
  logger: Logger;
}

/** A recipient domain paused by an admin, as the admin API shows it. */
export interface PausedDomain {
  domain: string;
  /** `indefinitely` or until when (ISO). */
  pausedUntil: string;
  pausedAt: string;
  pausedBy: string;
  /** Jobs waiting because of this pause. */
  heldJobs: number;
}

type Scripted = Redis & {
  kurirShapeAcquire(...args: Array<string | number>): Promise<[number, number, string, string]>;
  kurirShapeRelease(...args: Array<string | number>): Promise<[string, string, string]>;
  kurirShapeDomain(...args: Array<string | number>): Promise<[number, number, string, string]>;
};

/** `until|since|by` (ms; until 0 = until resumed) of a paused domain. */
function parsePause(value: string): { until: number; since: number; by: string } {
  const [until, since, ...by] = value.split('|');
  return { until: Number(until) || 0, since: Number(since) || 0, by: by.join('|') };
}

const LEARNED_DOMAINS = 10_000;

function num(value: string | null | undefined): number | null {
  if (value === null || value === undefined || value === '') return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

export class ProviderShaper {
  private readonly redis: Scripted;
  /** Provider of recipient domains whose MX host decided it (learned from earlier sends). */
  private readonly learned = new Map<string, string>();

  constructor(private readonly deps: ShaperDeps) {
    const r = deps.redis as Scripted;
    if (typeof r.kurirShapeAcquire !== 'function') {
      r.defineCommand('kurirShapeAcquire', { numberOfKeys: 7, lua: ACQUIRE });
      r.defineCommand('kurirShapeRelease', { numberOfKeys: 3, lua: RELEASE });
      r.defineCommand('kurirShapeDomain', { numberOfKeys: 2, lua: DOMAIN_CHECK });
    }
    this.redis = r;
  }

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
   * `domain` (the job's recipient domain), a pause of that domain holds the job first.
   */
  async acquire(provider: string, priority: Priority, jobId = '', domain = ''): Promise<ShapingDecision> {
    const s = this.deps.config.shaping;
    const limits = this.limitsOf(provider);
    const lease: ShapingLease = { provider, id: randomBytes(8).toString('hex') };
    const d = domain.toLowerCase();
    const [status, waitMs, rate] = await this.redis.kurirShapeAcquire(
      this.deps.keys.shapingState(provider),
      this.deps.keys.shapingLeases(provider),
      this.deps.keys.shapingHeld(provider),
      this.deps.keys.shapingBooked(provider),
      this.deps.keys.shapingWaiters(provider, priority),
      this.deps.keys.shapingPausedDomains(),
      this.deps.keys.shapingDomainHeld(d),
      limits.perMinute ?? 0,
      limits.maxConnections ?? 0,
      s.verificationReservedConnections,
      priority === 'verification' ? '1' : '0',
      s.burst[priority],
      lease.id,
      Math.round(s.leaseSeconds * 1000),
      jobId,
      Math.round(s.bookAheadSeconds * 1000),
      d,
    );
    const effective = num(rate);
    const m = this.deps.metrics;
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
   * domain is not paused, else the refusal (the job is parked in the domain's held set).
   */
  async checkDomain(domain: string, jobId = ''): Promise<Extract<ShapingDecision, { ok: false }> | null> {
    const d = domain.toLowerCase();
    const [status, waitMs] = await this.redis.kurirShapeDomain(this.deps.keys.shapingPausedDomains(), this.deps.keys.shapingDomainHeld(d), jobId, d);
    if (status !== 6) return null;
    this.deps.metrics.shapingRefusals.inc({ limit: 'domain-paused' });
    return { ok: false, provider: '', reason: 'domain-paused', waitMs: waitMs < 0 ? null : waitMs, held: jobId !== '', booked: false };
  }

  /** Pauses delivery to one recipient domain (every provider) until `resumeDomain` (or for `seconds`). Jobs wait delayed, not failed. */
  async pauseDomain(domain: string, opts: { by: string; seconds?: number }): Promise<void> {
    const d = domain.toLowerCase();
    const now = Date.now();
    const until = opts.seconds ? now + opts.seconds * 1000 : 0;
    await this.redis.hset(this.deps.keys.shapingPausedDomains(), d, `${until}|${now}|${opts.by}`);
    this.deps.logger.info({ domain: d, by: opts.by, until: until ? new Date(until).toISOString() : 'resume' }, 'shaping: recipient domain paused by an admin');
  }

  /**
   * Ends a domain's pause and returns the ids of the jobs it held (the caller promotes them). `wasPaused`
   * false: the domain was not paused (an expired timed pause counts as not paused).
   */
  async resumeDomain(domain: string, by: string): Promise<{ wasPaused: boolean; held: string[] }> {
    const d = domain.toLowerCase();
    const k = this.deps.keys;
    const res = ((await this.redis.multi().hget(k.shapingPausedDomains(), d).smembers(k.shapingDomainHeld(d)).del(k.shapingDomainHeld(d)).hdel(k.shapingPausedDomains(), d).exec()) ?? []) as Array<
      [Error | null, unknown]
    >;
    const value = res[0]?.[1] as string | null;
    const held = (res[1]?.[1] as string[] | undefined) ?? [];
    const pause = value ? parsePause(value) : null;
    const wasPaused = pause !== null && (pause.until === 0 || pause.until > Date.now());
    this.deps.logger.info({ domain: d, by, held: held.length, wasPaused }, 'shaping: recipient domain resumed');
    return { wasPaused, held };
  }

  /** Recipient domains paused by an admin now, by name. */
  async pausedDomains(): Promise<PausedDomain[]> {
    const k = this.deps.keys;
    const all = await this.redis.hgetall(k.shapingPausedDomains());
    const now = Date.now();
    const live = Object.entries(all)
      .map(([domain, v]) => ({ domain, ...parsePause(v) }))
      .filter((p) => p.until === 0 || p.until > now)
      .sort((a, b) => a.domain.localeCompare(b.domain));
    if (!live.length) return [];
    const tx = this.redis.multi();
    for (const p of live) tx.scard(k.shapingDomainHeld(p.domain));
    const counts = ((await tx.exec()) ?? []).map(([, v]) => Number(v ?? 0));
    return live.map((p, i) => ({
      domain: p.domain,
      pausedUntil: p.until === 0 ? 'indefinitely' : new Date(p.until).toISOString(),
      pausedAt: new Date(p.since).toISOString(),
      pausedBy: p.by,
      heldJobs: counts[i] ?? 0,
    }));
  }

  /**
   * Gives the slot back and feeds the outcome of the delivery to the adaptive rate: a "too fast" reply
   * halves the rate and pauses the provider; clean deliveries make it recover. `outcomes` null: nothing was sent.
   */
  async release(lease: ShapingLease, outcomes: readonly ReplyOutcome[] | null): Promise<void> {
    const s = this.deps.config.shaping;
    const { provider } = lease;
    const limits = this.limitsOf(provider);
    const signal = outcomes && limits.adaptive ? this.deps.rules.classify(outcomes) : null;
    const outcome = !outcomes ? 'none' : signal ? 'throttle' : outcomes.some((o) => o.kind === 'delivered') ? 'ok' : 'other';
    if (limits.maxConnections === null && (!limits.adaptive || outcome === 'none' || outcome === 'other')) return;
    const reply = signal ? `${signal.rule}: ${outcomes?.find((o) => o.kind === 'temp')?.reply ?? ''}`.slice(0, 300) : '';
    const [event, rate, pausedUntil] = await this.redis.kurirShapeRelease(
      this.deps.keys.shapingState(provider),
      this.deps.keys.shapingLeases(provider),
      this.deps.keys.shapingBooked(provider),
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
    );
    const effective = num(rate);
    if (effective !== null && effective > 0) this.deps.metrics.shapingRate.set({ provider }, effective);
    if (event === 'paused') {
      this.deps.metrics.shapingPauses.inc({ provider });
      this.deps.metrics.shapingPaused.set({ provider }, 1);
      this.deps.logger.warn({ provider, rate: effective, pausedUntil: new Date(Number(pausedUntil)).toISOString(), signal: reply }, 'shaping: provider says too fast, rate halved and paused');
    } else if (event === 'recovered') {
      this.deps.logger.info({ provider, rate: effective }, 'shaping: provider rate recovering');
    }
  }

  /** The state of every provider, for the admin API. */
  async status(): Promise<ProviderStatus[]> {
    const names = this.names();
    const k = this.deps.keys;
    const tx = this.redis.multi();
    for (const p of names) {
      tx.hgetall(k.shapingState(p));
      tx.zcount(k.shapingLeases(p), Date.now(), '+inf');
      tx.scard(k.shapingHeld(p));
    }
    tx.time();
    const res = ((await tx.exec()) ?? []).map(([err, v]) => {
      if (err) throw err;
      return v;
    });
    const [sec, usec] = res[res.length - 1] as [string, string];
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    return names.map((provider, i) => {
      const st = res[i * 3] as Record<string, string>;
      const configured = this.limitsOf(provider);
      const stored = num(st.rate);
      const effective = configured.perMinute === null ? null : Math.min(configured.perMinute, stored ?? configured.perMinute);
      const backoff = num(st.pausedUntil) ?? 0;
      const admin = num(st.adminPaused);
      return {
        provider,
        configured,
        effectivePerMinute: effective === null ? null : Math.round(effective * 1000) / 1000,
        backoffUntil: backoff > now ? new Date(backoff).toISOString() : null,
        adminPaused: admin === null || (admin > 0 && admin <= now) ? null : admin === 0 ? 'indefinitely' : new Date(admin).toISOString(),
        pausedBy: admin === null ? null : (st.pausedBy ?? null),
        connectionsInUse: res[i * 3 + 1] as number,
        heldJobs: res[i * 3 + 2] as number,
        throttles: num(st.throttles) ?? 0,
        lastSignal: st.lastSignal || null,
      };
    });
  }

  /**
   * Sets the shaping gauges of every provider from Redis (effective rate of rate-limited providers, paused
   * or not), so a process shows the cluster's state even for providers it has not sent to lately.
   */
  async refreshMetrics(): Promise<void> {
    for (const st of await this.status()) {
      if (st.effectivePerMinute !== null) this.deps.metrics.shapingRate.set({ provider: st.provider }, st.effectivePerMinute);
      this.deps.metrics.shapingPaused.set({ provider: st.provider }, st.adminPaused !== null || st.backoffUntil !== null ? 1 : 0);
    }
  }

  /** Pauses sending to a provider until `resume` (or for `seconds`). Jobs wait delayed, not failed. */
  async pause(provider: string, opts: { by: string; seconds?: number }): Promise<void> {
    const until = opts.seconds ? Date.now() + opts.seconds * 1000 : 0;
    // Booked slots are void: after the pause every job queues again for the rate.
    await this.redis
      .multi()
      .hset(this.deps.keys.shapingState(provider), 'adminPaused', String(until), 'pausedBy', opts.by)
      .hdel(this.deps.keys.shapingState(provider), 'tat')
      .del(this.deps.keys.shapingBooked(provider))
      .exec();
    this.deps.metrics.shapingPauses.inc({ provider });
    this.deps.metrics.shapingPaused.set({ provider }, 1);
    this.deps.logger.info({ provider, by: opts.by, until: until ? new Date(until).toISOString() : 'resume' }, 'shaping: provider paused by an admin');
  }

  /**
   * Ends an admin pause and any back-off, and returns the ids of the jobs held meanwhile (the caller
   * promotes them so they run now rather than at their next re-check).
   */
  async resume(provider: string, by: string): Promise<string[]> {
    const k = this.deps.keys;
    const [[, held]] = ((await this.redis
      .multi()
      .smembers(k.shapingHeld(provider))
      .del(k.shapingHeld(provider))
      .hdel(k.shapingState(provider), 'adminPaused', 'pausedBy', 'pausedUntil')
      .exec()) ?? [[null, []]]) as [[unknown, string[]]];
    this.deps.metrics.shapingPaused.set({ provider }, 0);
    this.deps.logger.info({ provider, by, held: held.length }, 'shaping: provider resumed');
    return held;
  }
}
