/**
 * The message store's state changes against real Redis: the delivery read is one round trip, and the
 * record script writes states and events, finalizes exactly when every recipient is final (body gone, live
 * index left, retention TTL), tells the event sink the events' indexes, and costs the commands counted here.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKeys, type Keys } from '../../src/store/keys.js';
import { type AppendedEvent, type EventSink, MessageStore } from '../../src/store/message-store.js';
import type { MessageRecord, TimelineEvent } from '../../src/store/types.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';

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

function record(id: string, recipients: string[]): MessageRecord {
  const now = Date.now();
  return {
    id,
    owner: 'booking',
    interface: 'http',
    mailFrom: 'a@example.test',
    fromDomain: 'example.test',
    recipients,
    priority: 'normal',
    createdAt: now,
    expiresAt: now + 3_600_000,
    size: 10,
    messageId: `<${id}@example.test>`,
    dkim: [],
  };
}

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

it('reads record, every recipient state and the body in one call', async () => {
  const { store, rec } = await stored(['a@one.test', 'b@two.test']);
  const got = await store.getForDelivery(rec.id);
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
  expect(await redis.exists(keys.body(rec.id))).toBe(1);
  expect(await redis.ttl(keys.message(rec.id))).toBe(-1);

  expect(
    await store.update(
      rec.id,
      [delivered('b@two.test')],
      [attempt(['b@two.test']), { type: 'delivered', at: 1, recipients: ['b@two.test'], host: 'mx', reply: '250' }],
    ),
  ).toBe(true);
  expect(await redis.exists(keys.body(rec.id))).toBe(0);
  expect(await redis.zscore(keys.liveMessages(), rec.id)).toBeNull();
  for (const k of [keys.message(rec.id), keys.recipients(rec.id), keys.events(rec.id)]) {
    const ttl = await redis.ttl(k);
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);
  }
  const view = await store.get(rec.id);
  expect(view?.status).toBe('delivered');
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

it('records a final delivery with 9 Redis commands in one round trip (a script counted with what it runs), where two MULTI transactions took 14', async () => {
  const { store, rec } = await stored(['a@one.test']);
  const before = await calls();
  await store.update(
    rec.id,
    [delivered('a@one.test')],
    [attempt(['a@one.test']), { type: 'delivered', at: 2, recipients: ['a@one.test'], host: 'mx', reply: '250' }],
    rec,
  );
  // One INFO call is counted in between. EVALSHA, HSET, RPUSH, HVALS, DEL, ZREM, 3 × EXPIRE: 9, plus INFO.
  expect((await calls()) - before).toBe(10);
});
