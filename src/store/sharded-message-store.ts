/**
 * The message store over several Redis shards (`redis.shards`): creates go to the sender domain's shard, reads
 * and updates by id go to the shard that holds the message, searches ask every shard. Used by intake, the API,
 * feedback and webhooks; each shard's delivery worker uses that shard's own {@link MessageStore}.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import { MessageStore } from './message-store.js';
import type { IdPage, RecipientUpdate, RecordWrite, UpdateResult } from './message-store-types.js';
import type { ShardRouter } from './shard-router.js';
import type { MessageRecord, MessageView, RecipientState, TimelineEvent } from './types.js';

/**
 * A {@link MessageStore} that routes every call to the right shard. A call by id goes to the shard
 * {@link ShardRouter.locate} names: the main Redis when no shard has the id; when no shard that answered has it and
 * another did not answer, that shard's Redis error is thrown (the message may be there).
 */
export class ShardedMessageStore extends MessageStore {
  constructor(
    redis: Redis,
    keys: Keys,
    retentionSeconds: number,
    private readonly router: ShardRouter,
  ) {
    super(redis, keys, retentionSeconds);
  }

  /**
   * {@link MessageStore.create} on the shard of the sender (From) domain, jobs included, so that shard's worker finds
   * record, body and job on one Redis; the id's shard is remembered for the reads that follow.
   */
  override async create(record: MessageRecord, body: Buffer, events: TimelineEvent[] = [], queue = false): Promise<boolean> {
    const shard = this.router.forSender(record.fromDomain);
    // The jobs go with the message: each shard's worker finds record, body and job on one Redis.
    const created = await shard.messages.create(record, body, events, queue);
    if (created) this.router.remember(record.id, shard);
    return created;
  }

  /**
   * Newest first across shards: ids sort by creation time, so the merge is a sort of the ids. A shard that does
   * not answer is named in `unavailable` and the others' ids are returned (support can still see them during an
   * outage); when none answers, the first error is thrown.
   */
  private async merged(search: (store: MessageStore, limit: number) => Promise<IdPage>, offset: number, limit: number): Promise<IdPage> {
    const shards = this.router.all();
    const settled = await Promise.allSettled(shards.map((s) => search(s.messages, offset + limit)));
    const parts: IdPage[] = [];
    const unavailable: string[] = [];
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') parts.push(r.value);
      else unavailable.push(shards[i].name);
    });
    if (!parts.length) throw (settled[0] as PromiseRejectedResult).reason;
    const merged = parts.flatMap((p) => p.ids).sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    const page: IdPage = { ids: merged.slice(offset, offset + limit), more: merged.length > offset + limit || parts.some((p) => p.more) };
    return unavailable.length ? { ...page, unavailable } : page;
  }

  /**
   * {@link MessageStore.idsByRecipient} merged from every shard, newest first: a shard that does not answer is named in
   * `unavailable`; when none answers, the first error is thrown.
   */
  override idsByRecipient(address: string, offset: number, limit: number): Promise<IdPage> {
    return this.merged((store, n) => store.idsByRecipient(address, 0, n), offset, limit);
  }

  /**
   * {@link MessageStore.idsByReference} merged from every shard, newest first: a shard that does not answer is named in
   * `unavailable`; when none answers, the first error is thrown.
   */
  override idsByReference(reference: string, offset: number, limit: number): Promise<IdPage> {
    return this.merged((store, n) => store.idsByReference(reference, 0, n), offset, limit);
  }

  /**
   * The message with this Message-ID on any shard. A shard that does not answer matters only when no other shard
   * has the message: then the error is thrown (the caller answers "try again"), since the message may be on it.
   */
  override async findByHeaderMessageId(headerMessageId: string): Promise<string | null> {
    const settled = await Promise.allSettled(this.router.all().map((s) => s.messages.findByHeaderMessageId(headerMessageId)));
    for (const r of settled) if (r.status === 'fulfilled' && r.value !== null) return r.value;
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return null;
  }

  /** {@link MessageStore.getForDelivery} on the shard holding `id` (the class says which, and when it throws). */
  override async getForDelivery(id: string): Promise<{ record: MessageRecord; recipients: Record<string, RecipientState>; body: Buffer | null } | null> {
    return (await this.router.locate(id)).messages.getForDelivery(id);
  }

  /** {@link MessageStore.migrate} on the shard holding `id` (the class says which, and when it throws). */
  override async migrate(id: string): Promise<boolean> {
    return (await this.router.locate(id)).messages.migrate(id);
  }

  /** {@link MessageStore.migrateLayoutOnce} on every shard in turn; the number moved on all of them together. */
  override async migrateLayoutOnce(): Promise<number> {
    let moved = 0;
    for (const s of this.router.all()) moved += await s.messages.migrateLayoutOnce();
    return moved;
  }

  /** {@link MessageStore.getRecord} on the shard holding `id` (the class says which, and when it throws). */
  override async getRecord(id: string): Promise<MessageRecord | null> {
    return (await this.router.locate(id)).messages.getRecord(id);
  }

  /** {@link MessageStore.getBody} on the shard holding `id` (the class says which, and when it throws). */
  override async getBody(id: string): Promise<Buffer | null> {
    return (await this.router.locate(id)).messages.getBody(id);
  }

  /** {@link MessageStore.get} on the shard holding `id` (the class says which, and when it throws). */
  override async get(id: string): Promise<MessageView | null> {
    return (await this.router.locate(id)).messages.get(id);
  }

  /** {@link MessageStore.getRecipients} on the shard holding `id` (the class says which, and when it throws). */
  override async getRecipients(id: string, addresses: string[]): Promise<Record<string, RecipientState | undefined>> {
    return (await this.router.locate(id)).messages.getRecipients(id, addresses);
  }

  /** {@link MessageStore.update} on the shard holding `id` (the class says which, and when it throws). */
  override async update(id: string, updates: RecipientUpdate[], events: TimelineEvent[], record?: MessageRecord): Promise<boolean> {
    return (await this.router.locate(id)).messages.update(id, updates, events, record);
  }

  /** {@link MessageStore.updateDetailed} on the shard holding `id` (the class says which, and when it throws). */
  override async updateDetailed(
    id: string,
    updates: RecipientUpdate[],
    events: TimelineEvent[],
    record?: MessageRecord,
    write?: RecordWrite,
  ): Promise<UpdateResult> {
    return (await this.router.locate(id)).messages.updateDetailed(id, updates, events, record, write);
  }

  /** {@link MessageStore.getEvent} on the shard holding `id` (the class says which, and when it throws). */
  override async getEvent(id: string, index: number): Promise<TimelineEvent | null> {
    return (await this.router.locate(id)).messages.getEvent(id, index);
  }

  /** {@link MessageStore.finalize} on the shard holding `id` (the class says which, and when it throws). */
  override async finalize(id: string): Promise<void> {
    return (await this.router.locate(id)).messages.finalize(id);
  }

  /** {@link MessageStore.remove} on the shard holding `id` (the class says which, and when it throws). */
  override async remove(id: string): Promise<boolean> {
    return (await this.router.locate(id)).messages.remove(id);
  }
}
