import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** A probe in flight to one seed mailbox. */
export interface ProbeRecord {
  token: string;
  seed: string;
  provider: string;
  /** Kurir message id of the probe. */
  messageId: string;
  submittedAt: number;
  /** Not found anywhere by then (ms) → `missing`. */
  deadline: number;
  trigger: 'schedule' | 'request';
}

/**
 * Where a probe ended up; `seed-unreachable` when the seed could not be searched before the deadline;
 * `not-delivered` when the probe message was not delivered to the seed by the deadline (bounced, expired,
 * still queued or deferred): not a placement result, never `missing`.
 */
export type PlacementOutcome = 'inbox' | 'spam' | 'other' | 'missing' | 'seed-unreachable' | 'not-delivered';

/** One finished probe, as GET /v1/placement lists it. */
export interface PlacementResult {
  token: string;
  seed: string;
  provider: string;
  messageId: string;
  result: PlacementOutcome;
  submittedAt: number;
  /** When the result was recorded (ms). */
  at: number;
  mailbox?: string;
  arrivalSeconds?: number;
  auth?: { authservId?: string; dkim?: string; spf?: string; dmarc?: string };
  labels?: string[];
  /** seed-unreachable: the last error; not-delivered: the probe's recipient state and last reply. */
  error?: string;
}

/** A seed mailbox's reachability as the last search found it. */
export interface SeedState {
  state: 'up' | 'unreachable';
  reason?: string;
  error?: string;
  /** Since when it is in this state (ms). */
  since: number;
  checkedAt: number;
}

const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** Probes in flight, results per provider, seed states and the scheduling slots, in Redis. */
export class PlacementStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly historySize: number,
  ) {}

  /** Takes the seed's schedule slot for `intervalMs`: true for exactly one caller cluster-wide per interval. */
  async takeSlot(seed: string, intervalMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.placementSlot(seed), '1', 'PX', Math.max(1, Math.round(intervalMs)), 'NX')) === 'OK';
  }

  /** Asks for a probe to the seed now (taken by the next scheduler tick on any gateway). */
  async request(seed: string): Promise<void> {
    await this.redis.set(this.keys.placementRequest(seed), '1', 'EX', 3600);
  }

  /** True for the one caller that takes a pending on-demand request. */
  async takeRequest(seed: string): Promise<boolean> {
    return (await this.redis.getdel(this.keys.placementRequest(seed))) !== null;
  }

  /** A lock on searching the seed's mailbox; answers its owner token, or null when another process holds it. */
  async lockCheck(seed: string, ttlMs: number): Promise<string | null> {
    const token = randomBytes(8).toString('hex');
    const ok = await this.redis.set(this.keys.placementCheckLock(seed), token, 'PX', Math.max(1, Math.round(ttlMs)), 'NX');
    return ok === 'OK' ? token : null;
  }

  /** Releases the seed's search lock if `token` (from {@link lockCheck}) still holds it; an expired or taken-over lock is left alone. */
  async unlockCheck(seed: string, token: string): Promise<void> {
    await this.redis.eval(RELEASE_LOCK, 1, this.keys.placementCheckLock(seed), token);
  }

  /** Records a probe in flight; it is kept a day past its deadline at most. */
  async addProbe(p: ProbeRecord): Promise<void> {
    const ttl = Math.max(60, Math.ceil((p.deadline - p.submittedAt) / 1000) + 86400);
    await this.redis
      .multi()
      .set(this.keys.placementProbe(p.token), JSON.stringify(p), 'EX', ttl)
      .zadd(this.keys.placementPending(p.seed), p.submittedAt, p.token)
      .exec();
  }

  /** The seed's probes in flight, oldest first (entries whose record expired are dropped). */
  async pending(seed: string): Promise<ProbeRecord[]> {
    const tokens = await this.redis.zrange(this.keys.placementPending(seed), '0', '-1');
    if (!tokens.length) return [];
    const raws = await this.redis.mget(...tokens.map((t) => this.keys.placementProbe(t)));
    const gone = tokens.filter((_, i) => !raws[i]);
    if (gone.length) await this.redis.zrem(this.keys.placementPending(seed), ...gone);
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as ProbeRecord);
  }

  /**
   * Ends a probe: removes it from the seed's pending set and adds the result to its provider's history.
   * Answers false when another process ended it first (nothing is recorded twice).
   */
  async finish(r: PlacementResult): Promise<boolean> {
    const removed = await this.redis.zrem(this.keys.placementPending(r.seed), r.token);
    if (removed === 0) return false;
    await this.redis
      .multi()
      .del(this.keys.placementProbe(r.token))
      .lpush(this.keys.placementResults(r.provider), JSON.stringify(r))
      .ltrim(this.keys.placementResults(r.provider), 0, this.historySize - 1)
      .exec();
    return true;
  }

  /** The provider's results, newest first. */
  async results(provider: string, limit = this.historySize): Promise<PlacementResult[]> {
    const raws = await this.redis.lrange(this.keys.placementResults(provider), 0, Math.max(0, limit - 1));
    return raws.map((r) => JSON.parse(r) as PlacementResult);
  }

  /** Stores the seed's state; `since` is kept while the state does not change. */
  async setSeedState(seed: string, next: { state: SeedState['state']; reason?: string; error?: string; at: number }): Promise<SeedState> {
    const key = this.keys.placementSeedState(seed);
    const prev = await this.redis.hgetall(key);
    const since = prev.state === next.state && prev.since ? Number(prev.since) : next.at;
    const state: SeedState = {
      state: next.state,
      since,
      checkedAt: next.at,
      ...(next.reason ? { reason: next.reason } : {}),
      ...(next.error ? { error: next.error } : {}),
    };
    await this.redis
      .multi()
      .del(key)
      .hset(key, Object.fromEntries(Object.entries(state).map(([k, v]) => [k, String(v)])))
      .exec();
    return state;
  }

  /** The seed's state as {@link setSeedState} last stored it, or null before its first check. */
  async seedState(seed: string): Promise<SeedState | null> {
    const h = await this.redis.hgetall(this.keys.placementSeedState(seed));
    if (!h.state) return null;
    return {
      state: h.state as SeedState['state'],
      since: Number(h.since),
      checkedAt: Number(h.checkedAt),
      ...(h.reason ? { reason: h.reason } : {}),
      ...(h.error ? { error: h.error } : {}),
    };
  }
}
