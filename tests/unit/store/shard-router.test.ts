/**
 * ShardRouter against real Redis: three logical Redis databases on the shared server (0, 14, 15) stand in for the
 * main Redis and two shards, under a prefix of this file's own.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../../src/store/redis.js';
import { createKeys } from '../../../src/store/keys.js';
import { MessageStore } from '../../../src/store/message-store.js';
import { type MessageShard, ShardRouter } from '../../../src/store/shard-router.js';
import { freePort } from '../../helpers/ports.js';

const prefix = `kurir-test-router-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const shard = (name: string, db: number): MessageShard => {
  const redis = new Redis(`redis://127.0.0.1:6379/${db}`);
  return { name, redis, messages: new MessageStore(redis, keys, 60) };
};
const main = shard('main', 0);
const a = shard('a', 14);
const b = shard('b', 15);
const router = new ShardRouter(
  main,
  [a, b],
  new Map([
    ['a.test', 'a'],
    ['b.test', 'b'],
  ]),
  keys,
);

afterAll(async () => {
  for (const s of [main, a, b]) {
    const found = await s.redis.keys(`${prefix}:*`);
    if (found.length) await s.redis.del(...found);
    await s.redis.quit();
  }
});

describe('ShardRouter', () => {
  it('routes by sender domain, without regard to case; unlisted domains go to the main Redis', () => {
    expect(router.forSender('A.Test').name).toBe('a');
    expect(router.forSender('b.test').name).toBe('b');
    expect(router.forSender('other.test').name).toBe('main');
  });

  it('finds the shard holding an id, remembers it, and answers the main Redis for an id nobody holds', async () => {
    await b.redis.hset(keys.message('01kbshardtest00000000001'), 'record', '{}');
    expect((await router.locate('01kbshardtest00000000001')).name).toBe('b');
    // Remembered: a message never moves, so the answer stands without asking again.
    await b.redis.del(keys.message('01kbshardtest00000000001'));
    expect((await router.locate('01kbshardtest00000000001')).name).toBe('b');
    expect((await router.locate('01kbshardtest00000000002')).name).toBe('main');
  });

  it('forgets the oldest remembered ids beyond its bound', async () => {
    const small = new ShardRouter(main, [a, b], new Map(), keys);
    small.remember('first', a);
    for (let i = 0; i < 20_000; i++) small.remember(`id-${i}`, a);
    expect((await small.locate('first')).name).toBe('main');
    expect((await small.locate('id-19999')).name).toBe('a');
  });

  it('finds an id on a Redis that answers while another shard is down, and throws rather than answer "nowhere"', async () => {
    // A shard whose Redis is down: a free port nothing listens on, with the gateway's fail-fast command options.
    const down = createRedis(`redis://127.0.0.1:${await freePort()}`, 'command', { retryStrategy: () => null });
    down.on('error', () => undefined);
    const gone: MessageShard = { name: 'gone', redis: down, messages: new MessageStore(down, keys, 60) };
    const partial = new ShardRouter(main, [a, gone], new Map(), keys);
    try {
      await main.redis.hset(keys.message('01kbshardtest00000000003'), 'record', '{}');
      await a.redis.hset(keys.message('01kbshardtest00000000004'), 'record', '{}');
      expect((await partial.locate('01kbshardtest00000000003')).name).toBe('main');
      expect((await partial.locate('01kbshardtest00000000004')).name).toBe('a');
      // Held by no Redis that answers: it may be on the one that is down, so no "not found".
      await expect(partial.locate('01kbshardtest00000000005')).rejects.toThrow();
      // Many at once: the same answers (found ones even with a shard down), the same refusal for the unknown one.
      const fresh = new ShardRouter(main, [a, gone], new Map(), keys);
      expect((await fresh.locateMany(['01kbshardtest00000000003', '01kbshardtest00000000004'])).map((s) => s.name)).toEqual(['main', 'a']);
      await expect(fresh.locateMany(['01kbshardtest00000000004', '01kbshardtest00000000005'])).rejects.toThrow();
    } finally {
      down.disconnect();
    }
  });

  it('locates many ids with one pipeline per shard, in the order asked, remembering what it found', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `01kbshardmany${String(i).padStart(11, '0')}`);
    const holder = (i: number): MessageShard => [main, a, b][i % 3];
    for (const [i, id] of ids.entries()) if (i % 5 !== 4) await holder(i).redis.hset(keys.message(id), 'record', '{}');
    const many = new ShardRouter(main, [a, b], new Map(), keys);
    let writes = 0;
    const count = (r: Redis): (() => void) => {
      const write = r.stream.write.bind(r.stream) as (...x: unknown[]) => boolean;
      r.stream.write = ((...x: unknown[]) => {
        writes++;
        return write(...x);
      }) as typeof r.stream.write;
      return () => {
        r.stream.write = write as typeof r.stream.write;
      };
    };
    const restore = [main, a, b].map((s) => count(s.redis));
    let found: MessageShard[];
    try {
      found = await many.locateMany(ids);
    } finally {
      for (const r of restore) r();
    }
    // One pipeline per shard, whatever the number of ids.
    expect(writes).toBe(3);
    // Held ones on their shard; every fifth is held nowhere: the main Redis (reads then say "not found").
    expect(found.map((s) => s.name)).toEqual(ids.map((_, i) => (i % 5 === 4 ? 'main' : holder(i).name)));
    // Remembered: with the records gone, the held ones are still placed where they were found.
    const held = [...ids.entries()].filter(([i]) => i % 5 !== 4);
    for (const [i, id] of held) await holder(i).redis.del(keys.message(id));
    expect((await many.locateMany(held.map(([, id]) => id))).map((s) => s.name)).toEqual(held.map(([i]) => holder(i).name));
  });
});
