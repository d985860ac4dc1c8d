/**
 * Intake signing through the DKIM signing threads (dkim.signingThreads), with real Redis and real stores. The
 * fault is injected at the one moment that matters: the thread is stopped just after a signature was sent to
 * it. The client gets UNAVAILABLE (503 / 451 4.3.0), nothing is stored, and the retry succeeds once the pool
 * has replaced the thread.
 */
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { generateDkimKey } from '../../src/dkim/keys.js';
import { SignPool } from '../../src/dkim/sign-pool.js';
import { createDkimSigner, type SigningEngine } from '../../src/dkim/signer.js';
import type { Credential } from '../../src/intake/credentials.js';
import { IntakeService } from '../../src/intake/intake-service.js';
import { KurirError } from '../../src/lib/errors.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { DeliveryQueue } from '../../src/queue/delivery-queue.js';
import { IdempotencyStore } from '../../src/store/idempotency-store.js';
import { createKeys } from '../../src/store/keys.js';
import { MessageStore } from '../../src/store/message-store.js';
import { SuppressionStore } from '../../src/store/suppression-store.js';
import { dropPrefix } from '../helpers/test-gateway.js';

const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const prefix = `kurir-test-signpool-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const queue = new DeliveryQueue(redis, keys);
const config = loadConfig({ file: 'config/default.yaml', overrides: { log: { level: 'silent' } } });
const credential: Credential = { kind: 'api-key', name: 'booking', domains: new Set(['example.test']), admin: false };
const pools: SignPool[] = [];

afterAll(async () => {
  for (const p of pools) await p.close();
  await queue.close();
  await dropPrefix(prefix);
  await redis.quit();
});

it('a signing thread that dies mid-signature: UNAVAILABLE, nothing stored, key freed; the retry is signed by the new thread', async () => {
  const pool = await SignPool.start({ threads: 1 });
  pools.push(pool);
  let killNext = true;
  const engine: SigningEngine = {
    sign(...args) {
      // The thread is told to stop before the job is posted to it, so the job is in flight on a thread that can
      // never answer it (killed after posting, a fast thread sometimes finished the signature first).
      if (killNext) {
        killNext = false;
        void pool.workers()[0]!.terminate();
      }
      return pool.sign(...args);
    },
  };
  const key = generateDkimKey('rsa');
  const signer = createDkimSigner({ keys: [{ domain: 'example.test', selector: 's1', algorithm: 'rsa', privateKeyPem: key.privateKeyPem }], engine });
  pool.sync(signer.liveKeys());
  const metrics = createMetrics({ defaultMetrics: false });
  const intake = new IntakeService({
    config,
    clock: { now: () => Date.now() },
    signer,
    messages: new MessageStore(redis, keys, 3600),
    suppressions: new SuppressionStore(redis, keys),
    idempotency: new IdempotencyStore(redis, keys, 3600),
    queue,
    metrics,
  });
  const raw = Buffer.from('From: noreply@example.test\r\nTo: a@dest.test\r\nSubject: code\r\n\r\nCode 1234\r\n');
  const sub = { credential, iface: 'http' as const, recipients: ['a@dest.test'], raw, idempotency: { key: 'k1', requestHash: 'h1' } };

  const err = (await intake.accept(sub).catch((e: unknown) => e)) as KurirError;
  expect(err).toBeInstanceOf(KurirError);
  expect(err.code).toBe('UNAVAILABLE');
  expect(err.httpStatus).toBe(503);
  expect(err.smtp).toEqual({ code: 451, enhanced: '4.3.0' });
  expect(err.message).toBe('DKIM signing is unavailable, try again');
  expect(await redis.keys(`${prefix}:msg:*`)).toEqual([]);
  expect(await redis.zcard(keys.liveMessages())).toBe(0);
  expect(await redis.exists(keys.idempotency('booking', 'k1'))).toBe(0);
  expect((await metrics.registry.getSingleMetric('kurir_dkim_failures_total')?.get())?.values).toEqual([
    { labels: { domain: 'example.test', reason: 'DKIM_UNAVAILABLE' }, value: 1 },
  ]);

  await expect.poll(() => pool.workers().length, { timeout: 5000 }).toBe(1);
  const retry = await intake.accept(sub);
  expect(retry.duplicate).toBe(false);
  expect(await redis.zcard(keys.liveMessages())).toBe(1);
});
