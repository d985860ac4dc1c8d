/**
 * Source IPs: which local address (and HELO name) a delivery goes out from, and the warm-up caps of each
 * address, counted cluster-wide in Redis.
 *
 * The pool comes from the message's priority and sender domain (`delivery.ipPools`); within a pool the
 * addresses take turns (round robin per process). An address whose warm-up cap for the current UTC hour or
 * day is used up is skipped; when every address of the pool is, the answer is a wait until the earliest of
 * them has room again (the next hour or the next UTC midnight), never a refusal of the message. The count
 * is taken when the address is chosen and given back when nothing was sent after all (the provider's gate
 * said wait, DNS decided the outcome), so a cap counts messages handed to receivers.
 *
 * Day N of a warm-up is counted from the address's `warmupStart` as the domain warm-up is (src/shaping/daily-cap.ts).
 */
import type { Redis } from 'ioredis';
import { type IpPoolsConfig, type SourceIpConfig, poolAddresses, poolNameFor } from '../config/ip-pools-schema.js';
import type { Config, Priority } from '../config/schema.js';
import type { Clock } from '../lib/clock.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Keys } from '../store/keys.js';
import { dailyCap, msUntilUtcMidnight, utcDay } from './daily-cap.js';

const HOUR_MS = 3_600_000;
/** Counters outlive their window by this much (a give-back right after the window ends still finds its key). */
const KEY_MARGIN_MS = HOUR_MS;

/** The address a delivery goes out from, as the SMTP connection and the timeline use it. */
export interface SourceIp {
  address: string;
  helo: string;
  pool: string;
}

/** A chosen address and the warm-up counters its choice incremented (given back when nothing is sent). */
export interface SourceReservation {
  source: SourceIp;
  counted: string[];
}

/** go: send from `reservation` (null: no pool, the OS picks the address); or wait until `until` (ms). */
export type SourceAnswer = { go: true; reservation: SourceReservation | null } | { go: false; until: number; reason: 'ip-warmup'; pool: string };

export interface SourceIpDeps {
  redis: Redis;
  keys: Keys;
  config: Pick<Config, 'hostname'> & { delivery: { ipPools: IpPoolsConfig } };
  clock: Clock;
  metrics: Pick<Metrics, 'ipWarmupWaits' | 'shapingRefusals'>;
}

type PickRedis = Redis & { kurirIpPick(...args: Array<string | number>): Promise<number[]> };

// KEYS: per candidate its hour and day counters. ARGV: n, then per candidate hourCap dayCap hourTtlMs dayTtlMs (-1: no cap).
// Returns {i} for the first candidate with room (its capped counters incremented), else {0, hour1, day1, hour2, day2, …}.
const PICK = `
local n = tonumber(ARGV[1])
local out = {0}
for i = 1, n do
  local a = 1 + (i - 1) * 4
  local hcap, dcap = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local h = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local d = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  if (hcap < 0 or h < hcap) and (dcap < 0 or d < dcap) then
    if hcap >= 0 then redis.call('INCR', KEYS[2 * i - 1]); redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[a + 3]) end
    if dcap >= 0 then redis.call('INCR', KEYS[2 * i]); redis.call('PEXPIRE', KEYS[2 * i], ARGV[a + 4]) end
    return {i}
  end
  out[#out + 1] = h
  out[#out + 1] = d
end
return out`;

const GIVE_BACK = `for _, k in ipairs(KEYS) do if redis.call('EXISTS', k) == 1 then redis.call('DECR', k) end end return 0`;

/** The warm-up caps of an address at `now` (null: none). */
export function warmupCaps(ip: SourceIpConfig, now: number): { perHour: number | null; perDay: number | null } {
  if (!ip.warmup || !ip.warmupStart) return { perHour: null, perDay: null };
  const at = (schedule: number[] | undefined): number | null =>
    schedule ? dailyCap({ perDay: null, warmup: { start: ip.warmupStart as string, schedule } }, now).cap : null;
  return { perHour: at(ip.warmup.perHour), perDay: at(ip.warmup.perDay) };
}

/** One source IP as the admin API shows it: its pool, HELO, warm-up day and caps, and what it sent in the current windows. */
export interface SourceIpStatus {
  address: string;
  pool: string;
  helo: string;
  /** Day N of the warm-up (1 on and before warmupStart); null without a schedule. */
  warmupDay: number | null;
  perHour: number | null;
  perDay: number | null;
  /** Messages counted against the caps in this UTC hour / day, cluster-wide (null: no cap in force, nothing counted). */
  sentThisHour: number | null;
  sentToday: number | null;
}

/** Chooses the source IP of each delivery and enforces the addresses' warm-up caps. */
export class SourceIps {
  private readonly turn = new Map<string, number>();
  private readonly redis: PickRedis;

  constructor(private readonly deps: SourceIpDeps) {
    this.redis = deps.redis as PickRedis;
    if (typeof this.redis.kurirIpPick !== 'function') this.redis.defineCommand('kurirIpPick', { lua: PICK });
  }

  /** True when any pool is configured (otherwise every answer is "go, OS-chosen address"). */
  get configured(): boolean {
    return Object.keys(this.deps.config.delivery.ipPools.pools).length > 0;
  }

  /** The address for a delivery of `priority` from `senderDomain`, or when to ask again. */
  async pick(priority: Priority, senderDomain: string): Promise<SourceAnswer> {
    const pools = this.deps.config.delivery.ipPools;
    const pool = poolNameFor(pools, priority, senderDomain);
    const ips = pool ? pools.pools[pool] : undefined;
    if (!pool || !ips?.length) return { go: true, reservation: null };
    const start = this.turn.get(pool) ?? 0;
    this.turn.set(pool, (start + 1) % ips.length);
    const now = this.deps.clock.now();
    const order = ips.map((_, i) => ips[(start + i) % ips.length]);
    const caps = order.map((ip) => warmupCaps(ip, now));
    const source = (ip: SourceIpConfig): SourceIp => ({ address: ip.address, helo: ip.helo ?? this.deps.config.hostname, pool });
    // The common case, an address without a cap in force: no Redis round trip.
    if (caps[0].perHour === null && caps[0].perDay === null) return { go: true, reservation: { source: source(order[0]), counted: [] } };
    const hour = new Date(now).toISOString().slice(0, 13);
    const day = utcDay(now);
    const msToHour = HOUR_MS - (now % HOUR_MS);
    const msToDay = msUntilUtcMidnight(now);
    const keys = order.flatMap((ip) => [this.deps.keys.ipWarmup(ip.address, `h:${hour}`), this.deps.keys.ipWarmup(ip.address, `d:${day}`)]);
    const args = caps.flatMap((c) => [c.perHour ?? -1, c.perDay ?? -1, msToHour + KEY_MARGIN_MS, msToDay + KEY_MARGIN_MS]);
    const res = await this.redis.kurirIpPick(keys.length, ...keys, order.length, ...args);
    const chosen = Number(res[0]);
    if (chosen > 0) {
      const c = caps[chosen - 1];
      const counted = [...(c.perHour !== null ? [keys[2 * chosen - 2]] : []), ...(c.perDay !== null ? [keys[2 * chosen - 1]] : [])];
      return { go: true, reservation: { source: source(order[chosen - 1]), counted } };
    }
    // Every address is at a cap: the earliest one to have room again decides the wait.
    let wait = Number.POSITIVE_INFINITY;
    caps.forEach((c, i) => {
      const hourFull = c.perHour !== null && Number(res[1 + 2 * i]) >= c.perHour;
      const dayFull = c.perDay !== null && Number(res[2 + 2 * i]) >= c.perDay;
      wait = Math.min(wait, Math.max(hourFull ? msToHour : 0, dayFull ? msToDay : 0));
    });
    this.deps.metrics.ipWarmupWaits.inc({ pool });
    this.deps.metrics.shapingRefusals.inc({ limit: 'ip-warmup' });
    // A little spread, so a held backlog does not come back in one burst at the top of the hour.
    return { go: false, until: now + wait + Math.round(Math.random() * 1000), reason: 'ip-warmup', pool };
  }

  /** Every configured source IP with its warm-up state now (one Redis round trip). */
  async status(): Promise<SourceIpStatus[]> {
    const now = this.deps.clock.now();
    const all = poolAddresses(this.deps.config.delivery.ipPools);
    if (!all.length) return [];
    const hour = new Date(now).toISOString().slice(0, 13);
    const day = utcDay(now);
    const keys = all.flatMap((ip) => [this.deps.keys.ipWarmup(ip.address, `h:${hour}`), this.deps.keys.ipWarmup(ip.address, `d:${day}`)]);
    const counts = await this.redis.mget(...keys);
    return all.map((ip, i) => {
      const caps = warmupCaps(ip, now);
      const start = ip.warmupStart ? Date.parse(`${ip.warmupStart}T00:00:00Z`) : null;
      return {
        address: ip.address,
        pool: ip.pool,
        helo: ip.helo ?? this.deps.config.hostname,
        warmupDay: start === null ? null : Math.max(1, Math.floor((now - start) / 86_400_000) + 1),
        ...caps,
        sentThisHour: caps.perHour === null ? null : Number(counts[2 * i] ?? 0),
        sentToday: caps.perDay === null ? null : Number(counts[2 * i + 1] ?? 0),
      };
    });
  }

  /** Gives back the counts of a reservation under which nothing was sent. Never throws. */
  async giveBack(reservation: SourceReservation | null): Promise<void> {
    if (!reservation?.counted.length) return;
    // Only a counter that still exists: one that expired meanwhile must not come back at -1 without a TTL.
    await this.redis.eval(GIVE_BACK, reservation.counted.length, ...reservation.counted).catch(() => undefined);
  }
}
