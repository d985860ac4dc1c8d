/**
 * redis.durability fsync: the gateway refuses to start unless its Redis fsyncs every write (appendonly yes,
 * appendfsync always), and refuses to accept (503) after a reconnect to a Redis that no longer does.
 */
import { afterAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { startTestGateway } from '../helpers/test-gateway.js';

const servers: PrivateRedis[] = [];
afterAll(async () => {
  for (const s of servers) await s.destroy();
});

const message = { from: 'noreply@example.test', to: ['a@dest.test'], subject: 'code', text: 'Code 1234' };

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('refuses to start with durability fsync on a Redis with appendfsync everysec, naming the fix', async () => {
  const redis = await startPrivateRedis({ appendfsync: 'everysec' });
  servers.push(redis);
  await expect(startTestGateway({ overrides: { roles: ['api'], redis: { url: redis.url, durability: 'fsync' } } })).rejects.toThrow(
    /redis\.durability is fsync but Redis runs with appendfsync everysec; set appendfsync always .*CONFIG SET appendfsync always/,
  );
});

it('accepts with appendfsync always, refuses (503) after reconnecting to a Redis that dropped it, and accepts again once restored', async () => {
  const redis = await startPrivateRedis({ appendfsync: 'always' });
  servers.push(redis);
  const t = await startTestGateway({ overrides: { roles: ['api'], redis: { url: redis.url, durability: 'fsync' }, limits: { enabled: false } } });
  const admin = new Redis(redis.url);
  const fsyncOk = async (): Promise<number> => (await t.gateway.metrics.redisFsyncOk.get()).values[0]?.value ?? -1;
  try {
    expect((await t.submit(message)).status).toBe(202);
    expect(await fsyncOk()).toBe(1);
    expect(await (await fetch(`${t.url}/metrics`)).text()).toMatch(/^kurir_redis_fsync_ok 1$/m);

    await admin.config('SET', 'appendfsync', 'everysec');
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    // Once reconnected and re-checked, the refusal names the cause (before that, the reconnect itself is a 503).
    let refused: { status: number; body: any } = { status: 0, body: null };
    await until(async () => {
      refused = await t.submit(message);
      expect(refused.status).toBe(503);
      return /appendfsync everysec/.test(refused.body.error.message);
    });
    expect(await fsyncOk()).toBe(0);

    await admin.config('SET', 'appendfsync', 'always');
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await until(async () => (await fsyncOk()) === 1);
    await until(async () => (await t.submit(message)).status === 202);
  } finally {
    await admin.quit();
    await t.close();
  }
});
