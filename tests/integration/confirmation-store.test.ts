/**
 * What one confirmation asks of Redis, on a redis-server of its own so the counts are exact: a first one is
 * two round trips (a pipeline of three reads, one script of two writes), a repeat one round trip of reads;
 * the script writes the confirmed key and the timeline event together, and only once; the incident window
 * counts first confirmations through the gateway's IncidentBuffer (one pipeline a second), as in production.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import type { Credential } from '../../src/intake/credentials.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createProviderMap } from '../../src/metrics/provider.js';
import { Confirmations } from '../../src/placement/confirmations.js';
import { ConfirmationStore } from '../../src/store/confirmation-store.js';
import { IncidentBuffer } from '../../src/store/incident-buffer.js';
import { IncidentStore } from '../../src/store/incident-store.js';
import { createKeys } from '../../src/store/keys.js';
import { MessageStore } from '../../src/store/message-store.js';
import type { MessageRecord, TimelineEvent } from '../../src/store/types.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';

let priv: PrivateRedis;
let redis: Redis;
let writes = 0;
const keys = createKeys('kurir-test-confirm');
const config = configSchema.parse({ placement: { confirm: { marginSeconds: 60 } } });
let now = Date.UTC(2026, 10, 29, 10, 0, 0);
const clock = { now: () => now };
let messages: MessageStore;
let confirmations: Confirmations;
let buffer: IncidentBuffer;
const booking: Credential = { kind: 'api-key', name: 'booking', domains: null, admin: false };
let n = 0;

beforeAll(async () => {
  priv = await startPrivateRedis();
  redis = new Redis(priv.url);
  await redis.ping();
  // Every request the client sends is one write to its socket (ioredis writes a pipeline in one go).
  const write = redis.stream.write.bind(redis.stream) as (...a: unknown[]) => boolean;
  redis.stream.write = ((...a: unknown[]) => {
    writes++;
    return write(...a);
  }) as typeof redis.stream.write;
  messages = new MessageStore(redis, keys, 3600);
  const providers = createProviderMap([{ provider: 'gmail', domains: ['gmail.test'] }]);
  // Not started: the test flushes it when it reads the window, so nothing is written behind its counts.
  buffer = new IncidentBuffer({ store: new IncidentStore(redis, keys), keys, logger: pino({ level: 'silent' }) });
  const store = new ConfirmationStore(redis, keys, undefined, buffer);
  confirmations = new Confirmations({ config, store, metrics: createMetrics(), providers, clock, secret: 's' });
});

afterAll(async () => {
  redis.disconnect();
  await priv.destroy();
});

/** A verification message to `to`, delivered 30 s ago (unless `delivered` is false). */
async function message(to: string, opts: { owner?: string; delivered?: boolean } = {}): Promise<MessageRecord> {
  const record: MessageRecord = {
    id: `cnfrm${String(++n).padStart(17, '0')}`,
    owner: opts.owner ?? 'booking',
    interface: 'http',
    mailFrom: 'noreply@example.test',
    fromDomain: 'example.test',
    recipients: [to],
    priority: 'verification',
    createdAt: now - 60_000,
    expiresAt: now + 3_600_000,
    size: 10,
    messageId: `<${n}@example.test>`,
    dkim: [],
  };
  await messages.create(record, Buffer.from('Subject: x\r\n\r\nbody\r\n'));
  if (opts.delivered !== false) {
    const deferred: TimelineEvent = {
      type: 'deferred',
      at: now - 50_000,
      recipients: [to],
      reply: '451 later',
      category: 'other',
      nextAttemptAt: now - 40_000,
    };
    const delivered: TimelineEvent = { type: 'delivered', at: now - 30_000, recipients: [to], host: 'mx.gmail.test', reply: '250 ok' };
    await messages.update(record.id, [{ address: to, state: { status: 'delivered', attempts: 2, updatedAt: now - 30_000 } }], [deferred, delivered]);
  }
  return record;
}

async function commands(): Promise<number> {
  const info = await redis.info('commandstats');
  return [...info.matchAll(/calls=(\d+)/g)].reduce((s, m) => s + Number(m[1]), 0);
}

/** Runs `fn` and counts the Redis commands (Lua-internal included, the INFO itself excluded) and round trips it took. */
async function cost<T>(fn: () => Promise<T>): Promise<{ result: T; commands: number; roundTrips: number }> {
  const c0 = await commands();
  const w0 = writes;
  const result = await fn();
  const roundTrips = writes - w0;
  return { result, commands: (await commands()) - c0 - 1, roundTrips };
}

describe('confirmation store', () => {
  it('records a first confirmation in two round trips and 7 commands, a repeat in one round trip of 4', async () => {
    await confirmations.confirm((await message('warm@gmail.test')).id, booking, 'id'); // loads the script (EVAL once)
    const rec = await message('applicant@gmail.test');
    const first = await cost(() => confirmations.confirm(rec.id, booking, 'id'));
    expect(first.result).toEqual({ id: rec.id, confirmedAt: now, duplicate: false, counted: true });
    // EVALSHA with HGET, GET, LRANGE; EVALSHA with SET and RPUSHX (the incident count waits in the buffer).
    expect(first).toMatchObject({ roundTrips: 2, commands: 7 });
    const again = await cost(() => confirmations.confirm(rec.id, booking, 'token'));
    expect(again.result).toEqual({ id: rec.id, confirmedAt: now, duplicate: true, counted: true });
    expect(again).toMatchObject({ roundTrips: 1, commands: 4 });
  });

  it('writes the event once, the confirmed key for the message lifetime plus retention, and the incident counts of the provider', async () => {
    const rec = await message('second@gmail.test');
    await Promise.all([confirmations.confirm(rec.id, booking, 'id'), confirmations.confirm(rec.id, booking, 'token')]);
    const view = await messages.get(rec.id);
    const confirmed = view?.events.filter((e) => e.type === 'confirmed');
    expect(confirmed).toEqual([{ type: 'confirmed', at: now, recipients: ['second@gmail.test'], provider: 'gmail', via: 'id', secondsAfterDelivery: 30 }]);
    const ttl = await redis.ttl(keys.confirmation(rec.id));
    expect(ttl).toBeGreaterThan(3600 + config.retention.days * 86400 - 5);
    expect(ttl).toBeLessThanOrEqual(3600 + config.retention.days * 86400);
    // The timeline kept the retention TTL the delivery gave it (RPUSHX leaves it alone).
    expect(await redis.ttl(keys.events(rec.id))).toBeGreaterThan(3500);
    await buffer.flush();
    const window = await new IncidentStore(redis, keys).window(['gmail'], now, 1);
    expect(window.get('gmail')?.[0]?.confirmations).toBe(3); // the warm-up, the first test's and this one
    expect((await new IncidentStore(redis, keys).baseline('gmail', now + 86_400_000, 1)).confirmed).toBeGreaterThanOrEqual(3);
  });

  it("confirms an undelivered message under its first recipient's provider, with no time after delivery, not counted", async () => {
    const rec = await message('early@other.test', { delivered: false });
    await confirmations.confirm(rec.id, booking, 'id');
    const events = (await messages.get(rec.id))?.events ?? [];
    // Not delivered: outside the confirmation rate's denominator, so recorded but not counted (until 1 Dec 2026 it was).
    expect(events.at(-1)).toEqual({ type: 'confirmed', at: now, recipients: ['early@other.test'], provider: 'other', via: 'id', counted: false });
  });

  it("answers 404 for an unknown id and another key's message, 410 after the TTL plus margin, and writes nothing then", async () => {
    await expect(confirmations.confirm(`cnfrm${'9'.repeat(17)}`, booking, 'id')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const foreign = await message('foreign@gmail.test', { owner: 'someone-else' });
    await expect(confirmations.confirm(foreign.id, booking, 'id')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const late = await message('late@gmail.test');
    const saved = now;
    now = late.expiresAt + 60_000 + 1;
    try {
      await expect(confirmations.confirm(late.id, booking, 'token')).rejects.toMatchObject({ code: 'CONFIRM_TOO_LATE' });
    } finally {
      now = saved;
    }
    expect(await redis.exists(keys.confirmation(foreign.id), keys.confirmation(late.id))).toBe(0);
    // A message confirmed in time answers its confirmation even after the margin (idempotent, not 410).
    const early = await message('in-time@gmail.test');
    await confirmations.confirm(early.id, booking, 'id');
    now = early.expiresAt + 120_000;
    try {
      expect(await confirmations.confirm(early.id, booking, 'id')).toEqual({ id: early.id, confirmedAt: saved, duplicate: true, counted: true });
    } finally {
      now = saved;
    }
  });

  it('splits a batch larger than one script call into several calls, still in two round trips and in order', async () => {
    // 250 items: three calls of each script (100, 100, 50), pipelined; the same message named twice across two
    // calls is still a repeat.
    const fresh = await Promise.all(Array.from({ length: 249 }, (_, i) => message(`chunk${i}@gmail.test`)));
    const items = [...fresh.map((r) => ({ id: r.id, via: 'id' as const })), { id: fresh[3].id, via: 'token' as const }];
    const w0 = writes;
    const answers = await confirmations.confirmAll(items, booking);
    expect(writes - w0).toBe(2);
    expect(answers.slice(0, 249)).toEqual(fresh.map((r) => ({ id: r.id, confirmedAt: now, duplicate: false, counted: true })));
    expect(answers[249]).toEqual({ id: fresh[3].id, confirmedAt: now, duplicate: true, counted: true });
    for (const r of [fresh[0], fresh[3], fresh[150], fresh[248]]) {
      const view = await messages.get(r.id);
      expect(view?.events.filter((e) => e.type === 'confirmed')).toEqual([
        { type: 'confirmed', at: now, recipients: [r.recipients[0]], provider: 'gmail', via: 'id', secondsAfterDelivery: 30 },
      ]);
    }
  });

  it('confirms a batch in two round trips whatever its size, each item answered on its own and in order', async () => {
    const fresh = await Promise.all(Array.from({ length: 40 }, (_, i) => message(`batch${i}@gmail.test`)));
    const repeat = await message('batch-repeat@gmail.test');
    await confirmations.confirm(repeat.id, booking, 'id');
    const foreign = await message('batch-foreign@gmail.test', { owner: 'someone-else' });
    const items = [
      ...fresh.map((r) => ({ id: r.id, via: 'id' as const })),
      { id: repeat.id, via: 'token' as const },
      { id: foreign.id, via: 'id' as const },
      { id: 'not an id', via: 'id' as const },
      { id: fresh[0].id, via: 'token' as const }, // the same message twice in one batch: the second is a repeat
    ];
    const counted = async (): Promise<number> => {
      await buffer.flush();
      return (await new IncidentStore(redis, keys).window(['gmail'], now, 1)).get('gmail')?.[0]?.confirmations ?? 0;
    };
    const before = await counted();
    const c0 = await commands();
    const w0 = writes;
    const answers = await confirmations.confirmAll(items, booking);
    expect(writes - w0).toBe(2);
    // One EVALSHA with 3 reads for each of the 43 well-formed items; one EVALSHA with 2 writes for each of the 40
    // first confirmations, and SET NX and GET for the message named twice (unconfirmed when read, so it is tried).
    expect((await commands()) - c0 - 1).toBe(1 + 43 * 3 + 1 + 40 * 2 + 2);
    expect(answers.slice(0, 40)).toEqual(fresh.map((r) => ({ id: r.id, confirmedAt: now, duplicate: false, counted: true })));
    expect(answers[40]).toEqual({ id: repeat.id, confirmedAt: now, duplicate: true, counted: true });
    expect(answers[41]).toMatchObject({ code: 'NOT_FOUND', httpStatus: 404 });
    expect(answers[42]).toMatchObject({ code: 'NOT_FOUND', httpStatus: 404 });
    expect(answers[43]).toEqual({ id: fresh[0].id, confirmedAt: now, duplicate: true, counted: true });
    // Exactly one confirmed event per message, even the one named twice.
    const events = (await messages.get(fresh[0].id))?.events.filter((e) => e.type === 'confirmed');
    expect(events).toHaveLength(1);
    expect(await redis.exists(keys.confirmation(foreign.id))).toBe(0);
    // The incident window counts the 40 first confirmations, not the repeats.
    expect((await counted()) - before).toBe(40);
  });

  it('keeps and counts the calls that ran when one call of a batch fails, refuses the batch, and its retry counts only the rest', async () => {
    // 250 items: three record calls (100, 100, 50). The second fails at its first item, whose confirmed key
    // turned into a list between the read and the write (SET NX leaves it, GET answers WRONGTYPE), as a call
    // lost to a failing Redis would; the first and third calls ran.
    const fresh = await Promise.all(Array.from({ length: 250 }, (_, i) => message(`part${i}@gmail.test`)));
    const items = fresh.map((r) => ({ id: r.id, via: 'id' as const }));
    const metrics = createMetrics();
    const store = new ConfirmationStore(redis, keys, undefined, buffer);
    const broken = keys.confirmation(fresh[100].id);
    const recordAll = store.recordAll.bind(store);
    store.recordAll = async (batch, onFirst) => {
      await redis.rpush(broken, 'not a confirmation');
      return recordAll(batch, onFirst);
    };
    const partly = new Confirmations({
      config,
      store,
      metrics,
      providers: createProviderMap([{ provider: 'gmail', domains: ['gmail.test'] }]),
      clock,
      secret: 's',
    });
    const counted = async (): Promise<number> => {
      await buffer.flush();
      return (await new IncidentStore(redis, keys).window(['gmail'], now, 1)).get('gmail')?.[0]?.confirmations ?? 0;
    };
    const metric = async (): Promise<number> => (await metrics.confirmations.get()).values.reduce((sum, v) => sum + v.value, 0);
    const before = await counted();
    await expect(partly.confirmAll(items, booking)).rejects.toMatchObject({ httpStatus: 500 });
    const confirmedEvents = async (i: number): Promise<number> =>
      ((await messages.get(fresh[i].id))?.events ?? []).filter((e) => e.type === 'confirmed').length;
    expect([await confirmedEvents(0), await confirmedEvents(99), await confirmedEvents(150), await confirmedEvents(200), await confirmedEvents(249)]).toEqual([
      1, 1, 0, 1, 1,
    ]);
    expect((await counted()) - before).toBe(150);
    expect(await metric()).toBe(150);

    // Redis is well again; the booking system sends the same batch.
    store.recordAll = recordAll;
    await redis.del(broken);
    const answers = await partly.confirmAll(items, booking);
    expect(answers.filter((a) => 'duplicate' in a && a.duplicate)).toHaveLength(150);
    expect(answers.slice(100, 200)).toEqual(fresh.slice(100, 200).map((r) => ({ id: r.id, confirmedAt: now, duplicate: false, counted: true })));
    expect((await counted()) - before).toBe(250);
    expect(await metric()).toBe(250);
  });
});
