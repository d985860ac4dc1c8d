/**
 * A webhook job active in a gateway process that is killed (SIGKILL) while it POSTs is sent by another gateway's
 * webhook worker once the dead one's lock has run out: 20–25 s (the 20 s lock and a stalled check every 5 s,
 * src/webhooks/worker.ts; 30 s when a check meets the previous one's marker), and not before 15 s (what a live but
 * stalled worker is granted). With BullMQ's 30 s lock
 * and 30 s stalled check, used until 2 Dec 2026, it took 30–60 s (67 s in the audit that found it). Real processes:
 * the killed gateway is a child running src/main.ts; the other is in this process; shared Redis, own prefix.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebhookQueue, webhookJobId } from '../../src/queue/webhook-queue.js';
import { createKeys } from '../../src/store/keys.js';
import { MessageStore } from '../../src/store/message-store.js';
import { startChildGateway, writeChildConfig } from '../helpers/child-gateway.js';
import { messageRecord } from '../helpers/message-record.js';
import { freePort } from '../helpers/ports.js';
import { API_KEY, dropPrefix, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

const prefix = `kurir-test-hookkill-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const SECRET = 'whsec-kill-0123456789abcdef';

let dir: string;
let redis: Redis;
let hooks: Server;
let hookUrl: string;
/** When each POST arrived, with its event id; the first is never answered (its sender is killed meanwhile). */
const posts: Array<{ at: number; eventId: string }> = [];
let child: ChildProcess | null = null;
let other: TestGateway | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kurir-hookkill-'));
  redis = new Redis('redis://127.0.0.1:6379');
  hooks = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      posts.push({ at: Date.now(), eventId: String(req.headers['kurir-event-id']) });
      if (posts.length > 1) res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hooks`;
});

afterAll(async () => {
  child?.kill('SIGKILL');
  await other?.close();
  hooks.closeAllConnections();
  await new Promise((resolve) => hooks.close(resolve));
  await redis.quit();
  await dropPrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
});

/** The booking system's API key, with its webhook at the test's receiver (both gateways have it). */
const apiKeys = (): unknown[] => [
  { name: 'booking', key: API_KEY, domains: ['example.test'], webhook: { url: hookUrl, secret: SECRET, events: ['delivered'] } },
];

it('sends a webhook whose gateway was killed mid-POST again from another gateway once its lock ran out, within a stalled check of 5 s', async () => {
  const httpPort = await freePort();
  const extra = {
    feedback: { port: 0 },
    domainKeys: { selfCheck: { enabled: false } },
    apiKeys: apiKeys(),
  };
  child = await startChildGateway(writeChildConfig({ dir, prefix, httpPort, extra }), httpPort);
  // A delivered event of a stored message, queued as the event sink queues it.
  const messages = new MessageStore(redis, keys, 600);
  const record = messageRecord('hookkill0001', ['amy@dest.test']);
  await messages.create(record, Buffer.from('x'));
  const at = Date.now();
  // Delivered, so final: no gateway's reconciler queues a delivery of it.
  await messages.update(
    record.id,
    [{ address: 'amy@dest.test', state: { status: 'delivered', attempts: 1, updatedAt: at, reply: '250 ok' } }],
    [{ type: 'delivered', at, recipients: ['amy@dest.test'], host: 'mx.dest.test', reply: '250 ok' }],
    record,
  );
  const queue = new WebhookQueue(redis, keys, { maxAttempts: 5, backoffSeconds: 1 });
  await queue.enqueue(record.id, 'booking', [1]);
  await queue.close();
  await until(async () => posts.length === 1, 15_000, 'the child to POST the event');

  // Another gateway's webhook worker is running when the child dies mid-POST.
  other = await startTestGateway({
    prefix,
    overrides: { roles: ['worker'], apiKeys: apiKeys() },
  });
  const lockTtl = await redis.pttl(`${keys.bullPrefix()}:webhooks:${webhookJobId(record.id, 1)}:lock`);
  child.kill('SIGKILL');
  const killedAt = Date.now();
  await until(async () => posts.length === 2, 90_000, 'the other gateway to send the event again');
  const after = posts[1].at - killedAt;
  console.log(`webhook after SIGKILL: sent again ${(after / 1000).toFixed(1)} s after the kill (lock TTL at the kill ${(lockTtl / 1000).toFixed(1)} s)`);
  expect(posts.map((p) => p.eventId)).toEqual([`${record.id}.1`, `${record.id}.1`]);
  // Not before the dead worker's lock ran out (at least 15 s after its last renewal) …
  expect(after).toBeGreaterThanOrEqual(Math.min(lockTtl, 15_000) - 500);
  expect(lockTtl).toBeLessThanOrEqual(20_000);
  // … and at the first or (when its timer met the last check's marker still set) second stalled check after that.
  expect(after).toBeLessThan(lockTtl + 2 * 5000 + 1500);
}, 150_000);
