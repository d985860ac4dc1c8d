/**
 * The DKIM key material of a runtime-managed domain (domain-service.ts): a new key under the next free selector,
 * its private key sealed by the key vault, and re-sealing a domain's stored keys under the current master key.
 */
import { generateDkimKey, type DkimAlgorithm } from '../dkim/keys.js';
import { keyBinding, type KeyVault } from '../dkim/key-vault.js';
import type { Clock } from '../lib/clock.js';
import type { DomainKeyRecord, DomainRecord } from '../store/domain-store.js';
import { nextSelector } from './records.js';

/**
 * A new pending key of `algorithm` (RSA of `bits`) for `domain`: the next selector not in `taken` (added to it),
 * the private key sealed by `vault`, bound to the domain and selector.
 */
export function newDomainKey(vault: KeyVault, clock: Clock, domain: string, algorithm: DkimAlgorithm, taken: Set<string>, bits: number): DomainKeyRecord {
  const selector = nextSelector(algorithm, clock.now(), taken);
  taken.add(selector);
  const generated = generateDkimKey(algorithm, bits);
  return {
    selector,
    algorithm,
    ...(algorithm === 'rsa' ? { bits } : {}),
    publicKeyBase64: generated.publicKeyBase64,
    sealedPrivateKey: vault.seal(generated.privateKeyPem, keyBinding(domain, selector)),
    status: 'pending',
    createdAt: clock.now(),
  };
}

/**
 * `d` with every private key that is not sealed under the vault's current master key re-sealed under it (`record`
 * null when there was none), and how many were (`result`).
 */
export function resealKeys(vault: KeyVault, d: DomainRecord): { record: DomainRecord | null; result: number } {
  let n = 0;
  const next = d.keys.map((k) => {
    if (!k.sealedPrivateKey || vault.isCurrent(k.sealedPrivateKey)) return k;
    n++;
    const bind = keyBinding(d.name, k.selector);
    return { ...k, sealedPrivateKey: vault.seal(vault.open(k.sealedPrivateKey, bind), bind) };
  });
  return { record: n ? { ...d, keys: next } : null, result: n };
}
