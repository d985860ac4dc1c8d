import type { Config } from '../config/schema.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { dnsRecordFor, loadOrCreateKeyFile, loadPrivateKey } from './keys.js';
import type { DkimKey } from './signer.js';
import { readFile } from 'node:fs/promises';

/**
 * Loads every configured DKIM private key. Keys marked `generate` are created on first start and their
 * DNS record is logged; a missing or invalid key file without `generate` is a start-up error naming the file.
 */
export async function loadSigningKeys(config: Config, logger: Logger): Promise<DkimKey[]> {
  const out: DkimKey[] = [];
  for (const [i, domain] of config.domains.entries()) {
    for (const [j, k] of domain.dkim.entries()) {
      const where = `domains.${i}.dkim.${j}.privateKeyFile (${k.privateKeyFile})`;
      try {
        if (k.generate) {
          const loaded = await loadOrCreateKeyFile(k.privateKeyFile, k.algorithm);
          if (loaded.created) {
            logger.warn(
              {
                domain: domain.name,
                selector: k.selector,
                record: `${k.selector}._domainkey.${domain.name} TXT "${dnsRecordFor(k.algorithm, loaded.publicKeyBase64)}"`,
              },
              'generated a DKIM key: publish this DNS record',
            );
          }
          out.push({ domain: domain.name.toLowerCase(), selector: k.selector, algorithm: k.algorithm, privateKeyPem: loaded.pem });
        } else {
          const loaded = loadPrivateKey(await readFile(k.privateKeyFile, 'utf8'));
          if (loaded.algorithm !== k.algorithm) throw new Error(`holds an ${loaded.algorithm} key but ${k.algorithm} is configured`);
          out.push({ domain: domain.name.toLowerCase(), selector: k.selector, algorithm: k.algorithm, privateKeyPem: loaded.pem });
        }
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new ConfigError(`config: ${where}: ${e.code === 'ENOENT' ? 'file not found (set generate: true to create it)' : e.message}`, { cause: err });
      }
    }
  }
  return out;
}
