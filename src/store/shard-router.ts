/**
 * Which Redis holds a message (`redis.shards`, docs/scale-out.md). A message lives on the shard of its sender
 * (From) domain for its whole life; unlisted domains live on the main Redis (`redis.url`), which also holds
 * every shared fact. Callers that know only an id ask {@link ShardRouter.locate}: the answer is remembered, and
 * otherwise found with one EXISTS per shard (a message never moves, so a remembered answer never goes stale), which
 * still finds it while some other shard is down.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import type { MessageStore } from './message-store.js';

/** One Redis holding message data, with the store bound to it. */
export interface MessageShard {
  /** `main` for `redis.url`, else the configured name. */
  name: string;
  redis: Redis;
  messages: MessageStore;
}

/** Ids remembered per process: enough for the ids intake has just created and the API is being asked about. */
const REMEMBERED = 20_000;

/** Routes messages to shards by sender domain, and finds a message's shard by its id. */
export class ShardRouter {
  private readonly bySender = new Map<string, MessageShard>();
  private readonly remembered = new Map<string, MessageShard>();

  constructor(
    readonly main: MessageShard,
    readonly others: readonly MessageShard[],
    senderDomains: ReadonlyMap<string, string>,
    private readonly keys: Keys,
  ) {
    for (const [domain, name] of senderDomains) {
      const shard = others.find((s) => s.name === name);
      if (shard) this.bySender.set(domain.toLowerCase(), shard);
    }
  }

  /** Every shard, the main one first. */
  all(): MessageShard[] {
    return [this.main, ...this.others];
  }

  /** The shard that holds (or will hold) the messages of a sender domain. */
  forSender(domain: string): MessageShard {
    return this.bySender.get(domain.toLowerCase()) ?? this.main;
  }

  /** Notes where a message was just created, so the enqueue and the first reads need no lookup. */
  remember(id: string, shard: MessageShard): void {
    if (this.remembered.size >= REMEMBERED) {
      const oldest = this.remembered.keys().next().value;
      if (oldest !== undefined) this.remembered.delete(oldest);
    }
    this.remembered.set(id, shard);
  }

  /**
   * The shard holding message `id`; the main one when no shard has it (reads then answer "not found" as before).
   * Found on a Redis that answers, it is returned even while another shard is down; not found, with a shard
   * down, the Redis error is thrown (the message may be there), so callers answer "try later", not "not found".
   */
  async locate(id: string): Promise<MessageShard> {
    return (await this.locateMany([id]))[0];
  }

  /**
   * {@link locate} for many ids at once, in the order of `ids`: one pipeline of EXISTS per shard for the ids not
   * remembered, whatever their number. One shard being down must not hide a message another one holds, so an id
   * found nowhere while a shard did not answer throws that shard's error.
   */
  async locateMany(ids: readonly string[]): Promise<MessageShard[]> {
    const out: MessageShard[] = new Array(ids.length);
    const unknown: number[] = [];
    ids.forEach((id, i) => {
      const known = this.remembered.get(id) ?? (this.others.length ? undefined : this.main);
      if (known) out[i] = known;
      else unknown.push(i);
    });
    if (!unknown.length) return out;
    const shards = this.all();
    const answers = await Promise.all(
      shards.map(async (s) => {
        const p = s.redis.pipeline();
        for (const i of unknown) p.exists(this.keys.message(ids[i]));
        try {
          return ((await p.exec()) ?? []).map(([err, n]) => (err ? err : n === 1));
        } catch (err) {
          return unknown.map(() => err as Error);
        }
      }),
    );
    unknown.forEach((i, n) => {
      const at = answers.findIndex((a) => a[n] === true);
      if (at >= 0) {
        this.remember(ids[i], shards[at]);
        out[i] = shards[at];
        return;
      }
      const failed = answers.map((a) => a[n]).find((x): x is Error => x instanceof Error);
      if (failed) throw failed;
      out[i] = this.main;
    });
    return out;
  }
}
