import type { Redis } from 'ioredis';
import { domainOf } from '../lib/address.js';
import { normalizeHeaderMessageId } from '../lib/message-id.js';
import { deliveryJobId, jobArgs } from '../queue/delivery-queue.js';
import type { Keys } from './keys.js';
import { type MessageRedis, RECIPIENT_FIELD_PREFIX, readView, withMessageScripts } from './message-scripts.js';
import { type DeliveryView, deliveryViewOf, olderLayout } from './delivery-view.js';
import { outboxMember, WebhookOutbox } from './webhook-outbox.js';
import type { MessageRecord, MessageView, RecipientState, TimelineEvent } from './types.js';
import type { EventSink, IdPage, RecipientUpdate, RecordWrite, UpdateResult } from './message-store-types.js';
import { INDEX_TRIM_EVERY, MAX_MESSAGES_PER_RECIPIENT, messageStatus } from './message-store-types.js';

/** Options of a {@link MessageStore}. */
export interface MessageStoreOptions {
  /** Events the sink wants also go into the webhook outbox, due for the relay after this long (0: no outbox). */
  outboxGraceMs?: number;
}

/** Message records, bodies, per-recipient states and timelines in Redis. */
export class MessageStore {
  private readonly scripts: MessageRedis;
  /** The webhook outbox of this Redis (the relay and shutdown use it). */
  readonly outbox: WebhookOutbox;
  private readonly outboxGraceMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly retentionSeconds: number,
    private readonly sink?: EventSink,
    opts: MessageStoreOptions = {},
  ) {
    this.scripts = withMessageScripts(redis);
    this.outbox = new WebhookOutbox(redis, keys);
    this.outboxGraceMs = Math.max(0, Math.ceil(opts.outboxGraceMs ?? 0));
  }

  /**
   * Stores a new message, its timeline starting with `queued` and then `events` (what intake learned, e.g. a
   * pre-send score, recipients left out), in one atomic step; false when its id exists (nothing is written). With
   * `queue`, its delivery jobs (one per recipient domain) are added in the same script: stored and queued, or
   * neither. `events` reach the event sink (webhooks) as {@link update}'s do, through the outbox in the same script.
   */
  async create(record: MessageRecord, body: Buffer, events: TimelineEvent[] = [], queue = false): Promise<boolean> {
    const notify = this.sink !== undefined && events.length > 0;
    const durable = notify && this.outboxGraceMs > 0 && (this.sink!.wants?.(record, events) ?? false);
    const rcptArgs: string[] = [];
    const initial: RecipientState = { status: 'queued', attempts: 0, updatedAt: record.createdAt };
    for (const r of record.recipients) rcptArgs.push(r, JSON.stringify(initial));
    const id = record.id;
    const timeline = [{ type: 'queued', at: record.createdAt } satisfies TimelineEvent, ...events].map((e) => JSON.stringify(e));
    // The index outlives the message's own keys by at most the time to expiry.
    const indexTtl = Math.max(1, Math.ceil((record.expiresAt - record.createdAt) / 1000 + this.retentionSeconds));
    // Left-out recipients are indexed too: support searching by their address finds the message and why.
    const addresses = [...new Set([...record.recipients, ...(record.leftOut ?? []).map((l) => l.address)].map((r) => r.toLowerCase()))];
    // The reference index behaves exactly like a recipient index (same cap, same expiry).
    const indexes = [...addresses.map((a) => this.keys.recipientMessages(a)), ...(record.reference ? [this.keys.referenceMessages(record.reference)] : [])];
    const q = this.keys.deliveryQueue();
    const queueKeys = queue ? [q.jobs, q.ready, q.delayed, q.wake] : [];
    const jobs = queue ? jobArgs(id, record.priority, [...new Set(record.recipients.map(domainOf))], record.createdAt) : [];
    const created = await this.scripts.kurirMsgCreate(
      5 + indexes.length + queueKeys.length,
      this.keys.message(id),
      this.keys.events(id),
      this.keys.messageIdIndex(normalizeHeaderMessageId(record.messageId) ?? id),
      this.keys.liveMessages(),
      this.keys.webhookOutbox(),
      ...indexes,
      ...queueKeys,
      JSON.stringify(record),
      body,
      id,
      indexTtl,
      record.createdAt,
      record.createdAt - indexTtl * 1000,
      MAX_MESSAGES_PER_RECIPIENT,
      Math.random() < 1 / INDEX_TRIM_EVERY ? '1' : '0',
      durable ? this.outboxGraceMs : 0,
      timeline.length,
      jobs.length,
      ...timeline,
      ...jobs,
      ...rcptArgs,
    );
    if (created !== 1) return false;
    if (notify) await this.handOn(record, 1, events, durable);
    return true;
  }

  /** Hands events just written (the first at timeline index `first`) to the sink; acks their outbox entry once handed on. */
  private async handOn(record: MessageRecord, first: number, events: TimelineEvent[], durable: boolean): Promise<void> {
    const appended = events.map((event, i) => ({ index: first + i, event }));
    const handedOn = await this.sink!.onEvents(record, appended).then(
      () => true,
      () => false,
    );
    if (durable && handedOn) this.outbox.ack(outboxMember(record.id, first, events.length));
  }

  /**
   * Ids of the messages to one recipient address, newest first, `limit` from `offset`, and whether more
   * follow. The index keeps the newest {@link MAX_MESSAGES_PER_RECIPIENT} per address for the retention
   * period; ids whose message has expired since are left for the caller to skip.
   */
  async idsByRecipient(address: string, offset: number, limit: number): Promise<IdPage> {
    return this.idsIn(this.keys.recipientMessages(address), offset, limit);
  }

  /** Ids of the messages carrying one booking reference (case-insensitive), newest first, as {@link idsByRecipient}. */
  async idsByReference(reference: string, offset: number, limit: number): Promise<IdPage> {
    return this.idsIn(this.keys.referenceMessages(reference), offset, limit);
  }

  private async idsIn(key: string, offset: number, limit: number): Promise<IdPage> {
    // An index may hold a few entries beyond the cap until its next trim: they are not shown.
    const upTo = Math.min(offset + limit, MAX_MESSAGES_PER_RECIPIENT);
    if (upTo <= offset) return { ids: [], more: false };
    const ids = await this.redis.zrevrange(key, offset, upTo);
    return { ids: ids.slice(0, upTo - offset), more: ids.length > upTo - offset && upTo < MAX_MESSAGES_PER_RECIPIENT };
  }

  /** The Kurir id of the message with this Message-ID header (with or without brackets), or null. */
  async findByHeaderMessageId(headerMessageId: string): Promise<string | null> {
    const normalized = normalizeHeaderMessageId(headerMessageId);
    return normalized ? this.redis.get(this.keys.messageIdIndex(normalized)) : null;
  }

  /**
   * What a delivery attempt reads, with one command: the record, every recipient's state and the body (null
   * once the message is final). Null when the record is gone.
   */
  async getForDelivery(id: string): Promise<DeliveryView | null> {
    let hash = await this.redis.hgetallBuffer(this.keys.message(id));
    if (olderLayout(hash) && (await this.migrate(id))) {
      hash = await this.redis.hgetallBuffer(this.keys.message(id));
    }
    return hash.record ? deliveryViewOf(hash) : null;
  }

  /**
   * Moves a message stored in the layout before 2026-11-29 (written by an older Kurir after this Redis was
   * migrated, e.g. during an upgrade) into its hash; true when there was something to move.
   */
  async migrate(id: string): Promise<boolean> {
    return (await this.scripts.kurirMsgMigrate(this.keys.message(id), this.keys.legacyRecipients(id), this.keys.legacyBody(id))) === 1;
  }

  /**
   * Moves every message stored in the layout before 2026-11-29 into its hash (one SCAN), once per Redis: a
   * marker key says it was done. Safe to run from several processes at once. Returns how many moved.
   */
  async migrateLayoutOnce(): Promise<number> {
    if (await this.redis.exists(this.keys.messageLayoutMigrated())) return 0;
    const prefixLength = this.keys.legacyRecipients('').length;
    let moved = 0;
    let cursor = '0';
    do {
      const [next, found] = await this.redis.scan(cursor, 'MATCH', this.keys.legacyRecipientsPattern(), 'COUNT', 1000);
      cursor = next;
      const results = await Promise.all(found.map((k) => this.migrate(k.slice(prefixLength))));
      moved += results.filter(Boolean).length;
    } while (cursor !== '0');
    await this.redis.set(this.keys.messageLayoutMigrated(), String(Date.now()));
    return moved;
  }

  /** The record alone, or null. */
  async getRecord(id: string): Promise<MessageRecord | null> {
    const raw = await this.redis.hget(this.keys.message(id), 'record');
    return raw ? (JSON.parse(raw) as MessageRecord) : null;
  }

  /** The signed message as it will be sent, or null once the message is final. */
  async getBody(id: string): Promise<Buffer | null> {
    return this.redis.hgetBuffer(this.keys.message(id), 'body');
  }

  /** Record, recipient states, derived status and timeline in one round trip (the body is not read). */
  async get(id: string): Promise<MessageView | null> {
    const view = await this.scripts.kurirMsgView('2', this.keys.message(id), this.keys.events(id));
    if (!view) return null;
    const { record: raw, states } = readView(view);
    const events = view[2];
    const recipients: Record<string, RecipientState> = {};
    for (const [address, json] of states) if (json) recipients[address] = JSON.parse(json) as RecipientState;
    return {
      record: JSON.parse(raw) as MessageRecord,
      status: messageStatus(Object.values(recipients)),
      recipients,
      events: events.map((e) => JSON.parse(e) as TimelineEvent),
    };
  }

  /** States of some recipients of a message. */
  async getRecipients(id: string, addresses: string[]): Promise<Record<string, RecipientState | undefined>> {
    if (!addresses.length) return {};
    const values = await this.redis.hmget(this.keys.message(id), ...addresses.map((a) => RECIPIENT_FIELD_PREFIX + a));
    const out: Record<string, RecipientState | undefined> = {};
    addresses.forEach((a, i) => {
      out[a] = values[i] ? (JSON.parse(values[i] as string) as RecipientState) : undefined;
    });
    return out;
  }

  /**
   * Applies recipient updates and timeline events in one atomic script; when every recipient is then final,
   * the same script drops the body, leaves the live index and starts the retention countdown. Returns whether
   * the message is now final. `record`, when the caller has it, spares the event sink a read of it.
   */
  async update(id: string, updates: RecipientUpdate[], events: TimelineEvent[], record?: MessageRecord): Promise<boolean> {
    return (await this.updateDetailed(id, updates, events, record)).final;
  }

  /**
   * {@link update}, answering also the recipients already `delivered` that it delivered again (their first state
   * stands; the event part naming them is written `duplicate: true`, not sent to webhooks), in the same script as the
   * write. With `write` (one id across a write's retries) applied once: a retry finding its id applied writes nothing,
   * answers as that try did (`replayed`) and hands its events to the sink unless they went to the outbox.
   */
  async updateDetailed(id: string, updates: RecipientUpdate[], events: TimelineEvent[], record?: MessageRecord, write?: RecordWrite): Promise<UpdateResult> {
    const writeId = write?.id;
    const notify = this.sink !== undefined && events.length > 0;
    // Written to the outbox in the same script: a process that dies before handing them on loses nothing.
    const durable = notify && this.outboxGraceMs > 0 && (this.sink!.wants?.(record, events) ?? false);
    // Every recipient, when known here, so the script need not read the record to tell whether all are final.
    const all = record?.recipients ?? [];
    const args: Array<string | number> = [
      id,
      Math.ceil(this.retentionSeconds),
      ((notify || (this.sink && writeId)) && !record ? 1 : 0) + (write?.retry ? 2 : 0),
      durable ? this.outboxGraceMs : 0,
      updates.length,
      all.length,
    ];
    for (const u of updates) args.push(u.address, JSON.stringify(u.state));
    args.push(...all);
    for (const e of events) args.push(JSON.stringify(e));
    const k = this.keys;
    const writeKeys = writeId ? [k.recordWrite(id, writeId)] : [];
    const [length, final, raw, duplicates, rewritten, replay] = await this.scripts.kurirMsgRecord(
      4 + writeKeys.length,
      k.message(id),
      k.events(id),
      k.liveMessages(),
      k.webhookOutbox(),
      ...writeKeys,
      ...args,
    );
    const current = record ?? (raw ? (JSON.parse(raw) as MessageRecord) : null);
    // A replay: nothing written now, and the first try's events never reached the sink (its answer was lost).
    if (replay) {
      const first = (rewritten ?? []).map((e) => JSON.parse(e) as TimelineEvent);
      if (replay === 2 && this.sink && current && first.length) await this.handOn(current, Number(length) - first.length, first, false);
      return { final: final === 1, duplicates: duplicates ?? [], replayed: true };
    }
    // What the timeline got: a delivered event split in two when part of it was a duplicate.
    const pushed = rewritten ? rewritten.map((e) => JSON.parse(e) as TimelineEvent) : events;
    // Events given but none pushed: the message is gone and nothing was written, so there is nothing to tell.
    const gone = events.length > 0 && Number(length) === 0;
    // RPUSH answers the list length after the push, so each event's index is known without a read.
    if (notify && current && !gone) await this.handOn(current, Number(length) - pushed.length, pushed, durable);
    return { final: final === 1, duplicates: duplicates ?? [] };
  }

  /** One timeline event by its index, or null. */
  async getEvent(id: string, index: number): Promise<TimelineEvent | null> {
    const raw = await this.redis.lindex(this.keys.events(id), index);
    return raw ? (JSON.parse(raw) as TimelineEvent) : null;
  }

  /** Drops the body, leaves the live index and sets the retention expiry on what remains. */
  async finalize(id: string): Promise<void> {
    const ttl = Math.ceil(this.retentionSeconds);
    await this.redis
      .multi()
      .hdel(this.keys.message(id), 'body')
      .zrem(this.keys.liveMessages(), id)
      .expire(this.keys.message(id), ttl)
      .expire(this.keys.events(id), ttl)
      .exec();
  }

  /**
   * Takes back a message whose acceptance failed: every key of it and its delivery jobs, in one script, unless a
   * worker has already taken one of its jobs (its body came with the job, so it may be sending): then nothing is
   * removed and the message is delivered and reported like any other. Answers whether it was removed.
   */
  async remove(id: string): Promise<boolean> {
    const record = await this.getRecord(id);
    const recipients = record?.recipients ?? [];
    const q = this.keys.deliveryQueue();
    const jobIds = [...new Set(recipients.map(domainOf))].map((domain) => deliveryJobId(id, domain));
    const keys = [
      this.keys.message(id),
      this.keys.events(id),
      this.keys.liveMessages(),
      q.jobs,
      q.ready,
      ...[...recipients, ...(record?.leftOut ?? []).map((l) => l.address)].map((r) => this.keys.recipientMessages(r)),
    ];
    return (await this.scripts.kurirMsgTakeBack(keys.length, ...keys, id, jobIds.length, ...jobIds)) === 1;
  }
}
