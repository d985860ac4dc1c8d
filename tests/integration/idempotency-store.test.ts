/**
 * IdempotencyStore against real Redis (a prefix of this file's own): a claim is either taken by the call or
 * answered with the claim already there, even when another request releases the key while the call runs (found
 * 1 Dec 2026: a SET NX refused and a GET after it read a key released in between as claimed by this call); a release
 * deletes only its own claim, even when the key passes to another claim while it runs.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/store/keys.js';
import { IdempotencyStore, type IdempotencyClaim } from '../../src/store/idempotency-store.js';

const prefix = `kurir-test-idem-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const other = new Redis('redis://127.0.0.1:6379');
const clients: Redis[] = [other];

/** A client that runs `between` (another request's doing) after its first command is answered, before the caller sees the answer. */
function interleaved(between: () => Promise<unknown>): Redis {
  const redis = new Redis('redis://127.0.0.1:6379');
  clients.push(redis);
  const send = redis.sendCommand.bind(redis);
  let first = true;
  redis.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    const answer = send(...args) as Promise<unknown>;
    if (!first) return answer;
    first = false;
    return answer.then(async (value) => {
      await between();
      return value;
    });
  }) as Redis['sendCommand'];
  return redis;
}

const claimOf = (id: string, hash = 'h1'): IdempotencyClaim => ({ hash, id, at: 1 });

afterAll(async () => {
  const found = await other.keys(`${prefix}:*`);
  if (found.length) await other.del(...found);
  await Promise.all(clients.map((c) => c.quit()));
});

describe('IdempotencyStore.claim', () => {
  it('takes a free key (null), and answers a taken one with its claim, changing nothing', async () => {
    const store = new IdempotencyStore(other, keys, 60);
    expect(await store.claim('booking', 'k1', claimOf('first'))).toBeNull();
    expect(await store.claim('booking', 'k1', claimOf('second', 'h2'))).toEqual(claimOf('first'));
    expect(await store.get('booking', 'k1')).toEqual(claimOf('first'));
    expect(await other.ttl(keys.idempotency('booking', 'k1'))).toBeGreaterThan(55);
    // Keys are per owner.
    expect(await store.claim('other-team', 'k1', claimOf('third'))).toBeNull();
  });

  it('answers the claim that was there when another request releases the key during the call, never "claimed"', async () => {
    const holder = new IdempotencyStore(other, keys, 60);
    expect(await holder.claim('booking', 'k2', claimOf('holder'))).toBeNull();
    const racing = new IdempotencyStore(
      interleaved(() => holder.release('booking', 'k2', 'holder')),
      keys,
      60,
    );
    const answer = await racing.claim('booking', 'k2', claimOf('racer'));
    // Either the call took the key (and holds it) or it was told of the holder's claim: a null answer with the
    // key free would have the caller believe it holds a key nobody holds.
    if (answer === null) expect(await holder.get('booking', 'k2')).toEqual(claimOf('racer'));
    else expect(answer).toEqual(claimOf('holder'));
  });
});

describe('IdempotencyStore.release', () => {
  it('frees only the claim of its own id', async () => {
    const store = new IdempotencyStore(other, keys, 60);
    expect(await store.claim('booking', 'r1', claimOf('mine'))).toBeNull();
    await store.release('booking', 'r1', 'not-mine');
    expect(await store.get('booking', 'r1')).toEqual(claimOf('mine'));
    await store.release('booking', 'r1', 'mine');
    expect(await store.get('booking', 'r1')).toBeNull();
  });

  it('leaves a claim that took the key while the release ran', async () => {
    const store = new IdempotencyStore(other, keys, 60);
    const key = keys.idempotency('booking', 'r2');
    expect(await store.claim('booking', 'r2', claimOf('old'))).toBeNull();
    // The old claim is gone (expired, or released by another path) and a new request claims the key meanwhile.
    const releasing = new IdempotencyStore(
      interleaved(() => other.set(key, JSON.stringify(claimOf('new')))),
      keys,
      60,
    );
    await releasing.release('booking', 'r2', 'old');
    expect(await store.get('booking', 'r2')).toEqual(claimOf('new'));
  });
});
