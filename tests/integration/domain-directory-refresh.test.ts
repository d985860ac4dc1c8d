/**
 * The domain directory after a write of this gateway (src/domains/domain-directory.ts refreshAfterWrite): a revoke
 * must stop signing here before it answers (docs/domains.md), also when the periodic reload is in flight and read
 * the change counter before the write. The store answers its version a little late, as a loaded Redis would.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { createResolver } from '../../src/delivery/resolver.js';
import { createKeyVault, parseMasterKey } from '../../src/dkim/key-vault.js';
import { DomainDirectory } from '../../src/domains/domain-directory.js';
import { DomainService } from '../../src/domains/domain-service.js';
import { createLogger } from '../../src/lib/logger.js';
import { systemClock } from '../../src/lib/clock.js';
import { DomainStore } from '../../src/store/domain-store.js';
import { createKeys } from '../../src/store/keys.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { publishDkim } from '../helpers/sender-domains.js';
import { dropPrefix, testConfig } from '../helpers/test-gateway.js';

const PREFIX = `kurir-test-dir-race-${Math.random().toString(36).slice(2, 8)}`;
const redis = new Redis('redis://127.0.0.1:6379');
afterAll(async () => {
  await dropPrefix(PREFIX);
  await redis.quit();
});

it('a revoke stops signing on this gateway before it answers, even with a periodic reload in flight that read the change counter before the write', async () => {
  const dns = await startDnsServer({});
  const config = testConfig(mkdtempSync(join(tmpdir(), 'audit-')), { domainKeys: { masterKey: 'e'.repeat(64) } }, dns.address, PREFIX);
  const store = new DomainStore(redis, createKeys(PREFIX));
  const vault = createKeyVault(parseMasterKey('e'.repeat(64), 'm'));
  // A store whose version() answers a little late, like a Redis a millisecond or two away under load.
  let slow = false;
  const slowStore = Object.create(store) as DomainStore;
  slowStore.version = async () => {
    const v = await store.version();
    if (slow) await new Promise((r) => setTimeout(r, 50));
    return v;
  };
  const dir = new DomainDirectory({ store: slowStore, vault, logger: createLogger({ level: 'silent' }), refreshMs: 60_000 });
  await dir.start();
  const svc = new DomainService({
    config,
    store,
    vault,
    resolver: createResolver({ ...config.dns, cache: undefined }),
    clock: systemClock,
    changed: () => dir.refreshAfterWrite().then(() => undefined),
  });
  const d = await svc.add('race.test');
  publishDkim(dns, svc.view(d).records);
  await svc.verify('race.test');
  expect(dir.keysFor('race.test')?.length).toBe(1);
  slow = true;
  const poll = dir.refresh(); // the periodic poll happens to be in flight
  await new Promise((r) => setTimeout(r, 5));
  await svc.revoke('race.test', d.keys[0].selector);
  await poll;
  // Until 1 Dec 2026 (DomainDirectory.refresh shared the reload already in flight) the revoked key still signed here.
  expect(dir.keysFor('race.test') ?? []).toHaveLength(0);
  dir.close();
  await dns.close();
});
