/**
 * The local `domains` commands, run on this machine without a gateway: `domains dns` (the records of the
 * configured domains, before the gateway ever runs) and `domains rewrap` (re-seal the private keys in Redis
 * after a master-key change, an offline operation). The rest of `domains` goes over the admin API
 * (domains-commands.ts).
 */
import { readFile } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import { createResolver } from '../delivery/resolver.js';
import { loadKeyVault } from '../dkim/key-vault.js';
import { dnsRecordFor, loadPrivateKey } from '../dkim/keys.js';
import { DomainService } from '../domains/domain-service.js';
import { mtaStsMxFor, mtaStsPolicy, reportRecords } from '../domains/records.js';
import { systemClock } from '../lib/clock.js';
import { DomainStore } from '../store/domain-store.js';
import { createKeys } from '../store/keys.js';

/** The `domains` sub-commands that run locally. */
export const LOCAL_DOMAINS_COMMANDS = new Set(['dns', 'rewrap']);

/** Usage lines of the local `domains` commands. */
export const LOCAL_DOMAINS_USAGE = `  domains dns                        print the DNS records to publish: DKIM, SPF, DMARC, MTA-STS (and its policy
                                     file) and TLS-RPT of each configured sender domain, MX and SPF of the bounce domain
  domains rewrap                     re-seal every runtime-managed domain's private key under domainKeys.masterKey
                                     (after a master-key change, with the old key as domainKeys.previousMasterKey)`;

/** A TXT value as zone-file character-strings of at most 255 bytes each (an RSA-2048 DKIM key needs two). */
function zoneTxt(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return parts.length > 1 ? `( ${parts.join(' ')} )` : parts[0];
}

/** `domains dns`: the zone-file lines for the configured sender domains and the bounce domain. */
export async function domainsDns(cfg: Config): Promise<string> {
  const lines: string[] = [];
  for (const d of cfg.domains) {
    lines.push(`; ${d.name}`);
    for (const k of d.dkim) {
      const pem = await readFile(k.privateKeyFile, 'utf8').catch(() => null);
      if (!pem) {
        lines.push(`; ${k.selector}: key file ${k.privateKeyFile} does not exist yet (start the gateway or run dkim generate)`);
        continue;
      }
      const key = loadPrivateKey(pem);
      lines.push(`${k.selector}._domainkey.${d.name}. IN TXT ${zoneTxt(dnsRecordFor(k.algorithm, key.publicKeyBase64))}`);
    }
    lines.push(`${d.name}. IN TXT "v=spf1 ip4:<your sending IP> -all"`);
    lines.push(`_dmarc.${d.name}. IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@${d.name}"`);
    const mx = mtaStsMxFor(null, cfg);
    for (const r of reportRecords(d.name, cfg, mx)) lines.push(r.zone);
    const policy = mtaStsPolicy(d.name, mx, cfg);
    lines.push(`; MTA-STS policy to serve at ${policy.url} (text/plain; mx: must list every MX host of ${d.name}):`);
    for (const l of policy.contents.replace(/\n$/, '').split('\n')) lines.push(`;   ${l}`);
  }
  // The MX must name the host running role `feedback`, listening on port 25 (feedback.port).
  lines.push(`; bounce domain (VERP return path): MX to the host of the bounce MX (role feedback, port 25), SPF for the sending IP`);
  lines.push(`${cfg.bounce.domain}. IN MX 10 ${cfg.hostname}.`);
  lines.push(`${cfg.bounce.domain}. IN TXT "v=spf1 ip4:<your sending IP> -all"`);
  return lines.join('\n');
}

/** `domains rewrap`: re-seals every private key in Redis under the current master key. */
export async function domainsRewrap(cfg: Config, redis: Redis): Promise<string> {
  const vault = await loadKeyVault(cfg.domainKeys);
  const service = new DomainService({
    config: cfg,
    store: new DomainStore(redis, createKeys(cfg.redis.prefix)),
    vault,
    resolver: createResolver(cfg.dns),
    clock: systemClock,
  });
  const r = await service.rewrap();
  return `re-sealed ${r.keys} key(s) of ${r.domains} domain(s) under master key ${vault?.keyId}`;
}
