/**
 * Sealing DKIM private keys at rest, and master-key rotation through DomainService.rewrap against real Redis.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDkimKey } from '../../../src/dkim/keys.js';
import { createKeyVault, generateMasterKey, keyBinding, loadKeyVault, masterKeyId, parseMasterKey } from '../../../src/dkim/key-vault.js';
import { DomainService } from '../../../src/domains/domain-service.js';
import { DomainStore } from '../../../src/store/domain-store.js';
import { createKeys } from '../../../src/store/keys.js';
import { dropPrefix, testConfig } from '../../helpers/test-gateway.js';
import { systemClock } from '../../../src/lib/clock.js';
import { KurirError } from '../../../src/lib/errors.js';

const prefix = `kurir-test-vault-${Math.random().toString(36).slice(2, 8)}`;
const redis = new Redis('redis://127.0.0.1:6379');
afterAll(async () => {
  await dropPrefix(prefix);
  await redis.quit();
});

const pem = generateDkimKey('ed25519').privateKeyPem;

describe('key vault', () => {
  const k1 = parseMasterKey(generateMasterKey(), 'k1');
  const k2 = parseMasterKey(Buffer.alloc(32, 7).toString('base64'), 'k2');

  it('seals with AES-256-GCM: opens only under the same binding, detects tampering, never holds the PEM', () => {
    const v = createKeyVault(k1);
    const sealed = v.seal(pem, keyBinding('a.test', 's1'));
    expect(sealed).toMatch(new RegExp(`^v1:${masterKeyId(k1)}:`));
    expect(sealed).not.toContain('PRIVATE KEY');
    expect(v.open(sealed, 'a.test/s1')).toBe(pem);
    expect(v.seal(pem, 'a.test/s1')).not.toBe(sealed);
    expect(() => v.open(sealed, 'b.test/s1')).toThrow(/altered or moved/);
    const parts = sealed.split(':');
    const ct = Buffer.from(parts[4], 'base64');
    ct[0] ^= 1;
    expect(() => v.open([...parts.slice(0, 4), ct.toString('base64')].join(':'), 'a.test/s1')).toThrow(/altered or moved/);
    expect(() => createKeyVault(k2).open(sealed, 'a.test/s1')).toThrow(/does not hold/);
  });

  it('parses master keys as hex or base64 and refuses anything else without echoing it', async () => {
    expect(parseMasterKey('ab'.repeat(32), 'x').length).toBe(32);
    expect(() => parseMasterKey('secret-but-short', 'domainKeys.masterKey')).toThrow(/^domainKeys.masterKey: a master key must be 32 bytes/);
    expect(() => parseMasterKey('secret-but-short', 'domainKeys.masterKey')).not.toThrow(/secret-but-short/);
    expect(await loadKeyVault({ masterKey: '', masterKeyFile: '', previousMasterKey: '', previousMasterKeyFile: '' })).toBeNull();
    await expect(loadKeyVault({ masterKey: '', masterKeyFile: '/nonexistent/k', previousMasterKey: '', previousMasterKeyFile: '' })).rejects.toThrow(
      /file not found/,
    );
  });

  it('master-key rotation: rewrap re-seals every key under the new key; the old key is then no longer needed', async () => {
    const config = testConfig('/tmp', {}, undefined, prefix);
    const store = new DomainStore(redis, createKeys(prefix));
    const resolver = { resolveTxt: async () => [] as string[][] };
    const old = new DomainService({ config, store, vault: createKeyVault(k1), resolver, clock: systemClock });
    await old.add('one.test', { ed25519: true });
    await old.add('two.test');
    const both = new DomainService({ config, store, vault: createKeyVault(k2, [k1]), resolver, clock: systemClock });
    expect(await both.rewrap()).toEqual({ domains: 2, keys: 3 });
    expect(await both.rewrap()).toEqual({ domains: 0, keys: 0 });
    const onlyNew = createKeyVault(k2);
    for (const d of await store.list()) {
      for (const k of d.keys) expect(onlyNew.open(k.sealedPrivateKey, keyBinding(d.name, k.selector))).toMatch(/BEGIN PRIVATE KEY/);
    }
  });

  it('without a master key, adding a domain is refused naming the setting, and nothing is written', async () => {
    const config = testConfig('/tmp', {}, undefined, prefix);
    const store = new DomainStore(redis, createKeys(prefix));
    const none = new DomainService({ config, store, vault: null, resolver: { resolveTxt: async () => [] }, clock: systemClock });
    const err = await none.add('three.test').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KurirError);
    expect((err as KurirError).message).toMatch(/domainKeys.masterKey/);
    expect(await store.get('three.test')).toBeNull();
  });
});
