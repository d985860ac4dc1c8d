/**
 * DKIM signing and runtime sender domains, for the processes that sign (intake, api, placement) or run the
 * authentication self-check (worker): the key vault, the domain directory kept current from Redis, the
 * signer (with its thread pool) and the self-check.
 */
import { createResolver } from '../delivery/resolver.js';
import { loadSigningKeys } from '../dkim/config-keys.js';
import { loadKeyVault, type KeyVault } from '../dkim/key-vault.js';
import { SignPool, signingThreadsFor } from '../dkim/sign-pool.js';
import { createDkimSigner, type DkimSigner } from '../dkim/signer.js';
import { AuthSelfCheck } from '../domains/auth-selfcheck.js';
import { DomainDirectory } from '../domains/domain-directory.js';
import { DomainStore } from '../store/domain-store.js';
import { SelfCheckStore } from '../store/selfcheck-store.js';
import type { Core } from './core.js';

export interface Signing {
  vault: KeyVault | null;
  domainStore: DomainStore;
  directory: DomainDirectory;
  signer: DkimSigner;
}

/** Whether this process signs mail: intake, api, and placement (its probes go through the same intake). */
export function needsIntake(core: Core): boolean {
  const roles = core.config.roles;
  return roles.includes('intake') || roles.includes('api') || roles.includes('placement');
}

/**
 * Starts signing and the self-check when this process's roles need them (null otherwise); what it starts is
 * pushed onto `closers`.
 */
export async function startSigning(core: Core, closers: Array<() => Promise<void>>): Promise<Signing | null> {
  const { config, redis, keys, logger, clock, metrics, opts } = core;
  const signs = needsIntake(core);
  const selfCheckOn = config.roles.includes('worker') && config.domainKeys.selfCheck.enabled;
  if (!signs && !selfCheckOn) return null;
  let selfCheck: AuthSelfCheck | undefined;
  // Set once the signer exists: a reload sends new keys to the signing threads and drops revoked ones.
  let keysChanged = (): void => undefined;
  // Runtime-managed sender domains: keys sealed in Redis, reloaded by every gateway when they change.
  const vault = await loadKeyVault(config.domainKeys);
  const domainStore = new DomainStore(redis, keys);
  const directory = new DomainDirectory({
    store: domainStore,
    vault,
    logger,
    refreshMs: config.domainKeys.refreshSeconds * 1000,
    // A key or domain change: new keys to the signing threads (revoked ones dropped), and a self-check of
    // the domains at once rather than at the next interval. The first load and every change also pre-set the
    // domains' metric series at 0, as for configured ones (docs/metrics.md).
    onReload: (records) => {
      metrics.presetSenderDomains(records.filter((r) => r.state !== 'removed').map((r) => r.name));
      keysChanged();
      void selfCheck?.trigger();
    },
  });
  await directory.start();
  closers.push(async () => directory.close());
  const signingThreads = signs ? signingThreadsFor(config.dkim.signingThreads) : 0;
  const signPool = signingThreads > 0 ? await SignPool.start({ threads: signingThreads, logger }) : undefined;
  if (signPool) closers.push(() => signPool.close());
  const signer = createDkimSigner({ keys: await loadSigningKeys(config, logger), clock: () => new Date(clock.now()), source: directory, engine: signPool });
  if (signPool) {
    signPool.sync(signer.liveKeys());
    keysChanged = () => signPool.sync(signer.liveKeys());
  }
  if (selfCheckOn) {
    const checker = new AuthSelfCheck({
      config,
      domains: domainStore,
      results: new SelfCheckStore(redis, keys),
      signer,
      // Uncached, so a changed DNS record is seen at the next check rather than after its TTL.
      resolver: opts.resolver ?? createResolver({ ...config.dns, cache: undefined }),
      metrics,
      logger,
      clock,
    });
    selfCheck = checker;
    checker.start();
    closers.push(() => checker.close());
  }
  return { vault, domainStore, directory, signer };
}
