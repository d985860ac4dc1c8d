import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import { createResolver } from '../delivery/resolver.js';
import { loadKeyVault } from '../dkim/key-vault.js';
import { DomainService } from '../domains/domain-service.js';
import type { DomainView } from '../domains/domain-view.js';
import { systemClock } from '../lib/clock.js';
import { DomainStore } from '../store/domain-store.js';
import { createKeys } from '../store/keys.js';

/** Usage lines of the `domains` commands (runtime-managed sender domains, docs/domains.md). */
export const DOMAINS_USAGE = `  domains add DOMAIN [--ed25519] [--bits 2048|3072|4096]
                                     add a runtime-managed sender domain; prints the DNS records to publish
  domains list                       every runtime-managed domain with its state
  domains show DOMAIN [--json]       state, keys (public), records to publish, last verification
  domains verify DOMAIN              check DNS; activates waiting keys when DNS serves them
  domains rotate DOMAIN              create the next key and selector (publish it, then verify)
  domains revoke DOMAIN SELECTOR     stop signing with a key at once, on every gateway
  domains remove DOMAIN              stop using the domain and delete its private keys
  domains rewrap                     re-seal every private key under domainKeys.masterKey (after a master-key
                                     change, with the old key as domainKeys.previousMasterKey)`;

/** A domain as text: state and reason, keys, then the zone-file lines to publish. */
export function formatDomain(v: DomainView): string {
  const lines = [`${v.name}: ${v.state}${v.reason ? ` (${v.reason})` : ''}`];
  for (const k of v.keys) {
    const extra = k.keepPublishedUntil ? `, keep published until ${k.keepPublishedUntil}${k.removable ? ' (now removable)' : ''}` : '';
    lines.push(`  key ${k.selector} ${k.algorithm}${k.bits ? `-${k.bits}` : ''}: ${k.status}${extra}`);
  }
  if (v.lastVerification) {
    lines.push(`  last verification ${v.lastVerification.at}: ${v.lastVerification.ok ? 'ok' : v.lastVerification.problems.join('; ')}`);
  }
  lines.push('; records to publish');
  for (const r of v.records) lines.push(`${r.zone}${r.note ? `  ; ${r.note}` : ''}`);
  return lines.join('\n');
}

/** Runs one `domains` sub-command against Redis; answers the text to print. */
export async function runDomainsCommand(
  cfg: Config,
  redis: Redis,
  sub: string,
  args: string[],
  opts: { ed25519?: boolean; bits?: string; json?: boolean },
  usage: (message: string) => Error,
): Promise<string> {
  const service = new DomainService({
    config: cfg,
    store: new DomainStore(redis, createKeys(cfg.redis.prefix)),
    vault: await loadKeyVault(cfg.domainKeys),
    resolver: createResolver(cfg.dns),
    clock: systemClock,
  });
  const [domain, selector] = args;
  const need = (what: string, v: string | undefined): string => {
    if (!v) throw usage(`domains ${sub}: the ${what} is required`);
    return v;
  };
  const show = (v: DomainView): string => (opts.json ? JSON.stringify(v, null, 2) : formatDomain(v));
  switch (sub) {
    case 'add': {
      const bits = opts.bits === undefined ? undefined : Number(opts.bits);
      return show(service.view(await service.add(need('DOMAIN', domain), { ed25519: opts.ed25519, rsaBits: bits })));
    }
    case 'list': {
      const all = await service.list();
      return all.length ? all.map((d) => `${d.name}\t${d.state}`).join('\n') : 'no runtime-managed sender domains';
    }
    case 'show':
      return show(service.view(await service.get(need('DOMAIN', domain))));
    case 'verify':
      return show(service.view((await service.verify(need('DOMAIN', domain))).domain));
    case 'rotate':
      return show(service.view(await service.rotate(need('DOMAIN', domain))));
    case 'revoke':
      return show(service.view(await service.revoke(need('DOMAIN', domain), need('SELECTOR', selector))));
    case 'remove':
      return show(service.view(await service.remove(need('DOMAIN', domain))));
    case 'rewrap': {
      const r = await service.rewrap();
      return `re-sealed ${r.keys} key(s) of ${r.domains} domain(s) under master key ${(await loadKeyVault(cfg.domainKeys))?.keyId}`;
    }
    default:
      throw usage(`unknown command: domains ${sub}`);
  }
}
