/**
 * `npx tsx bench/layout-migration.ts [n]`: how long a gateway's start takes to move `n` messages (default
 * 100,000) stored in the layout before 2026-11-29 (record hash, recipient-state hash, body string) into the
 * one-hash layout (MessageStore.migrateLayoutOnce), on a redis-server of its own. docs/operations.md quotes it.
 */
import { Redis } from 'ioredis';
import { createKeys } from '../src/store/keys.js';
import { MessageStore } from '../src/store/message-store.js';
import { startPrivateRedis } from '../tests/helpers/private-redis.js';

const n = Number(process.argv[2] ?? 100_000);
const priv = await startPrivateRedis();
const redis = new Redis(priv.url);
const keys = createKeys('kb');
const body = `Subject: verification\r\n\r\n${'x'.repeat(4000)}\r\n`;
const t0 = performance.now();
for (let i = 0; i < n; i += 1000) {
  const p = redis.pipeline();
  for (let j = i; j < Math.min(n, i + 1000); j++) {
    const id = `legacy${j}`;
    p.hset(keys.message(id), 'record', JSON.stringify({ id, recipients: [`r${j}@example.test`], createdAt: Date.now() }));
    p.hset(keys.legacyRecipients(id), `r${j}@example.test`, JSON.stringify({ status: 'queued', attempts: 0, updatedAt: Date.now() }));
    p.set(keys.legacyBody(id), body);
  }
  await p.exec();
}
console.log(`wrote ${n} legacy messages in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const store = new MessageStore(redis, keys, 604800);
const t1 = performance.now();
const moved = await store.migrateLayoutOnce();
const seconds = (performance.now() - t1) / 1000;
const left = (await redis.scan('0', 'MATCH', keys.legacyRecipientsPattern(), 'COUNT', 1000))[1].length;
console.log(`moved ${moved} messages in ${seconds.toFixed(1)} s (${Math.round(moved / seconds)} per second); legacy keys left in the first SCAN page: ${left}`);
redis.disconnect();
await priv.destroy();
