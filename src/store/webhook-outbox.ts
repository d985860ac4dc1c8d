/**
 * The webhook outbox: the timeline events that must reach the webhook queue, written by the same script that
 * appends them to the timeline (src/store/message-scripts.ts, RECORD). The process that wrote them hands them on
 * at once and then acknowledges the entry; an entry nobody acknowledged within its grace (the process died, Redis
 * or the main Redis holding the webhook queue failed in between) is handed on by the relay
 * (src/webhooks/outbox-relay.ts). Scores are due times from Redis's own clock, so the workers' clocks do not matter.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import type { TimelineEvent } from './types.js';

/** One outbox entry: events `first`…`first + count − 1` of message `id`'s timeline. */
export interface OutboxEntry {
  member: string;
  id: string;
  first: number;
  count: number;
}

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: outbox; ARGV: lease ms, limit. Answers the due members, each now due again after the lease (a relay
// that dies mid-way leaves them to the next).
const CLAIM = `${NOW}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), m) end
return due`;

// KEYS: outbox; ARGV: delay ms, member…. Makes entries still there due after the delay.
const POSTPONE = `${NOW}
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
return 0`;

type OutboxRedis = Redis & {
  kurirOutboxClaim?: (key: string, leaseMs: number, limit: number) => Promise<string[]>;
  kurirOutboxPostpone?: (key: string, delayMs: number, ...members: string[]) => Promise<number>;
};

/** The member of an outbox entry; the record script builds the same string. */
export function outboxMember(id: string, first: number, count: number): string {
  return `${id}:${first}:${count}`;
}

/** The parts of an outbox member, or null when it is not one. */
export function parseOutboxMember(member: string): OutboxEntry | null {
  const m = /^(.+):(\d+):(\d+)$/.exec(member);
  return m ? { member, id: m[1], first: Number(m[2]), count: Number(m[3]) } : null;
}

/** How long acknowledgements are gathered before one ZREM removes them together. */
const ACK_BATCH_MS = 20;

/** The outbox sorted set's operations: batched acknowledgements for the writing process, and claim, postpone, read and remove for the relay. */
export class WebhookOutbox {
  private pending: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /**
   * Marks an entry as handed on. Gathered for a few milliseconds into one command; a lost acknowledgement only
   * makes the relay hand the events on again (webhooks are at least once, with stable event ids).
   */
  ack(member: string): void {
    this.pending.push(member);
    if (this.timer) return;
    this.timer = setTimeout(() => void this.flush(), ACK_BATCH_MS);
    this.timer.unref();
  }

  /** Sends the gathered acknowledgements now (on close, and in tests). Never throws. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const members = this.pending;
    this.pending = [];
    if (members.length) {
      this.flushing = this.flushing.then(() =>
        this.redis.zrem(this.keys.webhookOutbox(), ...members).then(
          () => undefined,
          () => undefined,
        ),
      );
    }
    await this.flushing;
  }

  /** Takes up to `limit` due entries for `leaseMs`; they are due again after it unless acknowledged. */
  async claimDue(leaseMs: number, limit: number): Promise<OutboxEntry[]> {
    const members = await this.scripts().kurirOutboxClaim!(this.keys.webhookOutbox(), Math.ceil(leaseMs), limit);
    return members.map(parseOutboxMember).filter((e): e is OutboxEntry => e !== null);
  }

  /** Makes claimed entries due again after `delayMs` (their hand-on failed; sooner than the claim's end). */
  async postpone(members: string[], delayMs: number): Promise<void> {
    if (members.length) await this.scripts().kurirOutboxPostpone!(this.keys.webhookOutbox(), Math.ceil(delayMs), ...members);
  }

  private scripts(): OutboxRedis {
    const r = this.redis as OutboxRedis;
    if (typeof r.kurirOutboxClaim !== 'function') {
      r.defineCommand('kurirOutboxClaim', { numberOfKeys: 1, lua: CLAIM });
      r.defineCommand('kurirOutboxPostpone', { numberOfKeys: 1, lua: POSTPONE });
    }
    return r;
  }

  /** Removes entries at once (the relay, after handing them on or finding their message gone). */
  async remove(members: string[]): Promise<void> {
    if (members.length) await this.redis.zrem(this.keys.webhookOutbox(), ...members);
  }

  /** The events of an entry with their timeline indexes (fewer when the timeline is gone). */
  async events(entry: OutboxEntry): Promise<Array<{ index: number; event: TimelineEvent }>> {
    const raw = await this.redis.lrange(this.keys.events(entry.id), entry.first, entry.first + entry.count - 1);
    return raw.map((r, i) => ({ index: entry.first + i, event: JSON.parse(r) as TimelineEvent }));
  }

  /** Entries waiting (the gauge and GET /v1/queue could show it; tests read it). */
  async size(): Promise<number> {
    return this.redis.zcard(this.keys.webhookOutbox());
  }
}
