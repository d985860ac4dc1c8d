/**
 * `redis.shards` (docs/scale-out.md): two private redis-servers hold the message data of one sender domain each,
 * the main Redis (the shared one, under this file's prefix) holds the rest and everything shared. One gateway set:
 * an intake+api process, a worker process and a bounce MX (role feedback). Messages land on their sender domain's shard and are delivered from
 * there; the per-recipient limit, the suppression list and idempotency keys hold across shards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import nodemailer from 'nodemailer';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { loadFixture } from '../helpers/feedback-fixtures.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_KEY, API_KEY, adminRequest, dropPrefix, startTestGateway, submitDelivered, type TestGateway } from '../helpers/test-gateway.js';

const prefix = `kurir-test-shards-${Math.random().toString(36).slice(2, 8)}`;
let dns: DnsServer;
let receiver: Receiver;
let shardA: PrivateRedis;
let shardB: PrivateRedis;
let a: Redis;
let b: Redis;
let intake: TestGateway;
let worker: TestGateway;
let bounceMx: TestGateway;
let keyDir: string;

const SENDERS = ['example.test', 'shard-a.test', 'shard-b.test'];
const code = (from: string, to: string) => ({ from: `noreply@${from}`, to: [to], subject: 'Your code', text: 'Code: 123456', priority: 'verification' });
const msgKey = (id: string): string => `${prefix}:msg:${id}`;

beforeAll(async () => {
  receiver = await startReceiver({
    rules: { 'nobody@dest.test': { code: 550, message: '5.1.1 no such user' }, 'later@dest.test': { code: 451, message: '4.7.1 try later' } },
    hostname: 'mx.dest.test',
  });
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
  [shardA, shardB] = await Promise.all([startPrivateRedis(), startPrivateRedis()]);
  a = new Redis(shardA.url);
  b = new Redis(shardB.url);
  const overrides = (dataDir: string, roles: string[]) => ({
    roles,
    redis: {
      shards: [
        { name: 'shard-a', url: shardA.url, senderDomains: ['shard-a.test'] },
        { name: 'shard-b', url: shardB.url, senderDomains: ['Shard-B.test'] },
      ],
    },
    delivery: { mxPort: receiver.port, retrySchedule: [30] },
    limits: { recipient: { max: 2, windowSeconds: 600 } },
    domains: SENDERS.map((name) => ({ name, dkim: [{ selector: 'k1', algorithm: 'rsa', privateKeyFile: join(dataDir, `${name}.pem`), generate: true }] })),
    apiKeys: [
      { name: 'booking', key: API_KEY, domains: SENDERS },
      { name: 'admin', key: ADMIN_KEY, domains: ['*'], admin: true },
    ],
  });
  // The two processes share the DKIM key files (the worker does not sign, but validates the configured domains).
  keyDir = mkdtempSync(join(tmpdir(), 'kurir-shards-keys-'));
  intake = await startTestGateway({ prefix, dns, overrides: overrides(keyDir, ['intake', 'api']) });
  worker = await startTestGateway({ prefix, dns, overrides: overrides(keyDir, ['worker']) });
  bounceMx = await startTestGateway({ prefix, dns, overrides: overrides(keyDir, ['feedback']) });
});

afterAll(async () => {
  await bounceMx?.close();
  await worker?.close();
  await intake?.close();
  await dropPrefix(prefix);
  a?.disconnect();
  b?.disconnect();
  await Promise.all([shardA?.destroy(), shardB?.destroy()]);
  await receiver?.close();
  await dns?.close();
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

describe('redis.shards: two shards, one gateway set', () => {
  it('stores each message on its sender domain’s shard, delivers it from there, and reads it back from any process', async () => {
    const ids: Record<string, string> = {};
    for (const [from, to] of [
      ['shard-a.test', 'one@dest.test'],
      ['shard-b.test', 'two@dest.test'],
      ['example.test', 'three@dest.test'],
    ]) {
      const res = await intake.submit(code(from, to));
      expect(res.status).toBe(202);
      ids[from] = res.body.id;
    }
    for (const id of Object.values(ids)) await intake.waitForStatus(id, (s) => s.status === 'delivered');
    expect(receiver.messages.map((m) => m.rcptTo[0]).sort()).toEqual(['one@dest.test', 'three@dest.test', 'two@dest.test']);

    const main = intake.gateway.redis;
    const where = async (id: string) => [await main.exists(msgKey(id)), await a.exists(msgKey(id)), await b.exists(msgKey(id))];
    expect(await where(ids['shard-a.test'])).toEqual([0, 1, 0]);
    expect(await where(ids['shard-b.test'])).toEqual([0, 0, 1]);
    expect(await where(ids['example.test'])).toEqual([1, 0, 0]);
    // Every body is gone once delivered (that a job waits on its message's shard: the retry case below).
    expect(await a.zcard(`${prefix}:live`)).toBe(0);
    expect(await a.hexists(msgKey(ids['shard-a.test']), 'body')).toBe(0);
    // Nothing shared lives on a shard.
    const MESSAGE_DATA = new Set(['msg', 'events', 'record-write', 'mid', 'layout', 'rcpt-msgs', 'ref-msgs', 'live', '{dq}', 'reconcile', 'confirmed']);
    for (const shard of [a, b]) {
      const kinds = new Set((await shard.keys(`${prefix}:*`)).map((k) => k.slice(prefix.length + 1).split(':')[0]));
      expect([...kinds].filter((k) => !MESSAGE_DATA.has(k))).toEqual([]);
    }

    // The worker process never saw these ids: its store finds the shard by asking each Redis.
    const view = await worker.gateway.messages.get(ids['shard-b.test']);
    expect(view?.record.fromDomain).toBe('shard-b.test');
    expect(view?.status).toBe('delivered');

    // A confirmation finds the message on its shard: the confirmed key and the timeline event are written there.
    const confirm = () =>
      fetch(`${intake.url}/v1/messages/${ids['shard-b.test']}/confirm`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } });
    const first = await confirm();
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ confirmed: true, duplicate: false });
    expect(await (await confirm()).json()).toMatchObject({ confirmed: true, duplicate: true });
    expect([await main.exists(`${prefix}:confirmed:${ids['shard-b.test']}`), await b.exists(`${prefix}:confirmed:${ids['shard-b.test']}`)]).toEqual([0, 1]);
    const confirmed = (await worker.gateway.messages.get(ids['shard-b.test']))?.events.filter((e) => e.type === 'confirmed');
    expect(confirmed).toHaveLength(1);

    // A batch spanning both shards and the main Redis: each item answered on its own, each written where its message lives.
    const res = await fetch(`${intake.url}/v1/confirmations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ items: [{ id: ids['shard-a.test'] }, { id: ids['example.test'] }, { id: ids['shard-b.test'] }] }),
    });
    expect(res.status).toBe(200);
    const results = ((await res.json()) as { results: Array<{ status: number; duplicate: boolean }> }).results;
    expect(results.map((r) => [r.status, r.duplicate])).toEqual([
      [200, false],
      [200, false],
      [200, true],
    ]);
    const confirmedKey = (id: string) => `${prefix}:confirmed:${id}`;
    expect([await main.exists(confirmedKey(ids['shard-a.test'])), await a.exists(confirmedKey(ids['shard-a.test']))]).toEqual([0, 1]);
    expect([await main.exists(confirmedKey(ids['example.test'])), await a.exists(confirmedKey(ids['example.test']))]).toEqual([1, 0]);
  });

  it('holds the per-recipient limit across shards (one counter on the main Redis)', async () => {
    expect((await intake.submit(code('shard-a.test', 'same@dest.test'))).status).toBe(202);
    expect((await intake.submit(code('shard-b.test', 'same@dest.test'))).status).toBe(202);
    const third = await intake.submit(code('example.test', 'same@dest.test'));
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('RECIPIENT_RATE_LIMITED');
    // The search by recipient merges both shards, newest first.
    const found = await adminRequest(intake.url, 'GET', '/v1/messages?to=same@dest.test');
    expect(found.status).toBe(200);
    expect(found.body.items.map((m: any) => m.from)).toEqual(['noreply@shard-b.test', 'noreply@shard-a.test']);
  });

  it('a hard bounce of a message on one shard suppresses the address for every sender domain', async () => {
    const first = await intake.submit(code('shard-a.test', 'nobody@dest.test'));
    expect(first.status).toBe(202);
    await intake.waitForStatus(first.body.id, (s) => s.status === 'bounced');
    expect(await a.exists(msgKey(first.body.id))).toBe(1);
    expect(await intake.gateway.redis.hexists(`${prefix}:suppressions`, 'nobody@dest.test')).toBe(1);
    for (const from of ['shard-b.test', 'example.test', 'shard-a.test']) {
      const res = await intake.submit(code(from, 'nobody@dest.test'));
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('SUPPRESSED');
    }
  });

  it('answers a repeated Idempotency-Key with the first message, whichever shard holds it', async () => {
    const headers = { 'idempotency-key': 'booking-77' };
    const first = await intake.submit(code('shard-b.test', 'idem@dest.test'), headers);
    const again = await intake.submit(code('shard-b.test', 'idem@dest.test'), headers);
    expect(first.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(await b.exists(msgKey(first.body.id))).toBe(1);
    expect(await intake.gateway.redis.keys(`${prefix}:idem:*`)).not.toHaveLength(0);
    expect(await b.keys(`${prefix}:idem:*`)).toEqual([]);
  });

  it('retries and cancels a message through its own shard’s queue', async () => {
    const sent = await intake.submit(code('shard-a.test', 'later@dest.test'));
    const id = sent.body.id as string;
    await intake.waitForStatus(id, (s) => s.status === 'deferred');
    const jobs = `${prefix}:{dq}:jobs`;
    const job = `${id}_dest.test`;
    expect([await a.hexists(jobs, job), await intake.gateway.redis.hexists(jobs, job)]).toEqual([1, 0]);
    const retry = await adminRequest(intake.url, 'POST', `/v1/messages/${id}/retry`);
    expect(retry.status).toBe(200);
    // Found where it waits (delayed until the next attempt), not re-created as "missing" on the main Redis.
    expect(retry.body.jobs).toEqual([{ domain: 'dest.test', state: 'delayed', promoted: true }]);
    await intake.waitForStatus(id, (s) => s.recipients['later@dest.test'].attempts === 2);
    const cancel = await adminRequest(intake.url, 'POST', `/v1/messages/${id}/cancel`);
    expect(cancel.status).toBe(200);
    expect((await intake.status(id)).status).toBe('expired');
    expect(await a.hexists(jobs, job)).toBe(0);
    expect(await intake.gateway.redis.hexists(jobs, job)).toBe(0);
  });

  it('resuming a paused provider promotes the jobs it held on every shard', async () => {
    expect((await adminRequest(intake.url, 'POST', '/v1/shaping/other/pause')).status).toBe(200);
    const ids: string[] = [];
    try {
      for (const from of SENDERS) ids.push((await intake.submit(code(from, `held-${from}@dest.test`))).body.id as string);
      const end = Date.now() + 10_000;
      let held = 0;
      while (Date.now() < end && held < 3) {
        held = (await adminRequest(intake.url, 'GET', '/v1/queue')).body.providers.other?.held ?? 0;
        if (held < 3) await new Promise((r) => setTimeout(r, 100));
      }
      expect(held).toBe(3);
      // Each waits, delayed, in the queue of its own Redis.
      const jobs = `${prefix}:{dq}:delayed`;
      expect([
        await intake.gateway.redis.zscore(jobs, `${ids[0]}_dest.test`),
        await a.zscore(jobs, `${ids[1]}_dest.test`),
        await b.zscore(jobs, `${ids[2]}_dest.test`),
      ]).not.toContain(null);
    } finally {
      const resumed = await adminRequest(intake.url, 'POST', '/v1/shaping/other/resume');
      expect(resumed.body).toMatchObject({ provider: 'other', promoted: 3 });
    }
    for (const id of ids) await intake.waitForStatus(id, (x) => x.status === 'delivered', 5000);
  });

  it('applies a DSN that arrives at the bounce MX to the message on its shard', async () => {
    const m = await submitDelivered(intake, receiver, code('shard-b.test', 'late@dest.test'), 'late@dest.test');
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: bounceMx.gateway.ports.feedback,
      secure: false,
      tls: { rejectUnauthorized: false },
    });
    const raw = loadFixture('postfix-dsn.eml', { verp: m.verp, rcpt: 'late@dest.test', messageId: m.messageId });
    const info = await transport.sendMail({ envelope: { from: '', to: [m.verp] }, raw });
    transport.close();
    expect(info.response).toMatch(/^250 2\.0\.0 Report applied/);
    const s = await intake.status(m.id);
    expect(s.status).toBe('bounced');
    expect(s.events.find((e: any) => e.type === 'bounced')).toMatchObject({ async: true, category: 'invalid-recipient' });
    // Written on shard B (the timeline) and on the main Redis (the suppression), nowhere else.
    expect(await b.lrange(`${prefix}:events:${m.id}`, 0, -1)).toContainEqual(expect.stringContaining('"async":true'));
    expect(await intake.gateway.redis.exists(`${prefix}:events:${m.id}`)).toBe(0);
    expect(await intake.gateway.redis.hexists(`${prefix}:suppressions`, 'late@dest.test')).toBe(1);
  });
});
