/**
 * The local `domains` commands against real Redis: `domains rewrap` re-seals the private keys after a
 * master-key change. The remote ones (add, show, verify, …) run against a gateway in
 * tests/integration/cli-admin.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/main.js';
import { loadConfig } from '../../../src/config/load.js';
import { createResolver } from '../../../src/delivery/resolver.js';
import { loadKeyVault } from '../../../src/dkim/key-vault.js';
import { DomainService } from '../../../src/domains/domain-service.js';
import { systemClock } from '../../../src/lib/clock.js';
import { DomainStore } from '../../../src/store/domain-store.js';
import { createKeys } from '../../../src/store/keys.js';
import { closeRedis, createRedis, waitReady } from '../../../src/store/redis.js';
import { dropPrefix } from '../../helpers/test-gateway.js';

const prefix = `kurir-test-dcli-${Math.random().toString(36).slice(2, 8)}`;
const OLD = 'e'.repeat(64);
const NEW = 'f'.repeat(64);
const env = (masterKey: string, previous?: string): Record<string, string> => ({
  KURIR_REDIS__PREFIX: prefix,
  KURIR_DOMAIN_KEYS__MASTER_KEY: masterKey,
  ...(previous ? { KURIR_DOMAIN_KEYS__PREVIOUS_MASTER_KEY: previous } : {}),
  KURIR_DOMAIN_KEYS__SENDING_IPS: '[192.0.2.10]',
});

afterAll(() => dropPrefix(prefix));

describe('kurir domains rewrap (local)', () => {
  it('re-seals the keys sealed under the previous master key, then has nothing left to do', async () => {
    const cfg = loadConfig({ env: env(OLD) });
    const redis = createRedis(cfg.redis.url, 'command');
    await waitReady(redis, 3000);
    try {
      const service = new DomainService({
        config: cfg,
        store: new DomainStore(redis, createKeys(prefix)),
        vault: await loadKeyVault(cfg.domainKeys),
        resolver: createResolver({ servers: ['127.0.0.1:1'], timeoutSeconds: 1, tries: 1 }),
        clock: systemClock,
      });
      await service.add('rewrap.test', { ed25519: true });
    } finally {
      await closeRedis(redis);
    }
    const ctx = { cwd: process.cwd(), env: env(NEW, OLD) };
    expect(await runCli(['domains', 'rewrap'], ctx)).toMatch(/^re-sealed 2 key\(s\) of 1 domain\(s\) under master key [0-9a-f]{16}$/);
    expect(await runCli(['domains', 'rewrap'], ctx)).toMatch(/^re-sealed 0 key\(s\) of 0 domain\(s\) under master key [0-9a-f]{16}$/);
  });

  it('needs no gateway URL or key', async () => {
    const out = await runCli(['domains', 'rewrap'], { cwd: process.cwd(), env: env(NEW) });
    expect(out).toMatch(/^re-sealed 0 key\(s\)/);
  });
});
