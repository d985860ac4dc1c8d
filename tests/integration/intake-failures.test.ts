/**
 * The failure paths of a submission's one write (the script that stores the message and queues its jobs), with
 * real Redis, real stores and a real signer; only the fault is injected, as ioredis fails when Redis goes away:
 * before the script ran, or after it ran with its answer lost, and a take-back that fails too. Each path answers
 * UNAVAILABLE (503 / 451 4.3.0) and leaves either nothing, or a stored and queued message (always, with an
 * Idempotency-Key: a retry with it answers or stores that message).
 */
import { afterAll, beforeEach, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/load.js';
import { createDkimSigner } from '../../src/dkim/signer.js';
import { generateDkimKey } from '../../src/dkim/keys.js';
import type { Credential } from '../../src/intake/credentials.js';
import { IntakeService } from '../../src/intake/intake-service.js';
import type { Submission } from '../../src/intake/submission.js';
import { KurirError } from '../../src/lib/errors.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { DeliveryQueue, deliveryJobId } from '../../src/queue/delivery-queue.js';
import { IdempotencyStore } from '../../src/store/idempotency-store.js';
import { createKeys, type Keys } from '../../src/store/keys.js';
import { MessageStore } from '../../src/store/message-store.js';
import { SuppressionStore } from '../../src/store/suppression-store.js';
import { dropPrefix } from '../helpers/test-gateway.js';

const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const key = generateDkimKey('ed25519');
const signer = createDkimSigner({ keys: [{ domain: 'example.test', selector: 's1', algorithm: 'ed25519', privateKeyPem: key.privateKeyPem }] });
const config = loadConfig({ file: 'config/default.yaml', overrides: { log: { level: 'silent' } } });
const credential: Credential = { kind: 'api-key', name: 'booking', domains: new Set(['example.test']), admin: false };
let prefix: string;
let keys: Keys;
let queue: DeliveryQueue;
const prefixes: string[] = [];

/** ioredis's own words when the connection is gone. */
const gone = (): Error => new Error("Stream isn't writeable and enableOfflineQueue options is false");

function service(opts: { fail: 'before' | 'after'; failRemove: boolean; whileLost?: () => Promise<void> }): { intake: IntakeService; messages: MessageStore } {
  const messages = new MessageStore(redis, keys, 3600);
  const create = messages.create.bind(messages);
  let failures = 1;
  messages.create = async (...args: Parameters<MessageStore['create']>) => {
    if (failures > 0 && opts.fail === 'before') {
      failures -= 1;
      throw gone();
    }
    const created = await create(...args);
    if (failures-- > 0) {
      // The script ran; its answer is lost (after `whileLost`: what happens meanwhile on other connections).
      await opts.whileLost?.();
      throw gone();
    }
    return created;
  };
  if (opts.failRemove) messages.remove = async () => Promise.reject(gone());
  const intake = new IntakeService({
    config,
    clock: { now: () => Date.now() },
    signer,
    messages,
    suppressions: new SuppressionStore(redis, keys),
    idempotency: new IdempotencyStore(redis, keys, 3600),
    queue,
    metrics: createMetrics({ defaultMetrics: false }),
  });
  return { intake, messages };
}

function submission(idempotencyKey?: string): Submission {
  const raw = Buffer.from('From: noreply@example.test\r\nTo: a@dest.test\r\nSubject: code\r\n\r\nCode 1234\r\n');
  return {
    credential,
    iface: 'http',
    recipients: ['a@dest.test'],
    raw,
    priority: 'verification',
    ...(idempotencyKey ? { idempotency: { key: idempotencyKey, requestHash: 'h1' } } : {}),
  };
}

beforeEach(() => {
  prefix = `kurir-test-fail-${Math.random().toString(36).slice(2, 8)}`;
  prefixes.push(prefix);
  keys = createKeys(prefix);
  queue = new DeliveryQueue(redis, keys);
});
afterAll(async () => {
  await queue.close();
  for (const p of prefixes) await dropPrefix(p);
  await redis.quit();
});

async function expectUnavailable(p: Promise<unknown>): Promise<void> {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(KurirError);
  expect((err as KurirError).code).toBe('UNAVAILABLE');
  expect((err as KurirError).httpStatus).toBe(503);
  expect((err as KurirError).smtp).toEqual({ code: 451, enhanced: '4.3.0' });
}

/** Nothing of any message under the test's prefix: no record, no live entry, no job. */
async function expectNothingStored(): Promise<void> {
  expect(await redis.keys(`${prefix}:msg:*`)).toEqual([]);
  expect(await redis.zcard(keys.liveMessages())).toBe(0);
  expect(await redis.hlen(keys.deliveryQueue().jobs)).toBe(0);
  expect(await redis.zcard(keys.deliveryQueue().ready)).toBe(0);
}

/** The one message stored under the test's prefix, checked to be stored, indexed and queued. */
async function expectStoredAndQueued(messages: MessageStore): Promise<string> {
  const [stored] = await redis.zrange(keys.liveMessages(), '0', '-1');
  expect(stored).toBeDefined();
  expect(await messages.getRecord(stored)).not.toBeNull();
  // Stored and queued in one script: its job is there without the reconciler.
  expect(await queue.presence([deliveryJobId(stored, 'dest.test')])).toEqual(['live']);
  return stored;
}

it('before: the write fails before Redis ran it: UNAVAILABLE, nothing stored; a retry with the key stores it under the id the key holds', async () => {
  const { intake } = service({ fail: 'before', failRemove: false });
  await expectUnavailable(intake.accept(submission('k-before')));
  await expectNothingStored();
  const held = JSON.parse((await redis.get(keys.idempotency('booking', 'k-before'))) as string) as { id: string };

  const retry = await intake.accept(submission('k-before'));
  expect(retry).toEqual({ id: held.id, duplicate: false });
  expect(await queue.presence([deliveryJobId(retry.id, 'dest.test')])).toEqual(['live']);
});

it('after, with an Idempotency-Key: UNAVAILABLE, the stored copy stays queued and a retry with the key answers that same message', async () => {
  const { intake, messages } = service({ fail: 'after', failRemove: false });
  await expectUnavailable(intake.accept(submission('k-after')));
  const stored = await expectStoredAndQueued(messages);
  expect(await redis.exists(keys.idempotency('booking', 'k-after'))).toBe(1);

  const retry = await intake.accept(submission('k-after'));
  expect(retry).toEqual({ id: stored, duplicate: true });
  expect(await queue.presence([deliveryJobId(stored, 'dest.test')])).toEqual(['live']);
});

it('a retry with the key answered while the first request waits for its lost answer: the message it acknowledged is never taken back', async () => {
  // Until 1 Dec 2026 the first request then removed the message and freed the key: the retry's 202 named a
  // message that no longer existed, and nothing was delivered or reported.
  let replayed: { id: string; duplicate: boolean } | undefined;
  const { intake, messages } = service({
    fail: 'after',
    failRemove: false,
    whileLost: async () => {
      replayed = await intake.accept(submission('k-race'));
    },
  });
  await expectUnavailable(intake.accept(submission('k-race')));
  const stored = await expectStoredAndQueued(messages);
  expect(replayed).toEqual({ id: stored, duplicate: true });
  expect(await redis.exists(keys.idempotency('booking', 'k-race'))).toBe(1);
});

it("after, without a key: UNAVAILABLE, the message and its job are taken back, so the client's retry is the only copy", async () => {
  const { intake } = service({ fail: 'after', failRemove: false });
  await expectUnavailable(intake.accept(submission()));
  await expectNothingStored();

  const retry = await intake.accept(submission());
  expect(retry.duplicate).toBe(false);
  expect(await queue.presence([deliveryJobId(retry.id, 'dest.test')])).toEqual(['live']);
});

it('after, without a key, with the job already taken by a worker: the message is not taken back (it may be sending) and stays deliverable', async () => {
  const { intake, messages } = service({
    fail: 'after',
    failRemove: false,
    whileLost: async () => {
      // A worker takes the job (and with it the body) before the take-back runs.
      const { jobs } = await queue.step([], 1, Date.now() + 30_000, 'w.');
      expect(jobs).toHaveLength(1);
    },
  });
  await expectUnavailable(intake.accept(submission()));
  const [stored] = await redis.zrange(keys.liveMessages(), '0', '-1');
  expect(stored).toBeDefined();
  const view = await messages.getForDelivery(stored);
  expect(view?.body).not.toBeNull();
  expect(await queue.getState(deliveryJobId(stored, 'dest.test'))).toBe('active');
});

it('answer lost and take-back failed: UNAVAILABLE, the stored copy is queued and indexed', async () => {
  const { intake, messages } = service({ fail: 'after', failRemove: true });
  await expectUnavailable(intake.accept(submission()));
  await expectStoredAndQueued(messages);
});
