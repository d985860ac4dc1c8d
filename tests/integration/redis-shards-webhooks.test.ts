/**
 * Webhooks with `redis.shards`: a message stored on a shard has its webhook events queued on the main Redis, and
 * the worker role runs an outbox relay for every Redis holding messages (src/roles/worker.ts). An entry left on a
 * shard's outbox, as a process killed between the record script and the queueing leaves it, is sent by the
 * worker process, not by the intake process that wrote the message.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKeys } from '../../src/store/keys.js';
import { outboxMember } from '../../src/store/webhook-outbox.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_KEY, API_KEY, dropPrefix, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const prefix = `kurir-test-shard-hooks-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const SENDERS = ['example.test', 'shard-a.test'];

let dns: DnsServer;
let receiver: Receiver;
let hooks: WebhookReceiver;
let shard: PrivateRedis;
let shardRedis: Redis;
let intake: TestGateway;
let worker: TestGateway;
let keyDir: string;

beforeAll(async () => {
  receiver = await startReceiver({ hostname: 'mx.dest.test' });
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
  hooks = await startWebhookReceiver();
  shard = await startPrivateRedis();
  shardRedis = new Redis(shard.url);
  keyDir = mkdtempSync(join(tmpdir(), 'kurir-shard-hooks-keys-'));
  const overrides = (roles: string[]) => ({
    roles,
    redis: { shards: [{ name: 'shard-a', url: shard.url, senderDomains: ['shard-a.test'] }] },
    delivery: { mxPort: receiver.port },
    domains: SENDERS.map((name) => ({ name, dkim: [{ selector: 'k1', algorithm: 'rsa', privateKeyFile: join(keyDir, `${name}.pem`), generate: true }] })),
    apiKeys: [
      { name: 'booking', key: API_KEY, domains: SENDERS, webhook: { url: hooks.url, secret: 'whsec-test-0123456789abcdef', events: ['delivered'] } },
      { name: 'admin', key: ADMIN_KEY, domains: ['*'], admin: true },
    ],
    webhooks: { outboxGraceSeconds: 0.5 },
  });
  intake = await startTestGateway({ prefix, dns, overrides: overrides(['intake', 'api']) });
  worker = await startTestGateway({ prefix, dns, overrides: overrides(['worker']) });
});

afterAll(async () => {
  await worker?.close();
  await intake?.close();
  await dropPrefix(prefix);
  shardRedis?.disconnect();
  await shard?.destroy();
  await hooks?.close();
  await receiver?.close();
  await dns?.close();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

it("sends a shard message's event once, leaves the shard's outbox empty, and relays an entry a killed process left there", async () => {
  const res = await intake.submit({
    from: 'noreply@shard-a.test',
    to: ['one@dest.test'],
    subject: 'Your code',
    text: 'Code: 123456',
    priority: 'verification',
  });
  expect(res.status).toBe(202);
  const id = res.body.id as string;
  const [sent] = await hooks.waitFor((b) => b?.messageId === id && b.type === 'delivered');
  expect(await shardRedis.exists(keys.message(id))).toBe(1);
  await until(async () => (await shardRedis.zcard(keys.webhookOutbox())) === 0, 5000, "the shard's outbox to be acknowledged");

  // The delivered event is the timeline's last; an entry for it, as a process that died after the record script
  // leaves it (due at once), is handed on by the worker process's relay for the shard.
  const index = (await shardRedis.llen(keys.events(id))) - 1;
  await shardRedis.zadd(keys.webhookOutbox(), 0, outboxMember(id, index, 1));
  const [again] = await hooks.waitFor((b) => b?.messageId === id && b.type === 'delivered', 2, 10_000).then((r) => r.slice(1));
  expect(again.body.id).toBe(sent.body.id);
  await until(async () => (await shardRedis.zcard(keys.webhookOutbox())) === 0, 5000, "the relayed entry to leave the shard's outbox");
  expect(await worker.gateway.metrics.render()).toMatch(/^kurir_webhook_outbox_total\{result="relayed"\} 1$/m);
}, 30_000);
