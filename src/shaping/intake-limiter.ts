/**
 * Cluster-wide intake limits in Redis (rate-limiter-flexible's RateLimiterRedis on the command
 * connection, keys below `<prefix>:limit:`): per credential (messages per second and per UTC day), per
 * recipient address (e.g. 5 verification messages per 10 minutes), and daily recipient caps, global and
 * per sender domain, with optional warm-up schedules.
 *
 * A submission reserves its points in every applicable limiter at once; when any limiter refuses, or the
 * message is not accepted after all (signing or spooling failed, duplicate), every point taken is given
 * back, so only accepted messages count and refused attempts never eat into the budget. The limit items
 * and the refusals they make are in intake-limit-items.ts.
 */
import type { Redis } from 'ioredis';
import { RateLimiterRedis, type RateLimiterRes } from 'rate-limiter-flexible';
import type { DailyCapConfig } from '../config/limits-schema.js';
import type { Config, Priority } from '../config/schema.js';
import type { Credential } from '../intake/credentials.js';
import type { Clock } from '../lib/clock.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Keys } from '../store/keys.js';
import { dailyCap, msUntilUtcMidnight, utcDay } from './daily-cap.js';
import { isOver, limitRefusal, type LimitItem, once, storeError } from './intake-limit-items.js';
import { peekLimiters } from './limiter-peek.js';

const DAILY_KEY_SECONDS = 2 * 86_400;

/** One recipient's per-recipient budget (see {@link IntakeLimiter.recipientAllowance}). */
export interface RecipientAllowance {
  max: number;
  windowSeconds: number;
  /** The priorities the limit counts; other priorities are not limited per recipient. */
  priorities: Priority[];
  /** Messages counted in the current window. */
  used: number;
  /** When the next message of a limited priority is allowed (ms; now when it is allowed now). */
  nextAllowedAt: number;
}

/** Points taken for one submission; `refund` gives them back (idempotent). */
export interface Reservation {
  /** Gives the points back; a second call does nothing. */
  refund(): Promise<void>;
}

export interface IntakeLimiterDeps {
  redis: Redis;
  keys: Keys;
  config: Pick<Config, 'limits' | 'apiKeys' | 'smtpAccounts'>;
  clock: Clock;
  metrics: Pick<Metrics, 'shapingRefusals'>;
}

/**
 * Applies the intake limits (per credential, per recipient, daily caps) to submissions: reserves points for a message with a refund
 * for when it is not accepted, and reads budgets without consuming (SMTP MAIL FROM and RCPT TO, the resend hint).
 */
export class IntakeLimiter {
  private readonly limiters = new Map<string, RateLimiterRedis>();
  private readonly credentialLimits = new Map<string, { perSecond: number | null; perDay: number | null }>();

  constructor(private readonly deps: IntakeLimiterDeps) {
    const d = deps.config.limits.credential;
    const add = (kind: Credential['kind'], name: string, own?: { perSecond?: number | null; perDay?: number | null }): void => {
      this.credentialLimits.set(`${kind}:${name}`, {
        perSecond: own?.perSecond !== undefined ? own.perSecond : d.perSecond,
        perDay: own?.perDay !== undefined ? own.perDay : d.perDay,
      });
    };
    for (const k of deps.config.apiKeys) add('api-key', k.name, k.limits);
    for (const a of deps.config.smtpAccounts) add('smtp-account', a.name, a.limits);
  }

  private get enabled(): boolean {
    return this.deps.config.limits.enabled;
  }

  /** One RateLimiterRedis per limit, size and window (warm-up caps change the size from day to day). */
  private limiter(name: string, points: number, durationSeconds: number): RateLimiterRedis {
    const id = `${name}:${points}:${durationSeconds}`;
    let l = this.limiters.get(id);
    if (!l) {
      l = new RateLimiterRedis({
        storeClient: this.deps.redis,
        keyPrefix: this.deps.keys.limiter(name),
        points,
        duration: durationSeconds,
        // The command connection fails fast when Redis is down; so does the limiter (→ 503 / 451 4.3.0).
        rejectIfRedisNotReady: true,
      } as ConstructorParameters<typeof RateLimiterRedis>[0]);
      this.limiters.set(id, l);
    }
    return l;
  }

  private limitsOf(cred: Credential): { perSecond: number | null; perDay: number | null } {
    const d = this.deps.config.limits.credential;
    // Runtime credentials carry their own overrides (same shape and meaning as `apiKeys[].limits`).
    if (cred.id !== undefined) {
      const own = cred.limits ?? {};
      return { perSecond: own.perSecond !== undefined ? own.perSecond : d.perSecond, perDay: own.perDay !== undefined ? own.perDay : d.perDay };
    }
    return this.credentialLimits.get(`${cred.kind}:${cred.name}`) ?? d;
  }

  /** Whether the per-recipient limit counts messages of this priority. */
  recipientLimitApplies(priority: Priority): boolean {
    const r = this.deps.config.limits.recipient;
    return this.enabled && r !== null && r.priorities.includes(priority);
  }

  private dailyItems(limit: 'global-daily' | 'domain-daily', cap: DailyCapConfig, key: string, label: string, recipients: number, now: number): LimitItem[] {
    const { cap: max, warmupDay } = dailyCap(cap, now);
    if (max === null) return [];
    const day = utcDay(now);
    const warm = warmupDay !== null ? ` (warm-up day ${warmupDay})` : '';
    return [
      {
        limit,
        limiter: this.limiter(limit, max, DAILY_KEY_SECONDS),
        key: `${key}${day}`,
        points: recipients,
        retryMs: () => msUntilUtcMidnight(this.deps.clock.now()),
        describe: `${label} daily cap of ${max} recipients${warm} reached`,
      },
    ];
  }

  private credentialItems(cred: Credential, now: number): LimitItem[] {
    const { perSecond, perDay } = this.limitsOf(cred);
    const id = `${cred.kind}:${cred.name}`;
    const items: LimitItem[] = [];
    if (perSecond !== null) {
      items.push({
        limit: 'credential-rate',
        limiter: this.limiter('credential-second', perSecond, 1),
        key: id,
        points: 1,
        retryMs: (res) => res.msBeforeNext,
        describe: `${cred.name}: at most ${perSecond} messages per second`,
      });
    }
    if (perDay !== null) {
      items.push({
        limit: 'credential-daily',
        limiter: this.limiter('credential-day', perDay, DAILY_KEY_SECONDS),
        key: `${id}:${utcDay(now)}`,
        points: 1,
        retryMs: () => msUntilUtcMidnight(this.deps.clock.now()),
        describe: `${cred.name}: at most ${perDay} messages per day`,
      });
    }
    return items;
  }

  private recipientItem(address: string): LimitItem | null {
    const r = this.deps.config.limits.recipient;
    if (!r) return null;
    return {
      limit: 'recipient',
      limiter: this.limiter('recipient', r.max, r.windowSeconds),
      key: address.toLowerCase(),
      points: 1,
      retryMs: (res) => res.msBeforeNext,
      describe: `at most ${r.max} ${r.priorities.join('/')} messages per ${r.windowSeconds} s to one recipient`,
      address,
    };
  }

  /**
   * Takes the points of one submission from every applicable limiter, atomically per limiter and
   * cluster-wide. Throws RECIPIENT_RATE_LIMITED or RATE_LIMITED (with `retryAfterSeconds`) and keeps
   * nothing when any limiter refuses.
   */
  async reserve(req: { credential: Credential; recipients: string[]; priority: Priority; fromDomain: string }): Promise<Reservation> {
    if (!this.enabled) return { refund: async () => undefined };
    const now = this.deps.clock.now();
    const { limits } = this.deps.config;
    const items: LimitItem[] = [];
    if (this.recipientLimitApplies(req.priority)) {
      for (const r of req.recipients) {
        const item = this.recipientItem(r);
        if (item) items.push(item);
      }
    }
    items.push(...this.credentialItems(req.credential, now));
    const domain = req.fromDomain.toLowerCase();
    items.push(...this.dailyItems('domain-daily', limits.domains[domain] ?? limits.domainDefault, `${domain}:`, domain, req.recipients.length, now));
    items.push(...this.dailyItems('global-daily', limits.global, '', 'global', req.recipients.length, now));
    if (!items.length) return { refund: async () => undefined };

    const settled = await Promise.allSettled(items.map((i) => i.limiter.consume(i.key, i.points)));
    // Points are taken also by a refused consume (the counter went over): those are given back too.
    const taken = items.filter((_, i) => settled[i].status === 'fulfilled' || isOver((settled[i] as PromiseRejectedResult).reason));
    const refund = once(async () => {
      await Promise.all(taken.map((i) => i.limiter.reward(i.key, i.points).catch(() => undefined)));
    });
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected' && !isOver(s.reason));
    if (failed) {
      await refund();
      throw storeError(failed.reason);
    }
    const over = items.flatMap((item, i) => {
      const s = settled[i];
      return s.status === 'rejected' ? [{ item, res: s.reason as RateLimiterRes }] : [];
    });
    if (over.length) {
      await refund();
      throw limitRefusal(over, this.deps.metrics);
    }
    return { refund };
  }

  /** Consumes nothing: refuses (RATE_LIMITED) when the credential's budget is already used up. For SMTP MAIL FROM. */
  async checkCredential(cred: Credential): Promise<void> {
    if (!this.enabled) return;
    await this.peek(this.credentialItems(cred, this.deps.clock.now()));
  }

  /**
   * Consumes nothing: reads the recipients' budgets now (a store failure rejects) and returns the refusal
   * (RECIPIENT_RATE_LIMITED) to throw, counted only when thrown, or null. For SMTP RCPT TO, whose caller checks
   * the suppression list beside it and answers that first.
   */
  async peekRecipients(addresses: string[]): Promise<(() => never) | null> {
    if (!this.enabled || !this.deps.config.limits.recipient) return null;
    return this.over(addresses.map((a) => this.recipientItem(a)).filter((i): i is LimitItem => i !== null));
  }

  /** One address's per-recipient budget, read without consuming; null when no per-recipient limit applies. */
  async recipientAllowance(address: string): Promise<RecipientAllowance | null> {
    const r = this.deps.config.limits.recipient;
    const item = this.enabled ? this.recipientItem(address) : null;
    if (!r || !item) return null;
    const [res] = await peekLimiters(this.deps.redis, [item]).catch((err: unknown) => Promise.reject(storeError(err)));
    const used = Math.min(r.max, Math.max(0, res?.consumedPoints ?? 0));
    const now = this.deps.clock.now();
    return {
      max: r.max,
      windowSeconds: r.windowSeconds,
      priorities: [...r.priorities],
      used,
      nextAllowedAt: now + (used >= r.max && res ? res.msBeforeNext : 0),
    };
  }

  private async peek(items: LimitItem[]): Promise<void> {
    (await this.over(items))?.();
  }

  /** Reads the items' budgets without consuming; returns what throws (and counts) the refusal, or null when none is over. */
  private async over(items: LimitItem[]): Promise<(() => never) | null> {
    const results = await peekLimiters(this.deps.redis, items).catch((err: unknown) => {
      throw storeError(err);
    });
    const over = items.flatMap((item, i) => {
      const res = results[i];
      return res && res.consumedPoints + item.points > item.limiter.points ? [{ item, res }] : [];
    });
    if (!over.length) return null;
    return () => {
      throw limitRefusal(over, this.deps.metrics);
    };
  }
}
