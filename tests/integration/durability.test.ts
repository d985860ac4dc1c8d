/**
 * redis.durability fsync: the gateway refuses to start unless its Redis fsyncs every write (appendonly yes,
 * appendfsync always), and refuses to accept (503) after a reconnect to a Redis that no longer does, or once a
 * CONFIG SET at run time has dropped it (re-checked every 2 s; /readyz then says fsync false).
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

it('follows a CONFIG SET without a reconnect, both ways, and is not ready (/readyz 503, fsync false) while it refuses', async () => {
  const redis = await startPrivateRedis({ appendfsync: 'always' });
  servers.push(redis);
  const t = await startTestGateway({ overrides: { roles: ['api'], redis: { url: redis.url, durability: 'fsync' }, limits: { enabled: false } } });
  const admin = new Redis(redis.url);
  const ready = async (): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${t.url}/readyz`);
    return { status: res.status, body: await res.json() };
  };
  try {
    expect(await ready()).toEqual({ status: 200, body: { status: 'ready', redis: true, worker: null, fsync: true } });
    // Weakened at run time, no reconnect: the periodic re-check starts refusing.
    await admin.config('SET', 'appendfsync', 'everysec');
    await until(async () => (await t.submit(message)).status === 503);
    expect(await ready()).toEqual({ status: 503, body: { status: 'unavailable', redis: true, worker: null, fsync: false } });
    // The fix the refusal names, again without a reconnect, ends it.
    await admin.config('SET', 'appendfsync', 'always');
    await until(async () => (await t.submit(message)).status === 202);
    expect((await ready()).status).toBe(200);
  } finally {
    await admin.quit();
    await t.close();
  }
});
