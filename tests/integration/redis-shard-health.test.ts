/**
 * A Redis shard outage is visible (`redis.shards`, docs/scale-out.md#what-a-shard-outage-does): one gateway (API
 * role) whose main Redis is the shared one under a test prefix and whose shard is a private redis-server. The
 * shard is shut down: kurir_redis_up{redis="shard-a"} turns 0, /readyz stays 200 but lists the shard under
 * `degraded`, one warn line names the shard and its URL however often the reconnect fails, and GET /v1/queue
 * still answers 200 with the shard marked (as does `kurir queue stats`); a search by recipient answers with the main
 * Redis's messages and names the missing shard; a Message-ID look-up (feedback reports) finds the main Redis's
 * messages. Started again, all of it returns to normal and an info line says so.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { newMessageId } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/logger.js';
import type { MessageRecord } from '../../src/store/types.js';
import { ConsoleClient } from '../helpers/console-client.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { ADMIN_KEY, API_KEY, adminRequest, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});
let shard: PrivateRedis;
let t: TestGateway;
let closed = false;

beforeAll(async () => {
  shard = await startPrivateRedis();
  t = await startTestGateway({
    logger: createLogger({ level: 'debug', destination: sink }),
    overrides: {
      roles: ['api'],
      smtp: { enabled: false },
      redis: { shards: [{ name: 'shard-a', url: shard.url, senderDomains: ['shard-a.test'] }] },
      apiKeys: [
        { name: 'booking', key: API_KEY, domains: ['example.test'] },
        { name: 'admin', key: ADMIN_KEY, domains: ['*'], admin: true },
      ],
    },
  });
});
afterAll(async () => {
  if (!closed) await t?.close();
  await shard?.destroy();
});

/** The value of kurir_redis_up for one Redis on /metrics. */
async function redisUp(redis: string): Promise<number | null> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const m = new RegExp(`^kurir_redis_up\\{redis="${redis}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/** Polls until `check` holds (the connection events arrive asynchronously); fails with what was last seen. */
async function until<T>(what: string, read: () => Promise<T> | T, check: (v: T) => boolean): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < 100; i++) {
    last = await read();
    if (check(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: still ${JSON.stringify(last)}`);
}

const readyz = async (): Promise<{ status: number; body: unknown }> => {
  const res = await fetch(`${t.url}/readyz`);
  return { status: res.status, body: await res.json() };
};
const queueStats = (): Promise<string> => runCli(['queue', 'stats'], { cwd: process.cwd(), env: { KURIR_URL: t.url, KURIR_ADMIN_KEY: ADMIN_KEY } });
const shardLines = (level: number, msg: RegExp): Array<Record<string, unknown>> =>
  lines.filter((l) => l.level === level && l.shard === 'shard-a' && msg.test(String(l.msg)));

/** Stores a message (not queued) from `fromDomain` to search@dest.test: on the main Redis or on shard-a. */
async function stored(id: string, fromDomain: string): Promise<void> {
  const now = Date.now();
  const record: MessageRecord = {
    id,
    owner: 'booking',
    interface: 'http',
    mailFrom: `noreply@${fromDomain}`,
    fromDomain,
    recipients: ['search@dest.test'],
    priority: 'verification',
    createdAt: now,
    expiresAt: now + 1_800_000,
    size: 10,
    messageId: `<${id}@${fromDomain}>`,
    dkim: [],
  };
  expect(await t.gateway.messages.create(record, Buffer.from('Subject: x\r\n\r\nbody\r\n'))).toBe(true);
}
const search = async (): Promise<{ status: number; body: any }> => adminRequest(t.url, 'GET', '/v1/messages?to=search@dest.test');

it('shows a shard outage on /metrics, /readyz, GET /v1/queue, searches and in the log, and its end', async () => {
  const onMain = newMessageId();
  const onShard = newMessageId();
  await stored(onMain, 'example.test');
  await stored(onShard, 'shard-a.test');
  const healthy = await search();
  expect(healthy.status).toBe(200);
  expect(healthy.body.items.map((m: any) => m.id).sort()).toEqual([onMain, onShard].sort());
  expect(healthy.body).not.toHaveProperty('unavailableShards');
  expect(await redisUp('main')).toBe(1);
  expect(await redisUp('shard-a')).toBe(1);
  // Healthy: the answer is exactly what it was before shards had a say.
  expect(await readyz()).toEqual({ status: 200, body: { status: 'ready', redis: true, worker: null } });
  const before = await adminRequest(t.url, 'GET', '/v1/queue');
  expect(before.status).toBe(200);
  expect(before.body.shards['shard-a']).toMatchObject({ available: true, states: { waiting: 0, failed: 0 }, readyByPriority: { verification: 0 } });

  await shard.shutdown();
  await until(
    'kurir_redis_up{redis="shard-a"}',
    () => redisUp('shard-a'),
    (v) => v === 0,
  );
  expect(await redisUp('main')).toBe(1);
  expect(await readyz()).toEqual({ status: 200, body: { status: 'ready', redis: true, worker: null, degraded: ['shard shard-a: unreachable'] } });
  const during = await adminRequest(t.url, 'GET', '/v1/queue');
  expect(during.status).toBe(200);
  expect(during.body.states).toMatchObject({ waiting: 0, failed: 0 });
  expect(during.body.shards['shard-a']).toEqual({ available: false, error: expect.stringMatching(/^unreachable \(/) });
  expect(await queueStats()).toMatch(/^SHARD\s+WAITING.*ERROR\nshard-a\s+-\s+-\s+-\s+-\s+unreachable \(/m);
  // A search answers with what the main Redis holds and names the shard whose messages are missing.
  const partial = await search();
  expect(partial.status).toBe(200);
  expect(partial.body.items.map((m: any) => m.id)).toEqual([onMain]);
  expect(partial.body.unavailableShards).toEqual(['shard-a']);
  // A feedback report matched by Message-ID finds a message on a Redis that answers; one that no answering Redis
  // holds may be on the missing shard, so the look-up fails (the report is answered "try again"), never "unknown".
  expect(await t.gateway.messages.findByHeaderMessageId(`<${onMain}@example.test>`)).toBe(onMain);
  await expect(t.gateway.messages.findByHeaderMessageId(`<${onShard}@shard-a.test>`)).rejects.toThrow();
  // The support console says so above the messages it found.
  const support = new ConsoleClient(t.url);
  expect((await support.login(ADMIN_KEY)).status).toBe(303);
  const page = await support.get('/console?q=search%40dest.test');
  expect(page.status).toBe(200);
  expect(page.body).toContain('1 message(s)');
  expect(page.body).toContain('Incomplete: Redis shard(s) shard-a did not answer');
  // Reconnect attempts keep failing (each at debug); the warning is there once for the whole outage.
  await until(
    'failed reconnects',
    () => shardLines(20, /redis shard connection error/).length,
    (n) => n >= 3,
  );
  const warned = shardLines(40, /redis shard unreachable/);
  expect(warned).toHaveLength(1);
  expect(warned[0]).toMatchObject({ redis: `redis://127.0.0.1:${shard.port}` });
  expect(String(warned[0].msg)).toMatch(/refused \(503 \/ 451\)/);

  await shard.start();
  await until(
    'kurir_redis_up{redis="shard-a"}',
    () => redisUp('shard-a'),
    (v) => v === 1,
  );
  expect(await readyz()).toEqual({ status: 200, body: { status: 'ready', redis: true, worker: null } });
  const after = await until(
    'GET /v1/queue',
    () => adminRequest(t.url, 'GET', '/v1/queue'),
    (r) => r.body?.shards?.['shard-a']?.available === true,
  );
  expect(after.body.shards['shard-a'].states).toMatchObject({ waiting: 0, failed: 0 });
  expect(await queueStats()).toMatch(/^shard-a\s+0\s+0\s+0\s+0$/m);
  expect((await search()).body).toMatchObject({ items: [expect.anything(), expect.anything()] });
  expect((await search()).body).not.toHaveProperty('unavailableShards');
  const back = shardLines(30, /redis shard reachable again/);
  expect(back).toHaveLength(1);
  expect(back[0]).toMatchObject({ redis: `redis://127.0.0.1:${shard.port}`, downForMs: expect.any(Number) });
  expect(shardLines(40, /redis shard unreachable/)).toHaveLength(1);
});

it('warns again for the next outage (SIGKILL), and not when the gateway closes its connections on purpose', async () => {
  await shard.kill();
  await until(
    'kurir_redis_up{redis="shard-a"}',
    () => redisUp('shard-a'),
    (v) => v === 0,
  );
  expect(await readyz()).toMatchObject({ status: 200, body: { status: 'ready', degraded: ['shard shard-a: unreachable'] } });
  expect(shardLines(40, /redis shard unreachable/)).toHaveLength(2);
  await shard.start();
  await until(
    'kurir_redis_up{redis="shard-a"}',
    () => redisUp('shard-a'),
    (v) => v === 1,
  );
  expect(shardLines(30, /redis shard reachable again/)).toHaveLength(2);
  closed = true;
  await t.close();
  expect(shardLines(40, /redis shard unreachable/)).toHaveLength(2);
});
