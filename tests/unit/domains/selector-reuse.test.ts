/**
 * A selector names one key forever: removing a domain and adding it again (twice, within a month) never hands
 * out a selector an earlier incarnation used, neither on add nor on the next rotate. Found by an audit
 * (1 Dec 2026): add avoided only the selectors of the last removed record, so the third add reused the first
 * one's selector with a different key (receivers and caches holding the old record would fail the new
 * signatures). The remembered names are bounded to recent months (recentSelectors).
 */
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { createKeyVault, parseMasterKey } from '../../../src/dkim/key-vault.js';
import { DomainService } from '../../../src/domains/domain-service.js';
import { recentSelectors } from '../../../src/domains/records.js';
import { DomainStore } from '../../../src/store/domain-store.js';
import { createKeys } from '../../../src/store/keys.js';
import { dropPrefix, testConfig } from '../../helpers/test-gateway.js';
import { manualClock } from '../../helpers/until.js';

const PREFIX = `kurir-test-selreuse-${Math.random().toString(36).slice(2, 8)}`;
const client = new Redis('redis://127.0.0.1:6379');
afterAll(async () => {
  await dropPrefix(PREFIX);
  await client.quit();
});

it('re-adding a removed domain never reuses a selector of an earlier incarnation', async () => {
  const clock = manualClock(Date.UTC(2026, 11, 1));
  const service = new DomainService({
    config: testConfig('/tmp', {}, undefined, PREFIX),
    store: new DomainStore(client, createKeys(PREFIX)),
    vault: createKeyVault(parseMasterKey('c'.repeat(64), 'test')),
    resolver: { resolveTxt: async () => [] },
    clock,
  });
  const seen = new Map<string, string>();
  const note = (keys: Array<{ selector: string; publicKeyBase64: string }>): void => {
    for (const k of keys) {
      expect(seen.has(k.selector), `${k.selector} handed out twice`).toBe(false);
      seen.set(k.selector, k.publicKeyBase64);
    }
  };
  for (let round = 0; round < 3; round++) {
    note((await service.add('readd.test', { ed25519: true })).keys);
    const d = await service.get('readd.test');
    await service.revoke('readd.test', d.keys[1].selector);
    await service.revoke('readd.test', d.keys[0].selector);
    const rotated = await service.rotate('readd.test');
    note(rotated.keys.filter((k) => k.status === 'pending'));
    await service.remove('readd.test');
  }
  expect([...seen.keys()].filter((s) => s.startsWith('k'))).toEqual(['k2026m12', 'k2026m12b', 'k2026m12c', 'k2026m12d', 'k2026m12e', 'k2026m12f']);
});

it('remembers the selectors of the last twelve months only', () => {
  const now = Date.UTC(2026, 11, 15);
  expect(recentSelectors(['k2025m12', 'k2026m01', 'e2026m06b', 'k2026m12', 'k2026m12'], now)).toEqual(['e2026m06b', 'k2026m01', 'k2026m12']);
});
