import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import { readView, withMessageScripts } from './message-scripts.js';
import { FINAL_RECIPIENT_STATUSES, type MessageRecord, type RecipientState } from './types.js';

/** A message not yet final, as the reconciler sees it. */
export interface LiveMessage {
  id: string;
  /** Null when the record is gone (retention ran out, or it was taken back at intake). */
  record: MessageRecord | null;
  /** Recipient addresses whose state is not final. */
  pending: string[];
}

/** One bounded slice of the live index. */
export interface LiveSlice {
  messages: LiveMessage[];
  /** Where the next slice starts; 0 when this slice reached the end (or messages younger than the grace). */
  nextOffset: number;
}

// A recipient without a state (a message an older Kurir stored, not yet moved to the one-hash layout) is pending:
// the delivery that follows moves it and reads its state.
function isPending(json: string | null): boolean {
  return json === null || !FINAL_RECIPIENT_STATUSES.has((JSON.parse(json) as RecipientState).status);
}

/**
 * The index of messages that are not final yet (a sorted set by creation time, written by the message
 * store's create script and cleared by finalize/remove), read by the delivery reconciler. A walk goes by
 * rank in bounded slices: a member removed meanwhile can shift a few others past the cursor, which the
 * next walk picks up.
 */
export class LiveIndex {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Up to `limit` live messages from rank `offset`, none created after `createdBefore` (ms). */
  async slice(offset: number, limit: number, createdBefore: number): Promise<LiveSlice> {
    const raw = await this.redis.zrange(this.keys.liveMessages(), String(offset), String(offset + limit - 1), 'WITHSCORES');
    const ids: string[] = [];
    let reachedYoung = false;
    for (let i = 0; i < raw.length; i += 2) {
      if (Number(raw[i + 1]) > createdBefore) {
        reachedYoung = true;
        break;
      }
      ids.push(raw[i]);
    }
    const messages = await this.load(ids);
    const done = reachedYoung || raw.length < limit * 2;
    return { messages, nextOffset: done ? 0 : offset + ids.length };
  }

  /** Record and non-final recipients of each id, in one round trip (bodies are not read). */
  async load(ids: string[]): Promise<LiveMessage[]> {
    if (!ids.length) return [];
    const tx = withMessageScripts(this.redis).pipeline() as unknown as { kurirMsgView(...args: string[]): unknown; exec(): ReturnType<Redis['exec']> };
    for (const id of ids) tx.kurirMsgView('1', this.keys.message(id));
    const res = (await tx.exec()) ?? [];
    return ids.map((id, i) => {
      const [err, view] = res[i] ?? [];
      if (err) throw err;
      if (!view) return { id, record: null, pending: [] };
      const { record, states } = readView(view as [string, Array<string | null>]);
      const pending = states.filter(([, json]) => isPending(json)).map(([address]) => address);
      return { id, record: JSON.parse(record) as MessageRecord, pending };
    });
  }

  /** Takes ids out of the index (their record is gone). */
  async drop(ids: string[]): Promise<void> {
    if (ids.length) await this.redis.zrem(this.keys.liveMessages(), ...ids);
  }

  /** Number of messages in the index. */
  async size(): Promise<number> {
    return this.redis.zcard(this.keys.liveMessages());
  }

  /**
   * Adds messages stored before the index existed (one SCAN over message records), once per Redis:
   * a marker key says it was done. Returns how many were added.
   */
  async buildOnce(): Promise<number> {
    if (await this.redis.exists(this.keys.liveIndexBuilt())) return 0;
    let added = 0;
    let cursor = '0';
    const prefixLength = this.keys.message('').length;
    do {
      const [next, found] = await this.redis.scan(cursor, 'MATCH', this.keys.messagePattern(), 'COUNT', 1000);
      cursor = next;
      const live = (await this.load(found.map((k) => k.slice(prefixLength)))).filter((m) => m.record && m.pending.length);
      if (live.length) {
        const args = live.flatMap((m) => [m.record!.createdAt, m.id]);
        added += await this.redis.zadd(this.keys.liveMessages(), 'NX', ...args);
      }
    } while (cursor !== '0');
    await this.redis.set(this.keys.liveIndexBuilt(), String(Date.now()));
    return added;
  }

  /** Rank where the last pass stopped (0 when none). */
  async cursor(): Promise<number> {
    return Number((await this.redis.get(this.keys.reconcileCursor())) ?? 0) || 0;
  }

  /** Stores the rank where this pass stopped, for the next pass ({@link cursor}) on any process; 0 starts over. */
  async setCursor(offset: number): Promise<void> {
    await this.redis.set(this.keys.reconcileCursor(), String(offset));
  }

  /** Takes the cluster-wide pass lock for `ms`; false when another process holds it. */
  async lock(token: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.keys.reconcileLock(), token, 'PX', ms, 'NX')) === 'OK';
  }

  /** Releases the lock if this token still holds it. */
  async unlock(token: string): Promise<void> {
    await this.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, this.keys.reconcileLock(), token);
  }
}
