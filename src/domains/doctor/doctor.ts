import { readFile } from 'node:fs/promises';
import type { Config } from '../../config/schema.js';
import type { PolicyFetcher } from '../../delivery/mta-sts-fetch.js';
import type { DnsResolver } from '../../delivery/resolver.js';
import { loadPrivateKey } from '../../dkim/keys.js';
import { normalizeDomain } from '../../lib/address.js';
import type { Clock } from '../../lib/clock.js';
import { KurirError, toKurirError } from '../../lib/errors.js';
import type { DomainStore } from '../../store/domain-store.js';
import type { SelfCheckStore } from '../../store/selfcheck-store.js';
import { dkimChecks, dmarcChecks } from './auth-checks.js';
import { spfChecks } from './spf-checks.js';
import { blocklistChecks, bounceMxCheck, mtaStsCheck, tlsRptCheck } from './host-checks.js';
import { reverseDnsChecks } from './rdns-checks.js';
import { type DoctorCheck, type DoctorContext, type DoctorKey, type DoctorReport, exitCodeOf, worstStatus } from './report.js';

export interface DoctorDeps {
  config: Config;
  store: DomainStore;
  resolver: DnsResolver;
  fetchPolicy: PolicyFetcher;
  clock: Clock;
  /** The self-check results, to show the latest one with the report. */
  selfChecks?: SelfCheckStore;
}

/**
 * The deliverability doctor: checks one sender domain (configured or runtime-managed) against DNS the way
 * Gmail, Yahoo and Microsoft do for bulk senders, and answers each finding with why it matters and the fix.
 */
export class Doctor {
  constructor(private readonly deps: DoctorDeps) {}

  /** @throws KurirError NOT_FOUND for a domain that is neither configured nor runtime-managed */
  async examine(domain: string): Promise<DoctorReport> {
    const name = normalizeDomain(domain, 'domain');
    const { keys, keyProblem, source, mtaStsMx, state } = await this.keysOf(name);
    const ctx: DoctorContext = {
      domain: name,
      keys,
      keyProblem,
      state,
      config: this.deps.config,
      resolver: this.deps.resolver,
      fetchPolicy: this.deps.fetchPolicy,
      mtaStsMx,
    };
    const bounce = this.deps.config.bounce.domain;
    const groups = await Promise.all([
      spfChecks(ctx, name, 'From domain'),
      bounce === name ? Promise.resolve<DoctorCheck[]>([]) : spfChecks(ctx, bounce, 'MAIL FROM (bounce) domain'),
      dkimChecks(ctx),
      dmarcChecks(ctx),
      bounceMxCheck(ctx).then((c) => [c]),
      reverseDnsChecks(ctx),
      mtaStsCheck(ctx).then((c) => [c]),
      tlsRptCheck(ctx).then((c) => [c]),
      blocklistChecks(ctx),
    ]);
    const checks = groups.flat();
    const result = worstStatus(checks.map((c) => c.status));
    const report: DoctorReport = {
      domain: name,
      source,
      checkedAt: new Date(this.deps.clock.now()).toISOString(),
      result,
      exitCode: exitCodeOf(result),
      checks,
    };
    const last = await this.deps.selfChecks?.get(name).catch(() => null);
    if (last) report.selfCheck = { at: new Date(last.at).toISOString(), ok: last.ok, checks: last.checks };
    return report;
  }

  private async keysOf(name: string): Promise<{ keys: DoctorKey[]; keyProblem?: string; source: 'config' | 'runtime'; mtaStsMx?: string[]; state?: string }> {
    const declared = this.deps.config.domains.find((d) => d.name.toLowerCase() === name);
    if (declared) {
      const keys: DoctorKey[] = [];
      for (const k of declared.dkim) {
        try {
          const loaded = loadPrivateKey(await readFile(k.privateKeyFile, 'utf8'));
          keys.push({ selector: k.selector, algorithm: k.algorithm, publicKeyBase64: loaded.publicKeyBase64, status: 'active' });
        } catch (err) {
          return { keys: [], source: 'config', keyProblem: `DKIM key file ${k.privateKeyFile} (selector ${k.selector}): ${(err as Error).message}` };
        }
      }
      return { keys, source: 'config' };
    }
    const d = await this.deps.store.get(name).catch((err: unknown) => {
      throw toKurirError(err);
    });
    if (!d || d.state === 'removed')
      throw new KurirError('NOT_FOUND', `domain: ${name} is not a sender domain (neither in domains[] nor runtime-managed)`, { field: 'domain' });
    const pick = (status: 'active' | 'pending'): DoctorKey[] =>
      d.keys.filter((k) => k.status === status).map((k) => ({ selector: k.selector, algorithm: k.algorithm, publicKeyBase64: k.publicKeyBase64, status }));
    // Without an active key the waiting ones are shown (their DNS status), never counted as signing.
    const active = pick('active');
    return { keys: active.length ? active : pick('pending'), source: 'runtime', mtaStsMx: d.mtaStsMx, state: d.state };
  }
}
