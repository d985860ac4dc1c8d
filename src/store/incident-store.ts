/**
 * The per-provider rolling window behind GET /v1/incidents: what happened to the mail of each provider in
 * the last hour, written where it happens (the delivery record stage, the bounce MX, confirmations) as
 * per-minute hashes that expire by themselves. A write is one pipelined round trip of a few HINCRBYs; a read
 * is one pipeline of HGETALLs over the window. Nothing here is derived from Prometheus.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
/** Minute buckets outlive the one-hour window by an hour, so a slow reader never sees a half-expired window. */
const MINUTE_TTL_SECONDS = 2 * 3600;
/** Hour buckets cover the 7-day baseline plus the hour being read. */
const HOUR_TTL_SECONDS = 8 * 86400 + 3600;
/** Sample replies are cut to this length: enough for the code and the receiver's first sentence. */
const REPLY_CHARS = 240;

/** Recipients of one attempt (or report) that share a result, category and cause. */
export interface OutcomeTally {
  status: 'delivered' | 'deferred' | 'bounced' | 'expired';
  /** Bounce category (none when delivered). */
  category: string;
  /** With category auth-failure: the check that failed. */
  cause?: string;
  /** The receiver's reply, kept as the sample for an auth-failure cause. */
  reply?: string;
  count: number;
}

/** One minute of one provider, as read back. */
export interface MinuteBucket {
  /** Start of the minute (ms). */
  at: number;
  delivered: number;
  expired: number;
  deferred: Record<string, number>;
  bounced: Record<string, number>;
  /** Auth refusals by cause and result: `{ dmarc: { bounced: 3 } }`. */
  auth: Record<string, { deferred?: number; bounced?: number }>;
  /** Last reply seen per auth cause in this minute. */
  replies: Record<string, string>;
  /** Verification recipients delivered (probes excluded) and confirmations. */
  verificationsDelivered: number;
  confirmations: number;
}

function parseBucket(at: number, h: Record<string, string>): MinuteBucket {
  const b: MinuteBucket = { at, delivered: 0, expired: 0, deferred: {}, bounced: {}, auth: {}, replies: {}, verificationsDelivered: 0, confirmations: 0 };
  for (const [field, raw] of Object.entries(h)) {
    const [kind, a, c] = field.split(':');
    const n = Number(raw);
    if (kind === 'reply') b.replies[a] = raw;
    else if (kind === 'delivered') b.delivered = n;
    else if (kind === 'expired') b.expired = n;
    else if (kind === 'deferred' || kind === 'bounced') b[kind][a] = n;
    else if (kind === 'auth' && (a === 'deferred' || a === 'bounced')) b.auth[c] = { ...b.auth[c], [a]: n };
    else if (kind === 'vd') b.verificationsDelivered = n;
    else if (kind === 'cf') b.confirmations = n;
  }
  return b;
}

/** One write to a bucket hash: add `by` to a counter field, or (with `set`) keep the latest sample text. */
export interface BucketWrite {
  key: string;
  field: string;
  by: number;
  set?: string;
  ttlSeconds: number;
}

/** The bucket writes that count one attempt's (or report's) outcomes for `provider` in the minute of `at`. */
export function tallyWrites(keys: Keys, provider: string, at: number, tallies: readonly OutcomeTally[]): BucketWrite[] {
  const key = keys.incidentMinute(provider, Math.floor(at / MINUTE));
  const out: BucketWrite[] = [];
  const add = (field: string, by: number, set?: string) => out.push({ key, field, by, ttlSeconds: MINUTE_TTL_SECONDS, ...(set !== undefined ? { set } : {}) });
  for (const t of tallies) {
    if (t.status === 'delivered' || t.status === 'expired') add(t.status, t.count);
    else add(`${t.status}:${t.category}`, t.count);
    if (t.cause && (t.status === 'deferred' || t.status === 'bounced')) {
      add(`auth:${t.status}:${t.cause}`, t.count);
      if (t.reply) add(`reply:${t.cause}`, 0, t.reply.slice(0, REPLY_CHARS));
    }
  }
  return out;
}

/**
 * The bucket writes that count one verification delivery or confirmation of `provider` at `at`: the minute bucket
 * (`vd` / `cf`), and the hour bucket kept for the baseline, by minute of the hour (`vd:17` / `cf:17`), so the
 * baseline can read exactly the minutes of the window 1 to 7 days back.
 */
export function verificationWrites(keys: Keys, provider: string, at: number, kind: 'delivered' | 'confirmed'): BucketWrite[] {
  const field = kind === 'delivered' ? 'vd' : 'cf';
  const minute = Math.floor(at / MINUTE);
  return [
    { key: keys.incidentMinute(provider, minute), field, by: 1, ttlSeconds: MINUTE_TTL_SECONDS },
    { key: keys.incidentHour(provider, Math.floor(at / HOUR)), field: `${field}:${minute % 60}`, by: 1, ttlSeconds: HOUR_TTL_SECONDS },
  ];
}

/**
 * Verification deliveries and confirmations of one hour bucket that fall in the minutes `[first, last]`. A bucket
 * written before 1 Dec 2026 holds only the hour's totals (`vd`, `cf`): those count in proportion to the minutes
 * of the hour inside the range, as if spread evenly (such buckets are gone 8 days after the upgrade).
 */
function baselineCounts(hour: number, h: Record<string, string>, first: number, last: number): { delivered: number; confirmed: number } {
  const out = { delivered: 0, confirmed: 0 };
  const inside = Math.max(0, Math.min(last, hour * 60 + 59) - Math.max(first, hour * 60) + 1);
  for (const [field, raw] of Object.entries(h)) {
    const [kind, mm] = field.split(':');
    const target = kind === 'vd' ? 'delivered' : kind === 'cf' ? 'confirmed' : null;
    if (!target) continue;
    if (mm === undefined) out[target] += (Number(raw) * inside) / 60;
    else if (hour * 60 + Number(mm) >= first && hour * 60 + Number(mm) <= last) out[target] += Number(raw);
  }
  return out;
}

/** What writers of the incident window need: {@link IncidentStore} writes at once, IncidentBuffer (./incident-buffer.ts) within a second. */
export interface IncidentRecorder {
  /** Counts one attempt's (or report's) outcomes for `provider` in the minute of `at`. */
  record(provider: string, at: number, tallies: readonly OutcomeTally[]): Promise<void>;
  /** Counts a delivered verification recipient or a confirmation for `provider` in the minute and hour of `at`. */
  recordVerification(provider: string, at: number, kind: 'delivered' | 'confirmed'): Promise<void>;
}

/**
 * Reads and writes the incident window's Redis buckets: per-minute outcome counts per provider, and the hour buckets of verification
 * counts that the 7-day confirmation baseline is read from.
 */
export class IncidentStore implements IncidentRecorder {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Counts one attempt's (or report's) outcomes for `provider` in the minute of `at`. One round trip. */
  async record(provider: string, at: number, tallies: readonly OutcomeTally[]): Promise<void> {
    if (!tallies.length) return;
    await this.write(tallyWrites(this.keys, provider, at, tallies));
  }

  /** Counts a delivered verification recipient (`delivered`) or a confirmation for `provider`: minute and hour buckets. One round trip; throws when Redis refuses a command. */
  async recordVerification(provider: string, at: number, kind: 'delivered' | 'confirmed'): Promise<void> {
    await this.write(verificationWrites(this.keys, provider, at, kind));
  }

  /** Applies bucket writes in one pipeline (each touched hash gets its TTL once); throws when Redis refuses a command. */
  async write(writes: readonly BucketWrite[]): Promise<void> {
    if (!writes.length) return;
    const p = this.redis.pipeline();
    const ttls = new Map<string, number>();
    for (const w of writes) {
      if (w.set !== undefined) p.hset(w.key, w.field, w.set);
      else p.hincrby(w.key, w.field, w.by);
      ttls.set(w.key, w.ttlSeconds);
    }
    for (const [key, ttl] of ttls) p.expire(key, ttl);
    const res = await p.exec();
    for (const [err] of res ?? []) if (err) throw err;
  }

  /** The last `minutes` minute buckets (the current one included) of each provider, oldest first; empty minutes omitted. */
  async window(providers: readonly string[], now: number, minutes: number): Promise<Map<string, MinuteBucket[]>> {
    const last = Math.floor(now / MINUTE);
    const p = this.redis.pipeline();
    for (const provider of providers) for (let m = last - minutes + 1; m <= last; m++) p.hgetall(this.keys.incidentMinute(provider, m));
    const replies = (await p.exec()) ?? [];
    const out = new Map<string, MinuteBucket[]>();
    let i = 0;
    for (const provider of providers) {
      const buckets: MinuteBucket[] = [];
      for (let m = last - minutes + 1; m <= last; m++) {
        const [err, h] = replies[i++] ?? [];
        if (err) throw err;
        if (h && Object.keys(h as object).length) buckets.push(parseBucket(m * MINUTE, h as Record<string, string>));
      }
      out.set(provider, buckets);
    }
    return out;
  }

  /**
   * Verification deliveries and confirmations of the provider in the same `minutes` minute buckets as
   * {@link window} reads (the current minute and the `minutes - 1` before it), on each of the last `days` days:
   * the trailing baseline the current confirmation rate is compared with. It is the window of
   * `provider:kurir_confirmation_ratio:baseline7d` (dashboards/recording-rules.yml): `[1h] offset 1d` … `7d`.
   */
  async baseline(provider: string, now: number, days = 7, minutes = 60): Promise<{ delivered: number; confirmed: number }> {
    const last = Math.floor(now / MINUTE);
    const ranges: Array<{ hour: number; first: number; last: number }> = [];
    for (let d = 1; d <= days; d++) {
      const to = last - d * 1440;
      const from = to - minutes + 1;
      for (let hour = Math.floor(from / 60); hour <= Math.floor(to / 60); hour++) ranges.push({ hour, first: from, last: to });
    }
    const p = this.redis.pipeline();
    for (const r of ranges) p.hgetall(this.keys.incidentHour(provider, r.hour));
    const replies = (await p.exec()) ?? [];
    let delivered = 0;
    let confirmed = 0;
    ranges.forEach((r, i) => {
      const [err, h] = replies[i] ?? [];
      if (err) throw err;
      const c = baselineCounts(r.hour, (h ?? {}) as Record<string, string>, r.first, r.last);
      delivered += c.delivered;
      confirmed += c.confirmed;
    });
    return { delivered, confirmed };
  }
}
