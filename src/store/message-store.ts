import type { Redis } from 'ioredis';
import { domainOf } from '../lib/address.js';
import { normalizeHeaderMessageId } from '../lib/message-id.js';
import { deliveryJobId, jobArgs } from '../queue/delivery-queue.js';
import { ENQUEUE_FN } from '../queue/queue-scripts.js';
import type { Keys } from './keys.js';
import { FINAL_RECIPIENT_STATUSES, type MessageRecord, type MessageStatus, type MessageView, type RecipientState, type TimelineEvent } from './types.js';

// Creates every key of a message at once, or nothing when the id is already taken (idempotent retries
// that reuse an id must not overwrite or duplicate), and queues its delivery jobs in the same step when asked
// (stored and queued, or neither). KEYS: msg body rcpt events mid-index live rcpt-index... [ref-index]
// [queue jobs ready delayed wake]; ARGV: record body event id index-ttl createdAt oldest-kept per-address-cap n
// job-args-count extra-event×n job-arg×count rcpt... (the Message-ID index lets bounce reports without VERP find
// the message; the live index lets the reconciler find messages whose delivery job was lost; the recipient
// indexes let support find every message to an address, newest first, and the reference index every message
// with one booking reference; the n extra events are what intake learned, e.g. a pre-send score; the job
// arguments are the queue's, src/queue/delivery-queue.ts jobArgs).
const CREATE_SCRIPT = `${ENQUEUE_FN}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'record', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[4], ARGV[3])
local extra = tonumber(ARGV[9])
local jobArgs = tonumber(ARGV[10])
for i = 11, 10 + extra do redis.call('RPUSH', KEYS[4], ARGV[i]) end
redis.call('SET', KEYS[5], ARGV[4], 'EX', ARGV[5])
redis.call('ZADD', KEYS[6], ARGV[6], ARGV[4])
for i = 11 + extra + jobArgs, #ARGV, 2 do redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
local lastIndex = #KEYS
if jobArgs > 0 then lastIndex = #KEYS - 4 end
for i = 7, lastIndex do
  redis.call('ZADD', KEYS[i], ARGV[6], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[7])
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(tonumber(ARGV[8]) + 1))
  redis.call('EXPIRE', KEYS[i], ARGV[5])
end
if jobArgs > 0 then enqueueJobs(KEYS[#KEYS - 3], KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS], ARGV, 11 + extra, 10 + extra + jobArgs) end
return 1`;

// Records an attempt (or any state change) in one step. KEYS: msg rcpt events body live; ARGV: id ttl
// want-record n-updates (address state)×n event…. Final when every recipient's status is final: then the
// body goes, the live index entry goes, and msg/rcpt/events expire after the retention. Answers
// {events length after the push, 1 when final, the record JSON when asked for}.
const RECORD_SCRIPT = `
local n = tonumber(ARGV[4])
if n > 0 then
  local fields = {}
  for i = 5, 4 + 2 * n do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[2], unpack(fields))
end
local length = 0
if #ARGV > 4 + 2 * n then length = redis.call('RPUSH', KEYS[3], unpack(ARGV, 5 + 2 * n)) end
local record = false
if ARGV[3] == '1' then record = redis.call('HGET', KEYS[1], 'record') end
local states = redis.call('HVALS', KEYS[2])
local finalStatus = {${[...FINAL_RECIPIENT_STATUSES].map((x) => `['${x}'] = true`).join(', ')}}
local final = #states > 0 and 1 or 0
for _, s in ipairs(states) do
  if not finalStatus[cjson.decode(s).status] then final = 0 break end
end
if final == 1 then
  redis.call('DEL', KEYS[4])
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[3], ARGV[2])
end
return {length, final, record}`;

type MessageScripts = Redis & {
  kurirMsgCreate(...args: Array<string | number | Buffer>): Promise<number>;
  kurirMsgRecord(...args: Array<string | number>): Promise<[number, number, string | null]>;
};

/** Defines the message scripts on `redis` once per client (EVALSHA: the script text is not sent each time). */
function withMessageScripts(redis: Redis): MessageScripts {
  const r = redis as MessageScripts;
  if (typeof r.kurirMsgCreate !== 'function') {
    // The number of keys varies (one recipient index per address): it is the first argument of each call.
    r.defineCommand('kurirMsgCreate', { lua: CREATE_SCRIPT });
    r.defineCommand('kurirMsgRecord', { numberOfKeys: 5, lua: RECORD_SCRIPT });
  }
  return r;
}

export interface RecipientUpdate {
  address: string;
  state: RecipientState;
}

/** A timeline event with its position in the message's timeline (stable: the timeline is append-only). */
export interface AppendedEvent {
  index: number;
  event: TimelineEvent;
}

/**
 * Told about timeline events once `update` committed them: the one hook every producer of events
 * (delivery, bounce and complaint ingest) passes through. Used for webhooks. Must not throw.
 */
export interface EventSink {
  onEvents(record: MessageRecord, events: AppendedEvent[]): Promise<void>;
}

/** Messages kept per recipient address in the search index (the newest; older ones stay readable by id). */
export const MAX_MESSAGES_PER_RECIPIENT = 500;

/** Derives the message status shown to users from its recipients' states. */
export function messageStatus(states: RecipientState[]): MessageStatus {
  const s = new Set(states.map((r) => r.status));
  if (s.size === 1) return states[0].status;
  if ([...s].every((x) => FINAL_RECIPIENT_STATUSES.has(x))) return s.has('delivered') ? 'partially-delivered' : s.has('bounced') ? 'bounced' : 'expired';
  return s.has('deferred') ? 'deferred' : 'queued';
}

/** Message records, bodies, per-recipient states and timelines in Redis. */
export class MessageStore {
  private readonly scripts: MessageScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly retentionSeconds: number,
    private readonly sink?: EventSink,
  ) {
    this.scripts = withMessageScripts(redis);
  }

  /**
   * Stores a new message durably in one atomic step, its timeline starting with `queued` and then
   * `events` (what intake learned, e.g. a pre-send score). Returns false when the id already exists.
   */
  /**
   * Stores a new message (false when its id exists: nothing is written). With `queue`, its delivery jobs (one per
   * recipient domain) are added in the same script: stored and queued, or neither.
   */
  async create(record: MessageRecord, body: Buffer, events: TimelineEvent[] = [], queue = false): Promise<boolean> {
    const rcptArgs: string[] = [];
    const initial: RecipientState = { status: 'queued', attempts: 0, updatedAt: record.createdAt };
    for (const r of record.recipients) rcptArgs.push(r, JSON.stringify(initial));
    const id = record.id;
    const event: TimelineEvent = { type: 'queued', at: record.createdAt };
    // The index outlives the message's own keys by at most the time to expiry.
    const indexTtl = Math.max(1, Math.ceil((record.expiresAt - record.createdAt) / 1000 + this.retentionSeconds));
    const addresses = [...new Set(record.recipients.map((r) => r.toLowerCase()))];
    // The reference index behaves exactly like a recipient index (same cap, same expiry).
    const indexes = [...addresses.map((a) => this.keys.recipientMessages(a)), ...(record.reference ? [this.keys.referenceMessages(record.reference)] : [])];
    const q = this.keys.deliveryQueue();
    const queueKeys = queue ? [q.jobs, q.ready, q.delayed, q.wake] : [];
    const jobs = queue ? jobArgs(id, record.priority, [...new Set(record.recipients.map(domainOf))], record.createdAt) : [];
    const created = await this.scripts.kurirMsgCreate(
      6 + indexes.length + queueKeys.length,
      this.keys.message(id),
      this.keys.body(id),
      this.keys.recipients(id),
      this.keys.events(id),
      this.keys.messageIdIndex(normalizeHeaderMessageId(record.messageId) ?? id),
      this.keys.liveMessages(),
      ...indexes,
      ...queueKeys,
      JSON.stringify(record),
      body,
      JSON.stringify(event),
      id,
      indexTtl,
      record.createdAt,
      record.createdAt - indexTtl * 1000,
      MAX_MESSAGES_PER_RECIPIENT,
      events.length,
      jobs.length,
      ...events.map((e) => JSON.stringify(e)),
      ...jobs,
      ...rcptArgs,
    );
    return created === 1;
  }

  /**
   * Ids of the messages to one recipient address, newest first, `limit` from `offset`, and whether more
   * follow. The index keeps the newest {@link MAX_MESSAGES_PER_RECIPIENT} per address for the retention
   * period; ids whose message has expired since are left for the caller to skip.
   */
  async idsByRecipient(address: string, offset: number, limit: number): Promise<{ ids: string[]; more: boolean }> {
    return this.idsIn(this.keys.recipientMessages(address), offset, limit);
  }

  /** Ids of the messages carrying one booking reference (case-insensitive), newest first, as {@link idsByRecipient}. */
  async idsByReference(reference: string, offset: number, limit: number): Promise<{ ids: string[]; more: boolean }> {
    return this.idsIn(this.keys.referenceMessages(reference), offset, limit);
  }

  private async idsIn(key: string, offset: number, limit: number): Promise<{ ids: string[]; more: boolean }> {
    const ids = await this.redis.zrevrange(key, offset, offset + limit);
    return { ids: ids.slice(0, limit), more: ids.length > limit };
  }

  /** The Kurir id of the message with this Message-ID header (with or without brackets), or null. */
  async findByHeaderMessageId(headerMessageId: string): Promise<string | null> {
    const normalized = normalizeHeaderMessageId(headerMessageId);
    return normalized ? this.redis.get(this.keys.messageIdIndex(normalized)) : null;
  }

  /**
   * What a delivery attempt reads, in one round trip: the record, every recipient's state and the body
   * (null once the message is final). Null when the record is gone.
   */
  async getForDelivery(id: string): Promise<{ record: MessageRecord; recipients: Record<string, RecipientState>; body: Buffer | null } | null> {
    const res =
      (await this.redis.pipeline().hget(this.keys.message(id), 'record').hgetall(this.keys.recipients(id)).getBuffer(this.keys.body(id)).exec()) ?? [];
    for (const [err] of res) if (err) throw err;
    const raw = res[0]?.[1] as string | null;
    if (!raw) return null;
    const recipients: Record<string, RecipientState> = {};
    for (const [addr, json] of Object.entries((res[1]?.[1] ?? {}) as Record<string, string>)) recipients[addr] = JSON.parse(json) as RecipientState;
    return { record: JSON.parse(raw) as MessageRecord, recipients, body: (res[2]?.[1] as Buffer | null) ?? null };
  }

  /** The record alone, or null. */
  async getRecord(id: string): Promise<MessageRecord | null> {
    const raw = await this.redis.hget(this.keys.message(id), 'record');
    return raw ? (JSON.parse(raw) as MessageRecord) : null;
  }

  /** The signed message as it will be sent, or null once the message is final. */
  async getBody(id: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.keys.body(id));
  }

  /** Record, recipient states, derived status and timeline in one round trip. */
  async get(id: string): Promise<MessageView | null> {
    const [[, raw], [, rcpts], [, events]] = (await this.redis
      .multi()
      .hget(this.keys.message(id), 'record')
      .hgetall(this.keys.recipients(id))
      .lrange(this.keys.events(id), 0, -1)
      .exec()) as [[unknown, string | null], [unknown, Record<string, string>], [unknown, string[]]];
    if (!raw) return null;
    const recipients: Record<string, RecipientState> = {};
    for (const [addr, json] of Object.entries(rcpts)) recipients[addr] = JSON.parse(json) as RecipientState;
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
    const values = await this.redis.hmget(this.keys.recipients(id), ...addresses);
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
    const notify = this.sink !== undefined && events.length > 0;
    const args: Array<string | number> = [id, Math.ceil(this.retentionSeconds), notify && !record ? 1 : 0, updates.length];
    for (const u of updates) args.push(u.address, JSON.stringify(u.state));
    for (const e of events) args.push(JSON.stringify(e));
    const [length, final, raw] = await this.scripts.kurirMsgRecord(
      this.keys.message(id),
      this.keys.recipients(id),
      this.keys.events(id),
      this.keys.body(id),
      this.keys.liveMessages(),
      ...args,
    );
    const current = record ?? (raw ? (JSON.parse(raw) as MessageRecord) : null);
    if (notify && current) {
      // RPUSH answers the list length after the push, so each event's index is known without a read.
      const first = Number(length) - events.length;
      const appended = events.map((event, i) => ({ index: first + i, event }));
      await this.sink!.onEvents(current, appended).catch(() => undefined);
    }
    return final === 1;
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
      .del(this.keys.body(id))
      .zrem(this.keys.liveMessages(), id)
      .expire(this.keys.message(id), ttl)
      .expire(this.keys.recipients(id), ttl)
      .expire(this.keys.events(id), ttl)
      .exec();
  }

  /** Removes every key of a message and its waiting delivery jobs (used to take back a message whose acceptance failed). */
  async remove(id: string): Promise<void> {
    const record = await this.getRecord(id);
    const tx = this.redis.multi();
    for (const r of record?.recipients ?? []) tx.zrem(this.keys.recipientMessages(r), id);
    // Its waiting delivery jobs too (a job already taken finds no message and does nothing).
    const q = this.keys.deliveryQueue();
    for (const domain of new Set((record?.recipients ?? []).map(domainOf))) tx.hdel(q.jobs, deliveryJobId(id, domain)).zrem(q.ready, deliveryJobId(id, domain));
    await tx.del(this.keys.message(id), this.keys.body(id), this.keys.recipients(id), this.keys.events(id)).zrem(this.keys.liveMessages(), id).exec();
  }
}
