/**
 * Verification confirmations in Redis (src/placement/confirmations.ts decides, this stores): one script reads
 * what a batch of confirmations needs, and one script records each first confirmation — the confirmed key and
 * the timeline event — or answers the earlier one. The incident window's count of a first confirmation goes to
 * an {@link IncidentRecorder} (the gateway's IncidentBuffer, written once a second like the delivered counts it
 * is compared with). A confirmation is two round trips (one when it is a repeat); a batch of them
 * (POST /v1/confirmations) is the same two round trips per Redis holding its messages, and two script calls
 * per 100 confirmations for the gateway to send and decode instead of four commands per confirmation.
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

// KEYS: per message its hash, confirmed key and timeline; ARGV: the delivered mark. Answers per message: the
// record, the earlier confirmation time and the timeline lines that contain the mark (false, false and {} when
// absent), so the gateway decodes one or two short lines instead of every event.
const FACTS_SCRIPT = `
local out = {}
for i = 1, #KEYS, 3 do
  out[#out + 1] = redis.call('HGET', KEYS[i], 'record')
  out[#out + 1] = redis.call('GET', KEYS[i + 1])
  local candidates = {}
  for _, line in ipairs(redis.call('LRANGE', KEYS[i + 2], 0, -1)) do
    if string.find(line, ARGV[1], 1, true) then candidates[#candidates + 1] = line end
  end
  out[#out + 1] = candidates
end
return out`;

// KEYS: per confirmation its confirmed key and timeline; ARGV: per confirmation at, ttl, event. In order: SET NX
// decides who is first; only the first appends the event (RPUSHX: never recreates an expired timeline without its
// TTL). Answers per confirmation 1, or the earlier confirmation time (also for the same message named twice).
const RECORD_SCRIPT = `
local out = {}
local a = 0
for i = 1, #KEYS, 2 do
  if redis.call('SET', KEYS[i], ARGV[a + 1], 'EX', ARGV[a + 2], 'NX') then
    redis.call('RPUSHX', KEYS[i + 1], ARGV[a + 3])
    out[#out + 1] = 1
  else
    out[#out + 1] = redis.call('GET', KEYS[i])
  end
  a = a + 3
end
return out`;

/**
 * Confirmations per script call. A script holds Redis alone while it runs: a batch of 1,000 in one call held it
 * 6–18 ms (SLOWLOG, 30 Nov 2026), so a batch goes as calls of at most this many, pipelined in one round trip,
 * and other clients' commands run between them.
 */
const SCRIPT_CHUNK = 100;

/** A connection the two scripts are defined on (they are called through {@link ConfirmationPipeline}). */
type ConfirmationScripts = Redis & { kurirConfirmFacts?: unknown; kurirConfirmRecord?: unknown };
type ConfirmationPipeline = ReturnType<Redis['pipeline']> & {
  kurirConfirmFacts(numKeys: number, ...keysThenMark: string[]): unknown;
  kurirConfirmRecord(numKeys: number, ...args: Array<string | number>): unknown;
};

/**
 * Sends one script call per chunk of `positions` in one pipeline. Returns each chunk's positions with its
 * answers, or with the error of its call: one call can fail while the others ran.
 */
async function chunked<T>(
  redis: Redis,
  positions: number[],
  call: (p: ConfirmationPipeline, chunk: number[]) => void,
): Promise<Array<{ positions: number[]; answers: T[] } | { positions: number[]; error: Error }>> {
  const p = redis.pipeline() as ConfirmationPipeline;
  const chunks: number[][] = [];
  for (let c = 0; c < positions.length; c += SCRIPT_CHUNK) chunks.push(positions.slice(c, c + SCRIPT_CHUNK));
  for (const chunk of chunks) call(p, chunk);
  const res = (await p.exec()) ?? [];
  return chunks.map((chunk, n) => {
    const [err, answers] = res[n] ?? [new Error('no answer from Redis'), undefined];
    return err ? { positions: chunk, error: err } : { positions: chunk, answers: answers as T[] };
  });
}

/** The answers of every chunk end to end, or the first chunk's error (for reads, where a part is no use). */
function allOrThrow<T>(chunks: Awaited<ReturnType<typeof chunked<T>>>): T[] {
  return chunks.flatMap((c) => {
    if ('error' in c) throw c.error;
    return c.answers;
  });
}

const DELIVERED_MARK = '"type":"delivered"';

/** The first delivered event among a timeline's lines that contain DELIVERED_MARK (FACTS_SCRIPT picks them). */
function firstDelivered(candidates: string[]): DeliveredEvent | undefined {
  for (const line of candidates) {
    const event = JSON.parse(line) as TimelineEvent;
    if (event.type === 'delivered') return event;
  }
  return undefined;
}

/**
 * Redis side of confirmations: reads what deciding on a confirmation needs and stores first confirmations atomically, batched per
 * Redis holding the messages, counting each in the incident window.
 */
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
    // No numberOfKeys: a batch passes its key count first.
    if (typeof r.kurirConfirmFacts !== 'function') r.defineCommand('kurirConfirmFacts', { lua: FACTS_SCRIPT });
    if (typeof r.kurirConfirmRecord !== 'function') r.defineCommand('kurirConfirmRecord', { lua: RECORD_SCRIPT });
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

  /** {@link facts} of many messages: one round trip per Redis holding them, answers in the order of `ids`. */
  async factsOf(ids: readonly string[]): Promise<Array<ConfirmationFacts | null>> {
    const out: Array<ConfirmationFacts | null> = new Array(ids.length).fill(null);
    for (const [redis, positions] of await this.byRedis(ids)) {
      if (positions.length === 0) continue;
      const res = allOrThrow(
        await chunked<string | null | string[]>(redis, positions, (p, chunk) => {
          const keys = chunk.flatMap((i) => [this.keys.message(ids[i]), this.keys.confirmation(ids[i]), this.keys.events(ids[i])]);
          p.kurirConfirmFacts(keys.length, ...keys, DELIVERED_MARK);
        }),
      );
      positions.forEach((i, n) => {
        const raw = res[3 * n] as string | null;
        if (!raw) return;
        const earlier = res[3 * n + 1] as string | null;
        const delivered = firstDelivered((res[3 * n + 2] ?? []) as string[]);
        out[i] = { record: JSON.parse(raw) as MessageRecord, confirmedAt: earlier ? Number(earlier) : null, ...(delivered ? { delivered } : {}) };
      });
    }
    return out;
  }

  /**
   * Records the first confirmation of message `id` (kept `ttlSeconds`) and appends `event` to its timeline,
   * in one atomic script, then counts it in the incident window of `event.provider` (unless `event.counted` is
   * false); a repeat changes nothing.
   */
  async record(id: string, event: ConfirmedEvent, ttlSeconds: number): Promise<RecordedConfirmation> {
    return (await this.recordAll([{ id, event, ttlSeconds }]))[0];
  }

  /**
   * {@link record} for many confirmations: one round trip per Redis holding them, a script call per 100 (each
   * atomic; the same id twice: the second is a repeat, in one call or across two). Answers in the order given.
   * Each first confirmation is counted once its call has stored it, in the incident window and by `onFirst(i)`
   * (the caller's metrics), so a call that fails takes no count from the calls that ran; the failure is thrown
   * after them, and the batch's retry finds those confirmed (repeats, counted nothing).
   */
  async recordAll(
    items: ReadonlyArray<{ id: string; event: ConfirmedEvent; ttlSeconds: number }>,
    onFirst?: (i: number) => void,
  ): Promise<RecordedConfirmation[]> {
    const out: RecordedConfirmation[] = new Array(items.length);
    const answer = (a: unknown): RecordedConfirmation => (a === 1 ? { first: true } : { first: false, confirmedAt: Number(a) });
    let failure: unknown;
    for (const [redis, positions] of await this.byRedis(items.map((it) => it.id))) {
      if (positions.length === 0) continue;
      const chunks = await chunked<number | string>(redis, positions, (p, chunk) => {
        const keys: string[] = [];
        const args: Array<string | number> = [];
        for (const i of chunk) {
          const { id, event, ttlSeconds } = items[i];
          keys.push(this.keys.confirmation(id), this.keys.events(id));
          args.push(event.at, ttlSeconds, JSON.stringify(event));
        }
        p.kurirConfirmRecord(keys.length, ...keys, ...args);
      }).catch((err: unknown) => [{ positions, error: err as Error }]);
      for (const c of chunks) {
        if ('error' in c) failure ??= c.error;
        else for (const [n, i] of c.positions.entries()) out[i] = answer(c.answers[n]);
      }
      // Only what this Redis stored has an answer; of those, the first confirmations are counted.
      const firsts = positions.filter((i) => out[i]?.first);
      for (const i of firsts) onFirst?.(i);
      // A confirmation outside the rate's denominator (event.counted === false) is stored and answered, not counted.
      const counted = firsts.filter((i) => items[i].event.counted !== false);
      await Promise.all(counted.map((i) => this.incidents.recordVerification(items[i].event.provider, items[i].event.at, 'confirmed')));
    }
    if (failure !== undefined) throw failure;
    return out;
  }
}
