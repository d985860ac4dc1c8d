/**
 * The message store's state changes against real Redis: the delivery read is one round trip, and the
 * record script writes states and events, finalizes exactly when every recipient is final (body gone, live
 * index left, retention TTL), tells the event sink the events' indexes, and costs the commands counted here.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKeys, type Keys } from '../../src/store/keys.js';
import { MessageStore } from '../../src/store/message-store.js';
import { type AppendedEvent, type EventSink, INDEX_TRIM_EVERY, MAX_MESSAGES_PER_RECIPIENT } from '../../src/store/message-store-types.js';
import type { MessageRecord, TimelineEvent } from '../../src/store/types.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { messageRecord } from '../helpers/message-record.js';

let priv: PrivateRedis;
let redis: Redis;
let keys: Keys;
let n = 0;
const seen: Array<{ id: string; owner: string; events: AppendedEvent[] }> = [];
const sink: EventSink = {
  async onEvents(record, events) {
    seen.push({ id: record.id, owner: record.owner, events });
  },
};

beforeAll(async () => {
  // A redis-server of its own: the command counts below must not include other test files' commands.
  priv = await startPrivateRedis();
  redis = new Redis(priv.url);
  keys = createKeys('kurir-test-msgstore');
});

afterAll(async () => {
  redis.disconnect();
  await priv.destroy();
});

const record = (id: string, recipients: string[]): MessageRecord => {
  const now = Date.now();
  return messageRecord(id, recipients, { priority: 'normal', createdAt: now, expiresAt: now + 3_600_000 });
};

async function stored(recipients: string[]): Promise<{ store: MessageStore; rec: MessageRecord }> {
  const store = new MessageStore(redis, keys, 600, sink);
  const rec = record(`m${++n}`, recipients);
  expect(await store.create(rec, Buffer.from('Subject: x\r\n\r\nbody\r\n'))).toBe(true);
  return { store, rec };
}

const delivered = (address: string) => ({ address, state: { status: 'delivered' as const, attempts: 1, updatedAt: Date.now(), reply: '250 ok' } });
const attempt = (recipients: string[]): TimelineEvent => ({ type: 'attempt', at: Date.now(), recipients, host: 'mx', reply: '250 ok', tls: true });

async function calls(): Promise<number> {
  const info = await redis.info('commandstats');
  return [...info.matchAll(/calls=(\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
}

it('reads record, every recipient state and the body with one command', async () => {
  const { store, rec } = await stored(['a@one.test', 'b@two.test']);
  const before = await calls();
  const got = await store.getForDelivery(rec.id);
  // HGETALL, plus the INFO call counted in between.
  expect((await calls()) - before).toBe(2);
  expect(got?.record).toEqual(rec);
  expect(Object.keys(got?.recipients ?? {}).sort()).toEqual(['a@one.test', 'b@two.test']);
  expect(got?.recipients['a@one.test']?.status).toBe('queued');
  expect(got?.body?.toString()).toContain('body');
  expect(await store.getForDelivery('no-such-id')).toBeNull();
});

it('finalizes only once the last recipient of every domain is final, in the same script', async () => {
  const { store, rec } = await stored(['a@one.test', 'b@two.test']);
  expect(await redis.zscore(keys.liveMessages(), rec.id)).not.toBeNull();

  expect(await store.update(rec.id, [delivered('a@one.test')], [attempt(['a@one.test'])], rec)).toBe(false);
  expect(await redis.hexists(keys.message(rec.id), 'body')).toBe(1);
  expect(await redis.ttl(keys.message(rec.id))).toBe(-1);

  expect(
    await store.update(
      rec.id,
      [delivered('b@two.test')],
      [attempt(['b@two.test']), { type: 'delivered', at: 1, recipients: ['b@two.test'], host: 'mx', reply: '250' }],
    ),
  ).toBe(true);
  expect(await redis.hexists(keys.message(rec.id), 'body')).toBe(0);
  expect(await redis.zscore(keys.liveMessages(), rec.id)).toBeNull();
  for (const k of [keys.message(rec.id), keys.events(rec.id)]) {
    const ttl = await redis.ttl(k);
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
  }
  const view = await store.get(rec.id);
  expect(view?.status).toBe('delivered');
  expect(Object.keys(view?.recipients ?? {}).sort()).toEqual(['a@one.test', 'b@two.test']);
  expect(view?.events.map((e) => e.type)).toEqual(['queued', 'attempt', 'attempt', 'delivered']);
});

it("tells the sink each event's index, with the record read by the script when the caller has none", async () => {
  const { store, rec } = await stored(['a@one.test']);
  seen.length = 0;
  await store.update(rec.id, [], [{ type: 'complained', at: 1, recipients: ['a@one.test'], feedbackType: 'abuse' }]);
  await store.update(
    rec.id,
    [delivered('a@one.test')],
    [attempt(['a@one.test']), { type: 'delivered', at: 2, recipients: ['a@one.test'], host: 'mx', reply: '250' }],
    rec,
  );
  expect(seen.map((s) => s.owner)).toEqual(['booking', 'booking']);
  expect(seen[0].events.map((e) => [e.index, e.event.type])).toEqual([[1, 'complained']]);
  expect(seen[1].events.map((e) => [e.index, e.event.type])).toEqual([
    [2, 'attempt'],
    [3, 'delivered'],
  ]);
  for (const s of seen) for (const e of s.events) expect(await store.getEvent(rec.id, e.index)).toEqual(e.event);
});

it('records a final delivery with 8 Redis commands in one round trip (a script counted with what it runs), where two MULTI transactions took 14', async () => {
  const { store, rec } = await stored(['a@one.test']);
  const before = await calls();
  await store.update(
    rec.id,
    [delivered('a@one.test')],
    [attempt(['a@one.test']), { type: 'delivered', at: 2, recipients: ['a@one.test'], host: 'mx', reply: '250' }],
    rec,
  );
  // One INFO call is counted in between. EVALSHA, HSET, RPUSH, HMGET, HDEL, ZREM, 2 × EXPIRE: 8, plus INFO.
  expect((await calls()) - before).toBe(9);
});

it('changes nothing for a message that is gone, with or without the record (a late report, a run after intake took it back)', async () => {
  const store = new MessageStore(redis, keys, 600, sink);
  seen.length = 0;
  expect(await store.update('gone1', [delivered('a@one.test')], [attempt(['a@one.test'])])).toBe(false);
  expect(await redis.exists(keys.message('gone1'), keys.events('gone1'))).toBe(0);
  expect(seen).toEqual([]);
  // A worker read the message, then intake took it back (remove) before the outcome was written.
  const { rec } = await stored(['late@one.test']);
  await store.remove(rec.id);
  expect(await store.update(rec.id, [delivered('late@one.test')], [attempt(['late@one.test'])], rec)).toBe(false);
  expect(await redis.exists(keys.message(rec.id), keys.events(rec.id))).toBe(0);
  // Nothing was written, so nothing is told (no webhook for an outcome that was not recorded).
  expect(seen).toEqual([]);
});

it('never reopens a final recipient: an attempt deferred after a cancel or an overtaking run keeps the final state, and its event', async () => {
  const { store, rec } = await stored(['a@one.test', 'b@two.test']);
  const at = Date.now();
  // Cancelled while an attempt to a@ was still in its SMTP transaction: both expire, the message is final.
  const cancelled = (address: string) => ({ address, state: { status: 'expired' as const, attempts: 0, updatedAt: at, reply: 'cancelled by admin' } });
  expect(await store.update(rec.id, [cancelled('a@one.test'), cancelled('b@two.test')], [], rec)).toBe(true);
  // The attempt then ends with a 4xx: recorded as deferred, it would make the recipient pending again.
  const deferred = {
    address: 'a@one.test',
    state: { status: 'deferred' as const, attempts: 1, updatedAt: at + 1, reply: '451 4.3.0 try later', category: 'other', nextAttemptAt: at + 60_000 },
  };
  const deferredEvent: TimelineEvent = {
    type: 'deferred',
    at: at + 1,
    recipients: ['a@one.test'],
    reply: '451 4.3.0 try later',
    category: 'other',
    nextAttemptAt: at + 60_000,
  };
  expect(await store.update(rec.id, [deferred], [attempt(['a@one.test']), deferredEvent], rec)).toBe(true);
  let view = await store.get(rec.id);
  expect(view?.recipients['a@one.test']).toMatchObject({ status: 'expired', reply: 'cancelled by admin' });
  expect(view?.status).toBe('expired');
  expect(view?.events.slice(-2).map((e) => e.type)).toEqual(['attempt', 'deferred']);
  expect(await redis.zscore(keys.liveMessages(), rec.id)).toBeNull();
  // A final outcome of that attempt is what happened to the recipient, so it is recorded.
  expect(await store.update(rec.id, [delivered('b@two.test')], [attempt(['b@two.test'])], rec)).toBe(true);
  view = await store.get(rec.id);
  expect(view?.recipients['b@two.test'].status).toBe('delivered');
  // Before anything is final, a deferral is recorded as always.
  const other = await stored(['c@one.test']);
  await other.store.update(other.rec.id, [{ ...deferred, address: 'c@one.test' }], [], other.rec);
  expect((await other.store.get(other.rec.id))?.recipients['c@one.test'].status).toBe('deferred');
});

it('stores a message with 9 Redis commands in one round trip when its recipient index is not trimmed', async () => {
  const store = new MessageStore(redis, keys, 600, sink);
  let created = 0;
  // One create in INDEX_TRIM_EVERY also trims the index (2 commands more); take the cheapest of a few.
  let cheapest = Infinity;
  for (let i = 0; i < 6; i++) {
    const before = await calls();
    if (await store.create(record(`c${++n}`, ['cost@one.test']), Buffer.from('Subject: x\r\n\r\nbody\r\n'))) created++;
    cheapest = Math.min(cheapest, (await calls()) - before);
  }
  expect(created).toBe(6);
  // EVALSHA, EXISTS, HSET (record, body, states), RPUSH, SET (Message-ID index), ZADD (live), ZADD + EXPIRE
  // (recipient index): 8, plus INFO.
  expect(cheapest).toBe(9);
});

it(`never shows more than ${MAX_MESSAGES_PER_RECIPIENT} messages per recipient, however rarely the index is trimmed`, async () => {
  const store = new MessageStore(redis, keys, 600, sink);
  const address = 'many@one.test';
  // Each create past the cap trims with probability 1/INDEX_TRIM_EVERY. With 3 × that many past it, none trimmed
  // in (15/16)^48 ≈ 4.5 % of runs and the last check failed (CI, 30 Nov 2026); with 24 ×, (15/16)^384 ≈ 2e-11.
  const total = MAX_MESSAGES_PER_RECIPIENT + 24 * INDEX_TRIM_EVERY;
  for (let i = 0; i < total; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, total - i) }, (_, j) => store.create(record(`i${String(i + j).padStart(4, '0')}`, [address]), Buffer.from('x'))),
    );
  }
  const all = await store.idsByRecipient(address, 0, total);
  expect(all.ids).toHaveLength(MAX_MESSAGES_PER_RECIPIENT);
  expect(all.more).toBe(false);
  // Newest first (ids sort by creation here), and the tail of the cap is reachable by offset.
  expect(all.ids[0]).toBe(`i${String(total - 1).padStart(4, '0')}`);
  const tail = await store.idsByRecipient(address, MAX_MESSAGES_PER_RECIPIENT - 5, 20);
  expect(tail).toEqual({ ids: all.ids.slice(-5), more: false });
  expect(await store.idsByRecipient(address, MAX_MESSAGES_PER_RECIPIENT, 20)).toEqual({ ids: [], more: false });
  expect((await store.idsByRecipient(address, 0, 10)).more).toBe(true);
  // What the index holds past the cap between trims stays bounded.
  expect(await redis.zcard(keys.recipientMessages(address))).toBeLessThan(total);
});

it('moves messages stored in the layout before 2026-11-29 into the message hash, at start and when one is read for delivery', async () => {
  const store = new MessageStore(redis, keys, 600, sink);
  const legacy = async (id: string, ttl?: number) => {
    const rec = record(id, ['old@one.test', 'old@two.test']);
    await redis.hset(keys.message(id), 'record', JSON.stringify(rec));
    await redis.hset(keys.legacyRecipients(id), 'old@one.test', JSON.stringify({ status: 'delivered', attempts: 1, updatedAt: 1 }));
    await redis.hset(keys.legacyRecipients(id), 'old@two.test', JSON.stringify({ status: 'queued', attempts: 0, updatedAt: 1 }));
    await redis.set(keys.legacyBody(id), 'Subject: old\r\n\r\nold body\r\n');
    await redis.rpush(keys.events(id), JSON.stringify({ type: 'queued', at: 1 }));
    if (ttl) await redis.expire(keys.message(id), ttl);
    return rec;
  };
  await redis.del(keys.messageLayoutMigrated());
  await legacy('legacy1');
  await legacy('legacy2', 500);
  expect(await store.migrateLayoutOnce()).toBe(2);
  expect(await redis.exists(keys.legacyRecipients('legacy1'), keys.legacyBody('legacy1'), keys.legacyRecipients('legacy2'))).toBe(0);
  const got = await store.getForDelivery('legacy1');
  expect(got?.recipients).toMatchObject({ 'old@one.test': { status: 'delivered' }, 'old@two.test': { status: 'queued' } });
  expect(got?.body?.toString()).toContain('old body');
  expect(await redis.ttl(keys.message('legacy2'))).toBeGreaterThan(490);
  expect((await store.get('legacy2'))?.status).toBe('queued');
  // Once per Redis: the marker is set, so the next start does not scan.
  await legacy('legacy3');
  expect(await store.migrateLayoutOnce()).toBe(0);
  // A message an older Kurir wrote after that (during an upgrade) is moved when a worker reads it.
  const late = await store.getForDelivery('legacy3');
  expect(late?.recipients['old@two.test']?.status).toBe('queued');
  expect(late?.body?.toString()).toContain('old body');
  expect(await redis.exists(keys.legacyRecipients('legacy3'))).toBe(0);
  // And its outcome finalizes it in the new layout.
  expect(await store.update('legacy3', [delivered('old@two.test')], [attempt(['old@two.test'])])).toBe(true);
  expect(await redis.hexists(keys.message('legacy3'), 'body')).toBe(0);
});
