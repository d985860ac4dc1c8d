/**
 * Failed-authentication throttling for SMTP AUTH and HTTP API keys, cluster-wide in Redis
 * (rate-limiter-flexible's RateLimiterRedis, keys below `<prefix>:auth-fail:`), so every gateway on
 * one Redis prefix counts together.
 *
 * Failures are counted per client IP (IPv6: per /64; SMTP and HTTP together) and per SMTP user name
 * over `windowSeconds`. Each failure is answered after a short delay that grows with the IP's count;
 * the failure that reaches `maxFailuresPerIp` / `maxFailuresPerUser` blocks the IP / user name for
 * `blockSeconds`, and while the block lasts every attempt is refused before its credentials are looked
 * at, so a correct guess during the block tells the attacker nothing (over HTTP a gateway remembers an IP
 * found not blocked for `clearCacheMs`, so another gateway's block reaches valid keys here that much later:
 * docs/security.md). A success resets the user
 * name's count but not the IP's: one valid account must not wipe out an IP's failures against others.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AuthLimitsConfig } from '../config/guard-schema.js';
import { clientKey } from '../lib/client-address.js';
import { KurirError, toKurirError } from '../lib/errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { AuthBlockScope, AuthFailureReason, IntakeInterface, Metrics } from '../metrics/metrics.js';
import { peekLimiters } from '../shaping/limiter-peek.js';
import type { Keys } from '../store/keys.js';

/** Who is trying to authenticate: the interface, the client address and (SMTP) the user name given. */
export interface AuthAttempt {
  iface: IntakeInterface;
  ip: string | undefined;
  user?: string;
}

export interface AuthThrottleDeps {
  redis: Redis;
  keys: Keys;
  config: AuthLimitsConfig;
  metrics: Pick<Metrics, 'authFailures' | 'authBlocked'>;
  logger: Logger;
  /** Waits before a failure is answered (tests may pass their own). */
  sleep?: (ms: number) => Promise<void>;
  /** The clock of the not-blocked cache (default Date.now). */
  clock?: Clock;
}

const MAX_USER_KEY = 128;
const MAX_LOGGED_USER = 256;
/** Client IPs remembered as not blocked ({@link AuthLimitsConfig.clearCacheMs}); the map is emptied when it reaches this. */
const MAX_CLEAR_IPS = 10_000;

/** The user-name part of a counter key: lower case, hashed when very long (the name is the client's choice). */
function userKey(user: string): string {
  const u = user.toLowerCase();
  return u.length <= MAX_USER_KEY ? u : `sha256:${createHash('sha256').update(u).digest('hex')}`;
}

/** A store failure: Redis not answering is UNAVAILABLE (503 / 451 4.3.0), like everywhere else. */
function storeError(err: unknown): KurirError {
  if (err instanceof Error && /Redis connection is not ready/i.test(err.message)) return new KurirError('UNAVAILABLE', undefined, { cause: err });
  return toKurirError(err);
}

/**
 * Guards SMTP AUTH and API-key authentication: counts failures per client IP and SMTP user name in Redis, delays each failure
 * and refuses attempts while the IP or user name is blocked.
 */
export class AuthThrottle {
  private readonly byIp: RateLimiterRedis;
  private readonly byUser: RateLimiterRedis;
  private readonly log: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Client IP key → until when (ms) it counts as not blocked without asking Redis (IP-only attempts: HTTP). */
  private readonly clearUntil = new Map<string, number>();
  /** Counts failures seen here: a check whose read started before one must not remember its IP as clear. */
  private failures = 0;
  private readonly clock: Clock;

  constructor(private readonly deps: AuthThrottleDeps) {
    const c = deps.config;
    // The failure that makes the count exceed `points` blocks the key: points = threshold - 1.
    const limiter = (scope: 'ip' | 'user', max: number): RateLimiterRedis =>
      new RateLimiterRedis({
        storeClient: deps.redis,
        keyPrefix: deps.keys.authFailures(scope),
        points: max - 1,
        duration: c.windowSeconds,
        blockDuration: c.blockSeconds,
        rejectIfRedisNotReady: true,
      } as ConstructorParameters<typeof RateLimiterRedis>[0]);
    this.byIp = limiter('ip', c.maxFailuresPerIp);
    this.byUser = limiter('user', c.maxFailuresPerUser);
    this.log = deps.logger.child({ component: 'auth' });
    this.clock = deps.clock ?? systemClock;
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  private fields(a: AuthAttempt): Record<string, unknown> {
    const out: Record<string, unknown> = { interface: a.iface, ip: a.ip };
    if (a.user !== undefined) out.user = a.user.length > MAX_LOGGED_USER ? `${a.user.slice(0, MAX_LOGGED_USER)}…` : a.user;
    return out;
  }

  private blocked(a: AuthAttempt, scope: AuthBlockScope, ms: number): KurirError {
    this.deps.metrics.authBlocked.inc({ interface: a.iface, scope });
    if (scope === 'connection') return new KurirError('AUTH_BLOCKED', 'Too many failed authentication attempts on this connection');
    const retryAfterSeconds = Math.max(1, Math.ceil(ms / 1000));
    return new KurirError('AUTH_BLOCKED', `Too many failed authentication attempts, try again in ${retryAfterSeconds} s`, { retryAfterSeconds });
  }

  /**
   * Refuses an attempt whose client IP or user name is blocked, before its credentials are checked.
   * @throws KurirError AUTH_BLOCKED (with `retryAfterSeconds`), UNAVAILABLE when Redis does not answer.
   */
  async check(a: AuthAttempt): Promise<void> {
    if (!this.deps.config.enabled) return;
    const ipKey = clientKey(a.ip);
    const cacheMs = this.deps.config.clearCacheMs;
    const cacheable = cacheMs > 0 && a.user === undefined;
    if (cacheable && (this.clearUntil.get(ipKey) ?? 0) > this.clock.now()) return;
    const failuresBefore = this.failures;
    const items = [{ limiter: this.byIp, key: ipKey }];
    if (a.user !== undefined) items.push({ limiter: this.byUser, key: userKey(a.user) });
    const [ip, user = null] = await peekLimiters(this.deps.redis, items).catch((err: unknown) => {
      throw storeError(err);
    });
    const over = (res: RateLimiterRes | null, l: RateLimiterRedis): boolean => res !== null && res.consumedPoints > l.points;
    const scope = over(ip, this.byIp) ? 'ip' : over(user, this.byUser) ? 'user' : null;
    if (!scope) {
      if (cacheable && this.failures === failuresBefore) {
        if (this.clearUntil.size >= MAX_CLEAR_IPS) this.clearUntil.clear();
        this.clearUntil.set(ipKey, this.clock.now() + cacheMs);
      }
      return;
    }
    const ms = Math.max((scope === 'ip' ? ip : user)?.msBeforeNext ?? 0, 0);
    this.log.info({ ...this.fields(a), scope, retryAfterMs: ms }, 'auth: attempt refused while blocked');
    throw this.blocked(a, scope, ms);
  }

  /**
   * Counts a failed attempt, waits the failure delay and returns the error to answer it with:
   * AUTH_BLOCKED when this failure reached a threshold (or `connectionFailures`, the failures so far on
   * this SMTP connection, reached `maxFailuresPerConnection`), AUTH_FAILED otherwise.
   * @throws KurirError UNAVAILABLE when Redis does not answer.
   */
  async fail(a: AuthAttempt & { reason: AuthFailureReason; connectionFailures?: number }): Promise<KurirError> {
    const c = this.deps.config;
    this.deps.metrics.authFailures.inc({ interface: a.iface, reason: a.reason });
    this.failures++;
    this.clearUntil.delete(clientKey(a.ip));
    if (!c.enabled) {
      this.log.warn({ ...this.fields(a), reason: a.reason }, 'auth: failed');
      return new KurirError('AUTH_FAILED');
    }
    const consume = (l: RateLimiterRedis, key: string): Promise<{ res: RateLimiterRes; over: boolean }> =>
      l.consume(key).then(
        (res) => ({ res, over: false }),
        (err: unknown) => {
          if (err instanceof RateLimiterRes) return { res: err, over: true };
          throw storeError(err);
        },
      );
    const [ip, user] = await Promise.all([consume(this.byIp, clientKey(a.ip)), a.user !== undefined ? consume(this.byUser, userKey(a.user)) : null]);
    const failures = { failuresIp: ip.res.consumedPoints, failuresUser: user?.res.consumedPoints };
    this.log.warn({ ...this.fields(a), reason: a.reason, ...failures }, 'auth: failed');
    const scope = ip.over ? 'ip' : user?.over ? 'user' : null;
    if (scope) {
      const ms = Math.max((scope === 'ip' ? ip : user)?.res.msBeforeNext ?? 0, 0);
      this.log.warn({ ...this.fields(a), scope, ...failures, blockSeconds: Math.ceil(ms / 1000) }, 'auth: blocked after repeated failures');
      return this.blocked(a, scope, ms);
    }
    await this.sleep(Math.min(c.maxDelayMs, c.delayStepMs * ip.res.consumedPoints));
    if (a.connectionFailures !== undefined && a.connectionFailures >= c.maxFailuresPerConnection) {
      this.log.warn({ ...this.fields(a), ...failures }, 'auth: connection closed after repeated failures');
      return this.blocked(a, 'connection', 0);
    }
    return new KurirError('AUTH_FAILED');
  }

  /** A successful authentication: resets the user name's failure count (the IP's stays). */
  async succeed(a: AuthAttempt): Promise<void> {
    if (!this.deps.config.enabled || a.user === undefined) return;
    await this.byUser.delete(userKey(a.user)).catch((err: unknown) => {
      throw storeError(err);
    });
  }
}
