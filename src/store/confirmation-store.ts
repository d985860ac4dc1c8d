/**
 * Verification confirmations in Redis (src/placement/confirmations.ts decides, this stores): one pipelined
 * read of what a confirmation needs, and one script that records a first confirmation — the confirmed key
 * and the timeline event — atomically, or answers the earlier one. The incident window's count of a first
 * confirmation goes to an {@link IncidentRecorder} (the gateway's IncidentBuffer, written once a second like
 * the delivered counts it is compared with). A confirmation is two round trips (one when it is a repeat); a
 * batch of them (POST /v1/confirmations) is the same two round trips per Redis holding its messages.
 */
import type { Redis } from 'ioredis';
import { IncidentStore, type IncidentRecorder } from './incident-store.js';
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

// KEYS: confirmed events; ARGV: at ttl event. SET NX decides who is first; only the first appends the event
// (RPUSHX: never recreates an expired timeline without its TTL). Answers 1, or the earlier confirmation time.
const RECORD_SCRIPT = `
if not redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then return redis.call('GET', KEYS[1]) end
redis.call('RPUSHX', KEYS[2], ARGV[3])
return 1`;

type ConfirmationScripts = Redis & {
  kurirConfirm(...args: Array<string | number>): Promise<number | string | null>;
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
  /** Where first confirmations are counted in the incident window. */
  private readonly incidents: IncidentRecorder;

  /**
   * @param redis the main Redis (`redis.url`)
   * @param locate the Redis holding each message when message data is sharded (redis.shards), in the order of
   *   the ids; default: `redis`
   * @param incidents where a first confirmation is counted (the gateway's IncidentBuffer); default: written
   *   to the main Redis at once
   */
  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly locate?: (ids: readonly string[]) => Promise<Redis[]>,
    incidents?: IncidentRecorder,
  ) {
    this.redis = ConfirmationStore.withScripts(redis);
    this.incidents = incidents ?? new IncidentStore(redis, keys);
  }

  private static withScripts(redis: Redis): ConfirmationScripts {
    const r = redis as ConfirmationScripts;
    if (typeof r.kurirConfirm !== 'function') r.defineCommand('kurirConfirm', { numberOfKeys: 2, lua: RECORD_SCRIPT });
    return r;
  }

  /** The ids grouped by the Redis holding them (one group, the main Redis, without shards), with their positions. */
  private async byRedis(ids: readonly string[]): Promise<Map<ConfirmationScripts, number[]>> {
    if (!this.locate) return new Map([[this.redis, ids.map((_, i) => i)]]);
    const where = await this.locate(ids);
    const groups = new Map<ConfirmationScripts, number[]>();
    where.forEach((redis, i) => {
      const r = ConfirmationStore.withScripts(redis);
      const list = groups.get(r);
      if (list) list.push(i);
      else groups.set(r, [i]);
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
   * Records the first confirmation of message `id` (kept `ttlSeconds`) and appends `event` to its timeline,
   * in one atomic script, then counts it in the incident window of `event.provider`; a repeat changes nothing.
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
      const p = redis.pipeline() as ReturnType<Redis['pipeline']> & { kurirConfirm(...args: Array<string | number>): unknown };
      for (const i of positions) {
        const { id, event, ttlSeconds } = items[i];
        p.kurirConfirm(this.keys.confirmation(id), this.keys.events(id), event.at, ttlSeconds, JSON.stringify(event));
      }
      const res = (await p.exec()) ?? [];
      for (const [err] of res) if (err) throw err;
      positions.forEach((i, n) => {
        out[i] = answer(res[n]?.[1]);
      });
      // Counted once stored, per Redis: never for a confirmation that was not stored, and not lost when a later
      // shard of the same batch fails (its retry would find these confirmed and count nothing).
      const firsts = positions.filter((i) => out[i].first).map((i) => items[i].event);
      await Promise.all(firsts.map((e) => this.incidents.recordVerification(e.provider, e.at, 'confirmed')));
    }
    return out;
  }
}
