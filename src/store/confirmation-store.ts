/**
 * Verification confirmations in Redis (src/placement/confirmations.ts decides, this stores): one pipelined
 * read of what a confirmation needs, and one script that records a first confirmation — the confirmed key,
 * the timeline event and the incident window's minute and hour counts — atomically, or answers the earlier
 * one. A confirmation is two round trips (one when it is a repeat), where it used to be six; a batch of
 * them (POST /v1/confirmations) is the same two round trips per Redis holding its messages, whatever its size.
 */
import type { Redis } from 'ioredis';
import { IncidentStore, verificationBuckets } from './incident-store.js';
import type { Keys } from './keys.js';
import type { MessageRecord, TimelineEvent } from './types.js';

export type DeliveredEvent = Extract<TimelineEvent, { type: 'delivered' }>;
export type ConfirmedEvent = Extract<TimelineEvent, { type: 'confirmed' }>;

/** What deciding on a confirmation needs to know about a message. */
export interface ConfirmationFacts {
  record: MessageRecord;
  /** When it was confirmed before (ms), or null. */
  confirmedAt: number | null;
  /** The first delivery on its timeline, if any. */
  delivered?: DeliveredEvent;
}

/** The outcome of {@link ConfirmationStore.record}: first, or the time of the earlier confirmation. */
export type RecordedConfirmation = { first: true } | { first: false; confirmedAt: number };

// KEYS: confirmed events minute-bucket hour-bucket; ARGV: at ttl event field minute-ttl hour-ttl.
// SET NX decides who is first; only the first appends the event (RPUSHX: never recreates an expired
// timeline without its TTL) and counts it. Answers 1, or the earlier confirmation time.
const RECORD_SCRIPT = `
if not redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then return redis.call('GET', KEYS[1]) end
redis.call('RPUSHX', KEYS[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
redis.call('EXPIRE', KEYS[3], ARGV[5])
redis.call('HINCRBY', KEYS[4], ARGV[4], 1)
redis.call('EXPIRE', KEYS[4], ARGV[6])
return 1`;

// The same on a shard (redis.shards) holding the message: the incident buckets live on the main Redis, so they
// are counted there after a first confirmation (not atomically with it). KEYS: confirmed events; ARGV: at ttl event.
const RECORD_ON_SHARD_SCRIPT = `
if not redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then return redis.call('GET', KEYS[1]) end
redis.call('RPUSHX', KEYS[2], ARGV[3])
return 1`;

type ConfirmationScripts = Redis & {
  kurirConfirm(...args: Array<string | number>): Promise<number | string | null>;
  kurirConfirmOnShard(...args: Array<string | number>): Promise<number | string | null>;
};

const DELIVERED_MARK = '"type":"delivered"';

/** The first delivered event of a timeline; only candidates are parsed, so a long run of deferrals costs a substring search each. */
function firstDelivered(lines: string[]): DeliveredEvent | undefined {
  for (const line of lines) {
    if (!line.includes(DELIVERED_MARK)) continue;
    const event = JSON.parse(line) as TimelineEvent;
    if (event.type === 'delivered') return event;
  }
  return undefined;
}

export class ConfirmationStore {
  private readonly redis: ConfirmationScripts;
  /** The incident window on the main Redis, counted apart when the message lives on a shard. */
  private readonly incidents: IncidentStore;

  /**
   * @param redis the main Redis (`redis.url`)
   * @param locate the Redis holding a message when message data is sharded (redis.shards); default: `redis`
   */
  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly locate?: (id: string) => Promise<Redis>,
  ) {
    this.redis = ConfirmationStore.withScripts(redis);
    this.incidents = new IncidentStore(redis, keys);
  }

  private static withScripts(redis: Redis): ConfirmationScripts {
    const r = redis as ConfirmationScripts;
    if (typeof r.kurirConfirm !== 'function') r.defineCommand('kurirConfirm', { numberOfKeys: 4, lua: RECORD_SCRIPT });
    if (typeof r.kurirConfirmOnShard !== 'function') r.defineCommand('kurirConfirmOnShard', { numberOfKeys: 2, lua: RECORD_ON_SHARD_SCRIPT });
    return r;
  }

  private async redisOf(id: string): Promise<ConfirmationScripts> {
    return this.locate ? ConfirmationStore.withScripts(await this.locate(id)) : this.redis;
  }

  /** The ids grouped by the Redis holding them (one group, the main Redis, without shards), with their positions. */
  private async byRedis(ids: readonly string[]): Promise<Map<ConfirmationScripts, number[]>> {
    const where = await Promise.all(ids.map((id) => this.redisOf(id)));
    const groups = new Map<ConfirmationScripts, number[]>();
    where.forEach((redis, i) => {
      const list = groups.get(redis);
      if (list) list.push(i);
      else groups.set(redis, [i]);
    });
    return groups;
  }

  /** The record, an earlier confirmation and the first delivery, in one round trip; null for an unknown id. */
  async facts(id: string): Promise<ConfirmationFacts | null> {
    return (await this.factsOf([id]))[0];
  }

  /** {@link facts} of many messages: one pipelined round trip per Redis holding them, answers in the order of `ids`. */
  async factsOf(ids: readonly string[]): Promise<Array<ConfirmationFacts | null>> {
    const out: Array<ConfirmationFacts | null> = new Array(ids.length).fill(null);
    for (const [redis, positions] of await this.byRedis(ids)) {
      const p = redis.pipeline();
      for (const i of positions) p.hget(this.keys.message(ids[i]), 'record').get(this.keys.confirmation(ids[i])).lrange(this.keys.events(ids[i]), 0, -1);
      const res = (await p.exec()) ?? [];
      for (const [err] of res) if (err) throw err;
      positions.forEach((i, n) => {
        const raw = res[3 * n]?.[1] as string | null;
        if (!raw) return;
        const earlier = res[3 * n + 1]?.[1] as string | null;
        const delivered = firstDelivered((res[3 * n + 2]?.[1] ?? []) as string[]);
        out[i] = { record: JSON.parse(raw) as MessageRecord, confirmedAt: earlier ? Number(earlier) : null, ...(delivered ? { delivered } : {}) };
      });
    }
    return out;
  }

  /**
   * Records the first confirmation of message `id` (kept `ttlSeconds`), appends `event` to its timeline and
   * counts it in the incident window of `event.provider`, in one atomic script; a repeat changes nothing.
   */
  async record(id: string, event: ConfirmedEvent, ttlSeconds: number): Promise<RecordedConfirmation> {
    return (await this.recordAll([{ id, event, ttlSeconds }]))[0];
  }

  /**
   * {@link record} for many confirmations: one pipelined round trip of scripts per Redis holding them (each
   * script atomic on its own; the same id twice: the second is a repeat). Answers in the order given.
   */
  async recordAll(items: ReadonlyArray<{ id: string; event: ConfirmedEvent; ttlSeconds: number }>): Promise<RecordedConfirmation[]> {
    const out: RecordedConfirmation[] = new Array(items.length);
    const answer = (a: unknown): RecordedConfirmation => (a === 1 ? { first: true } : { first: false, confirmedAt: Number(a) });
    for (const [redis, positions] of await this.byRedis(items.map((it) => it.id))) {
      const p = redis.pipeline() as ReturnType<Redis['pipeline']> & {
        kurirConfirm(...args: Array<string | number>): unknown;
        kurirConfirmOnShard(...args: Array<string | number>): unknown;
      };
      const onShard = redis !== this.redis;
      for (const i of positions) {
        const { id, event, ttlSeconds } = items[i];
        if (onShard) {
          p.kurirConfirmOnShard(this.keys.confirmation(id), this.keys.events(id), event.at, ttlSeconds, JSON.stringify(event));
          continue;
        }
        const [minute, hour] = verificationBuckets(this.keys, event.provider, event.at, 'confirmed');
        p.kurirConfirm(
          this.keys.confirmation(id),
          this.keys.events(id),
          minute.key,
          hour.key,
          event.at,
          ttlSeconds,
          JSON.stringify(event),
          minute.field,
          minute.ttlSeconds,
          hour.ttlSeconds,
        );
      }
      const res = (await p.exec()) ?? [];
      for (const [err] of res) if (err) throw err;
      positions.forEach((i, n) => {
        out[i] = answer(res[n]?.[1]);
      });
      // On a shard the incident buckets live on the main Redis: counted after the first confirmations (not atomically).
      if (onShard) {
        const firsts = positions.filter((i) => out[i].first).map((i) => items[i].event);
        await Promise.all(firsts.map((e) => this.incidents.recordVerification(e.provider, e.at, 'confirmed')));
      }
    }
    return out;
  }
}
