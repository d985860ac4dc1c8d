/**
 * CredentialAdmin against real Redis: changes made at the same moment (two admins, two gateways) must not
 * undo each other. Each change reads the record and writes it back; both calls below are made in the same
 * tick, so both reads reach Redis before either write — the interleaving two HTTP requests can produce.
 * And a change that is written is answered as done, even when reloading this process's credentials fails after it.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { CredentialAdmin } from '../../../src/admin/credentials.js';
import { CredentialRegistry } from '../../../src/intake/credentials.js';
import { systemClock } from '../../../src/lib/clock.js';
import { CredentialStore } from '../../../src/store/credential-store.js';
import { createKeys } from '../../../src/store/keys.js';

const prefix = `kurir-test-credadmin-${Math.random().toString(36).slice(2, 8)}`;
const redis = new Redis('redis://127.0.0.1:6379');
const store = new CredentialStore(redis, createKeys(prefix));
const HMAC = 'k'.repeat(64);
const registry = new CredentialRegistry({ apiKeys: [], smtpAccounts: [] });

function admin(changed?: () => Promise<void>): CredentialAdmin {
  return new CredentialAdmin({ store, registry, hmacKey: HMAC, clock: systemClock, senderDomains: new Set(['example.test']), changed });
}

/** Which of `secrets` authenticate with the credentials now in Redis. */
async function valid(...secrets: string[]): Promise<boolean[]> {
  registry.setRuntime(HMAC, await store.all());
  return Promise.all(secrets.map(async (s) => (await registry.resolveApiKey(s)) !== null));
}

afterAll(async () => {
  const found = await redis.keys(`${prefix}:*`);
  if (found.length) await redis.del(...found);
  await redis.quit();
});

describe('CredentialAdmin changes at the same moment', () => {
  it('two rotations with an overlap: both new secrets work, and the original until the overlap ends', async () => {
    const { credential, secret: original } = await admin().create({ kind: 'api-key', name: 'twice' }, 'test');
    const [r1, r2] = await Promise.all([admin().rotate(credential.id, 3600), admin().rotate(credential.id, 3600)]);
    expect(await valid(original, r1.secret, r2.secret)).toEqual([true, true, true]);
  });

  it('a rotation ending the old secret at once and a scope change: the old secret stays dead, both changes hold', async () => {
    const { credential, secret: old } = await admin().create({ kind: 'api-key', name: 'leaked' }, 'test');
    const [rotated] = await Promise.all([admin().rotate(credential.id, 0), admin().update(credential.id, { priorities: ['verification'] })]);
    expect(await valid(old, rotated.secret)).toEqual([false, true]);
    expect((await admin().get(credential.id)).priorities).toEqual(['verification']);
  });
});

describe('CredentialAdmin when the reload after a change fails', () => {
  const failing = () => Promise.reject(new Error('Redis is not answering'));

  it('a rotation ending the old secret at once still answers the new secret, which works', async () => {
    const { credential, secret: old } = await admin().create({ kind: 'api-key', name: 'rotated-blind' }, 'test');
    const rotated = await admin(failing).rotate(credential.id, 0);
    expect(await valid(old, rotated.secret)).toEqual([false, true]);
  });

  it('a creation still answers its secret, which works', async () => {
    const created = await admin(failing).create({ kind: 'api-key', name: 'created-blind' }, 'test');
    expect(await valid(created.secret)).toEqual([true]);
  });
});
