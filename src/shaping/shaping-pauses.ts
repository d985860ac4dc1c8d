/**
 * Shaping state for the admin API and the metrics, and admin pauses: of a provider (its state hash and
 * held set) and of a single recipient domain (every provider; `<prefix>:shaping-domain:paused`).
 */
import { num, type ProviderLimits, type ShaperContext } from './shaping-slots.js';

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

/** `until|since|by` (ms; until 0 = until resumed) of a paused domain. */
function parsePause(value: string): { until: number; since: number; by: string } {
  const [until, since, ...by] = value.split('|');
  return { until: Number(until) || 0, since: Number(since) || 0, by: by.join('|') };
}

/** The longest timed pause of a provider or recipient domain (`POST /v1/shaping/…/pause`, `kurir queue pause --seconds`). */
export const MAX_PAUSE_SECONDS = 30 * 86400;

/** Pauses delivery to one recipient domain (every provider) until `resumeDomain` (or for `seconds`). Jobs wait delayed, not failed. */
export async function pauseDomain(ctx: ShaperContext, domain: string, opts: { by: string; seconds?: number }): Promise<void> {
  const d = domain.toLowerCase();
  const now = ctx.deps.clock.now();
  const until = opts.seconds ? now + opts.seconds * 1000 : 0;
  await ctx.redis.hset(ctx.deps.keys.shapingPausedDomains(), d, `${until}|${now}|${opts.by}`);
  ctx.deps.logger.info({ domain: d, by: opts.by, until: until ? new Date(until).toISOString() : 'resume' }, 'shaping: recipient domain paused by an admin');
}

/**
 * Ends a domain's pause and returns the ids of the jobs it held (the caller promotes them). `wasPaused`
 * false: the domain was not paused (an expired timed pause counts as not paused).
 */
export async function resumeDomain(ctx: ShaperContext, domain: string, by: string): Promise<{ wasPaused: boolean; held: string[] }> {
  const d = domain.toLowerCase();
  const k = ctx.deps.keys;
  const res = ((await ctx.redis
    .multi()
    .hget(k.shapingPausedDomains(), d)
    .zrangebyscore(k.shapingDomainHeld(d), `(${ctx.deps.clock.now()}`, '+inf')
    .smembers(k.legacyShapingDomainHeld(d))
    // The held set stays until the caller has promoted its jobs (ProviderShaper.dropResumed): a promotion that fails leaves them for the next resume.
    .del(k.legacyShapingDomainHeld(d))
    .hdel(k.shapingPausedDomains(), d)
    .exec()) ?? []) as Array<[Error | null, unknown]>;
  const value = res[0]?.[1] as string | null;
  const held = [...new Set([...((res[1]?.[1] as string[] | undefined) ?? []), ...((res[2]?.[1] as string[] | undefined) ?? [])])];
  const pause = value ? parsePause(value) : null;
  const wasPaused = pause !== null && (pause.until === 0 || pause.until > ctx.deps.clock.now());
  ctx.deps.logger.info({ domain: d, by, held: held.length, wasPaused }, 'shaping: recipient domain resumed');
  return { wasPaused, held };
}

/** Recipient domains paused by an admin now, by name. */
export async function listPausedDomains(ctx: ShaperContext): Promise<PausedDomain[]> {
  const k = ctx.deps.keys;
  const all = await ctx.redis.hgetall(k.shapingPausedDomains());
  const now = ctx.deps.clock.now();
  const live = Object.entries(all)
    .map(([domain, v]) => ({ domain, ...parsePause(v) }))
    .filter((p) => p.until === 0 || p.until > now)
    .sort((a, b) => a.domain.localeCompare(b.domain));
  if (!live.length) return [];
  const tx = ctx.redis.multi();
  // Entries of messages that expired meanwhile are dropped, not counted (their jobs ended `expired`).
  for (const p of live) tx.zremrangebyscore(k.shapingDomainHeld(p.domain), '-inf', now).zcard(k.shapingDomainHeld(p.domain));
  const counts = ((await tx.exec()) ?? []).filter((_, i) => i % 2 === 1).map(([, v]) => Number(v ?? 0));
  return live.map((p, i) => ({
    domain: p.domain,
    pausedUntil: p.until === 0 ? 'indefinitely' : new Date(p.until).toISOString(),
    pausedAt: new Date(p.since).toISOString(),
    pausedBy: p.by,
    heldJobs: counts[i] ?? 0,
  }));
}

/** The state of every provider, for the admin API. */
export async function providerStatuses(ctx: ShaperContext, names: string[]): Promise<ProviderStatus[]> {
  const k = ctx.deps.keys;
  const now = ctx.deps.clock.now();
  const tx = ctx.redis.multi();
  for (const p of names) {
    tx.hgetall(k.shapingState(p));
    tx.zcount(k.shapingLeases(p), now, '+inf');
    // Entries of messages that expired meanwhile are dropped, not counted (their jobs ended `expired`).
    tx.zremrangebyscore(k.shapingHeld(p), '-inf', now);
    tx.zcard(k.shapingHeld(p));
  }
  const res = ((await tx.exec()) ?? []).map(([err, v]) => {
    if (err) throw err;
    return v;
  });
  return names.map((provider, i) => {
    const st = res[i * 4] as Record<string, string>;
    const configured = ctx.limitsOf(provider);
    const stored = num(st.rate);
    const effective = configured.perMinute === null ? null : Math.min(configured.perMinute, stored ?? configured.perMinute);
    const backoff = num(st.pausedUntil) ?? 0;
    const admin = num(st.adminPaused);
    // A timed pause that has run out stays in the hash until the next resume, but is no pause: neither its end
    // nor who set it is shown (the gauge, GET /v1/queue and the console read these fields, not the hash).
    const adminLive = admin !== null && (admin === 0 || admin > now);
    return {
      provider,
      configured,
      effectivePerMinute: effective === null ? null : Math.round(effective * 1000) / 1000,
      backoffUntil: backoff > now ? new Date(backoff).toISOString() : null,
      adminPaused: !adminLive ? null : admin === 0 ? 'indefinitely' : new Date(admin).toISOString(),
      pausedBy: adminLive ? (st.pausedBy ?? null) : null,
      connectionsInUse: res[i * 4 + 1] as number,
      heldJobs: res[i * 4 + 3] as number,
      throttles: num(st.throttles) ?? 0,
      lastSignal: st.lastSignal || null,
    };
  });
}

/**
 * Sets the shaping gauges of every provider from Redis (effective rate of rate-limited providers, paused
 * or not), so a process shows the cluster's state even for providers it has not sent to lately.
 */
export async function refreshShapingMetrics(ctx: ShaperContext, names: string[]): Promise<void> {
  for (const st of await providerStatuses(ctx, names)) {
    if (st.effectivePerMinute !== null) ctx.deps.metrics.shapingRate.set({ provider: st.provider }, st.effectivePerMinute);
    ctx.deps.metrics.shapingPaused.set({ provider: st.provider }, st.adminPaused !== null || st.backoffUntil !== null ? 1 : 0);
  }
}

/** Pauses sending to a provider until `resume` (or for `seconds`). Jobs wait delayed, not failed. */
export async function pauseProvider(ctx: ShaperContext, provider: string, opts: { by: string; seconds?: number }): Promise<void> {
  const until = opts.seconds ? ctx.deps.clock.now() + opts.seconds * 1000 : 0;
  // Booked slots are void: after the pause every job queues again for the rate.
  await ctx.redis
    .multi()
    .hset(ctx.deps.keys.shapingState(provider), 'adminPaused', String(until), 'pausedBy', opts.by)
    .hdel(ctx.deps.keys.shapingState(provider), 'tat')
    .del(ctx.deps.keys.shapingBooked(provider))
    .exec();
  ctx.deps.metrics.shapingPauses.inc({ provider });
  ctx.deps.metrics.shapingPaused.set({ provider }, 1);
  ctx.deps.logger.info({ provider, by: opts.by, until: until ? new Date(until).toISOString() : 'resume' }, 'shaping: provider paused by an admin');
}

/**
 * Ends an admin pause and any back-off, and returns the ids of the jobs held meanwhile (the caller
 * promotes them so they run now rather than at their next re-check).
 */
export async function resumeProvider(ctx: ShaperContext, provider: string, by: string): Promise<string[]> {
  const k = ctx.deps.keys;
  // Only live entries: a held job whose message has expired ended (or ends at its expiry) as `expired`.
  const [[, live], [, legacy]] = ((await ctx.redis
    .multi()
    .zrangebyscore(k.shapingHeld(provider), `(${ctx.deps.clock.now()}`, '+inf')
    .smembers(k.legacyShapingHeld(provider))
    // The held set stays until the caller has promoted its jobs (ProviderShaper.dropResumed): a promotion that fails leaves them for the next resume.
    .del(k.legacyShapingHeld(provider))
    .hdel(k.shapingState(provider), 'adminPaused', 'pausedBy', 'pausedUntil')
    .exec()) ?? [
    [null, []],
    [null, []],
  ]) as [[unknown, string[]], [unknown, string[]]];
  const held = [...new Set([...live, ...legacy])];
  ctx.deps.metrics.shapingPaused.set({ provider }, 0);
  ctx.deps.logger.info({ provider, by, held: held.length }, 'shaping: provider resumed');
  return held;
}

/**
 * Drops jobs (of a cancelled message, or promoted by a resume) from the held sets of every provider in `providers`
 * and of the recipient `domains`, in one round trip.
 */
export async function forgetHeld(ctx: ShaperContext, providers: readonly string[], jobIds: readonly string[], domains: readonly string[]): Promise<void> {
  if (!jobIds.length) return;
  const k = ctx.deps.keys;
  const tx = ctx.redis.pipeline();
  for (const p of providers) tx.zrem(k.shapingHeld(p), ...jobIds);
  for (const d of new Set(domains.map((x) => x.toLowerCase()))) tx.zrem(k.shapingDomainHeld(d), ...jobIds);
  for (const [err] of (await tx.exec()) ?? []) if (err) throw err;
}
