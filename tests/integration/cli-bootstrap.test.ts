/**
 * `kurir credentials create --bootstrap` against real Redis (the shared server, a prefix of this file's own), no
 * gateway: the key is written first and the audit entry after it, so when the audit write fails the key exists
 * and works — its secret must still be printed, with the failure, or nobody can ever use it.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { runCliCommand } from '../../src/cli/main.js';
import { CredentialStore } from '../../src/store/credential-store.js';
import { createKeys } from '../../src/store/keys.js';
import { dropPrefix } from '../helpers/test-gateway.js';

const prefix = `kurir-test-bootstrap-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const redis = new Redis('redis://127.0.0.1:6379');

afterAll(async () => {
  await redis.quit();
  await dropPrefix(prefix);
});

const bootstrap = (name: string, ...extra: string[]) =>
  runCliCommand(['credentials', 'create', '--bootstrap', '--name', name, ...extra], {
    cwd: process.cwd(),
    env: { KURIR_REDIS__PREFIX: prefix, KURIR_REDIS__MANAGE: 'never' },
  });

describe('credentials create --bootstrap', () => {
  it('prints the secret of the key it created even when the audit entry cannot be written', async () => {
    // A key of another type where the audit stream belongs: XADD fails with WRONGTYPE.
    await redis.set(keys.auditLog(), 'not a stream');
    const r = await bootstrap('first-admin');
    const secret = /key \(shown once, store it now\): (\S+)/.exec(r.output)?.[1];
    expect(secret).toMatch(/^kurir_/);
    expect(r.output).toMatch(/\nwarning: the audit entry could not be written \(WRONGTYPE/);
    const stored = await new CredentialStore(redis, keys).all();
    expect(stored.map((c) => c.name)).toEqual(['first-admin']);
  });

  it('makes an admin key only: another --role is a usage error and nothing is created', async () => {
    const err = await bootstrap('second', '--role', 'send').then(
      () => null,
      (e: { exitCode?: number; message: string }) => e,
    );
    expect(err).toMatchObject({ exitCode: 2, message: expect.stringMatching(/^credentials create --bootstrap: --role: the bootstrap key is an admin key/) });
    expect((await new CredentialStore(redis, keys).all()).map((c) => c.name)).not.toContain('second');
  });
});
