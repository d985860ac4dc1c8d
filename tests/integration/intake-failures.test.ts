/**
 * The failure paths of a submission's one write (the script that stores the message and queues its jobs), with
 * real Redis, real stores and a real signer; only the fault is injected, as ioredis fails when Redis goes away:
 * before the script ran, or after it ran with its answer lost, and a take-back that fails too. Each path answers
 * UNAVAILABLE (503 / 451 4.3.0) and leaves either nothing, or a stored and queued message with the
 * Idempotency-Key still held.
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

function service(opts: { fail: 'before' | 'after'; failRemove: boolean }): { intake: IntakeService; messages: MessageStore } {
  const messages = new MessageStore(redis, keys, 3600);
  const create = messages.create.bind(messages);
  let failures = 1;
  messages.create = async (...args: Parameters<MessageStore['create']>) => {
    if (failures > 0 && opts.fail === 'before') {
      failures -= 1;
      throw gone();
    }
    const created = await create(...args);
    if (failures-- > 0) throw gone(); // the script ran; its answer is lost
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

function submission(idempotencyKey: string): Submission {
  const raw = Buffer.from('From: noreply@example.test\r\nTo: a@dest.test\r\nSubject: code\r\n\r\nCode 1234\r\n');
  return { credential, iface: 'http', recipients: ['a@dest.test'], raw, priority: 'verification', idempotency: { key: idempotencyKey, requestHash: 'h1' } };
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

it.each([
  ['before', 'the write fails before Redis ran it: UNAVAILABLE, nothing stored'],
  ['after', 'the write ran but its answer was lost: UNAVAILABLE, the message and its job are taken back'],
] as const)('%s: %s, and the Idempotency-Key is free for the retry', async (fail, _what) => {
  const { intake } = service({ fail, failRemove: false });
  const key = `k-${fail}`;
  await expectUnavailable(intake.accept(submission(key)));
  await expectNothingStored();
  expect(await redis.exists(keys.idempotency('booking', key))).toBe(0);

  const retry = await intake.accept(submission(key));
  expect(retry.duplicate).toBe(false);
  expect(await queue.presence([deliveryJobId(retry.id, 'dest.test')])).toEqual(['live']);
});

it('answer lost and take-back failed: UNAVAILABLE, the stored copy is queued and indexed, and a retry with the key answers that same message', async () => {
  const { intake, messages } = service({ fail: 'after', failRemove: true });
  await expectUnavailable(intake.accept(submission('k2')));
  const [stored] = await redis.zrange(keys.liveMessages(), '0', '-1');
  expect(stored).toBeDefined();
  expect(await messages.getRecord(stored)).not.toBeNull();
  // Stored and queued in one script: its job is there without the reconciler.
  expect(await queue.presence([deliveryJobId(stored, 'dest.test')])).toEqual(['live']);
  expect(await redis.exists(keys.idempotency('booking', 'k2'))).toBe(1);

  const retry = await intake.accept(submission('k2'));
  expect(retry).toEqual({ id: stored, duplicate: true });
  expect(await queue.presence([deliveryJobId(stored, 'dest.test')])).toEqual(['live']);
});
