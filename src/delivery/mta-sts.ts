import { parsePolicy, resolvePolicy } from 'mailauth/lib/mta-sts.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics, MtaStsLookupResult, MtaStsMode } from '../metrics/metrics.js';
import type { MtaStsStore, StoredMtaStsPolicy } from '../store/mta-sts-store.js';
import { PolicyFetchError, type PolicyFetcher } from './mta-sts-fetch.js';
import type { DnsResolver } from './resolver.js';
import type { SmtpTarget } from './smtp-client.js';
import type { TlsFailureType } from './tls-failure.js';

export interface MtaStsDeps {
  resolver: DnsResolver;
  store: MtaStsStore;
  fetch: PolicyFetcher;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  /** After a failed fetch, the same policy id is not fetched again for this long. */
  fetchRetrySeconds: number;
}

/** The policy that applies to one delivery attempt (null: none), and how it was found. */
export interface PolicyLookup {
  policy: StoredMtaStsPolicy | null;
  result: MtaStsLookupResult;
}

/** A delivery target under a policy: `policyMismatch` marks an MX host the policy does not list (testing mode). */
export type PolicyTarget<T extends SmtpTarget> = T & { policyMismatch?: boolean };

/** What a policy makes of the MX targets of one attempt. */
export type AppliedPolicy<T extends SmtpTarget> = { mode: MtaStsMode | null; targets: Array<PolicyTarget<T>> } | { mode: 'enforce'; refusal: string };

/**
 * RFC 8461 section 4.1: an MX host matches a pattern when equal to it (case-insensitive), or, for `*.example.com`,
 * when it is exactly one label in front of `example.com` (not `example.com` itself, not `a.b.example.com`).
 */
export function mxMatches(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((raw) => {
    const p = raw.toLowerCase().trim().replace(/\.$/, '');
    if (!p.startsWith('*.')) return h === p;
    const suffix = p.slice(1);
    const label = h.slice(0, -suffix.length);
    return h.endsWith(suffix) && label.length > 0 && !label.includes('.');
  });
}

/** Policy discovery with a Redis cache (RFC 8461 sections 3 and 5) kept a minute in each process, one lookup per delivery attempt. */
export class MtaStsPolicies {
  constructor(private readonly deps: MtaStsDeps) {}

  /**
   * The policy of `domain`: the TXT record `_mta-sts.<domain>` gives the current policy id; the cached policy is
   * used while its id matches (or while the TXT record cannot be read or is gone, as section 3.3 says), a new one
   * is fetched when the id changed or nothing is cached. A failed fetch falls back to the cached policy, else to
   * none; it is counted in kurir_tls_failures_total with `provider` and not retried for `fetchRetrySeconds`.
   */
  async lookup(domain: string, provider: string): Promise<PolicyLookup> {
    const found = await this.find(domain.toLowerCase(), provider);
    this.deps.metrics.mtaStsLookups.inc({ result: found.result });
    return found;
  }

  private async find(domain: string, provider: string): Promise<PolicyLookup> {
    const { store, clock } = this.deps;
    let cached = await store.get(domain, clock.now());
    let id: string | false;
    try {
      id = await resolvePolicy(domain, { resolver: (name: string, type: string) => this.deps.resolver.resolve(name, type) as Promise<never> });
    } catch (err) {
      // Several v=STSv1 records: the domain has no usable policy record (section 3.1). Anything else is a DNS failure.
      if ((err as { code?: string }).code !== 'multi_sts_records') return cached ? { policy: cached, result: 'cached' } : { policy: null, result: 'dns-error' };
      id = false;
    }
    if (!id) return cached ? { policy: cached, result: 'cached' } : { policy: null, result: 'not-found' };
    // This process's copy is older than the TXT record's id: another gateway may have fetched the policy already.
    if (cached?.id !== id) cached = await store.get(domain, clock.now(), true);
    if (cached?.id === id) return { policy: cached, result: 'cached' };
    if (await store.fetchFailedRecently(domain, id))
      return cached ? { policy: cached, result: 'cached-fetch-failed' } : { policy: null, result: 'fetch-failed' };
    try {
      const text = await this.deps.fetch(domain);
      let parsed: ReturnType<typeof parsePolicy>;
      try {
        parsed = parsePolicy(text);
      } catch (err) {
        throw new PolicyFetchError(`invalid policy: ${(err as Error).message}`, 'sts-policy-invalid');
      }
      const policy: StoredMtaStsPolicy = { id, mode: parsed.mode, mx: parsed.mx ?? [], maxAge: parsed.maxAge ?? 0, fetchedAt: clock.now() };
      await store.put(domain, policy);
      return { policy, result: 'fetched' };
    } catch (err) {
      const type = err instanceof PolicyFetchError ? err.resultType : 'sts-policy-fetch-error';
      this.deps.metrics.tlsFailures.inc({ provider, result_type: type });
      this.deps.logger.warn({ domain, id, resultType: type, err: (err as Error).message, cached: cached?.id ?? null }, 'mta-sts: policy fetch failed');
      await store.markFetchFailed(domain, id, this.deps.fetchRetrySeconds);
      return cached ? { policy: cached, result: 'cached-fetch-failed' } : { policy: null, result: 'fetch-failed' };
    }
  }

  /**
   * Applies the policy of `domain` to its MX targets (`servername` is the MX host name). `enforce`: only listed MX
   * hosts, each with STARTTLS required and the certificate verified against the MX name; none listed → a refusal
   * (the attempt is deferred, counted as `validation-failure`). `testing`: all targets as they are, unlisted ones
   * marked so the session is counted as a failure. `none` or no policy: unchanged.
   */
  async apply<T extends SmtpTarget>(domain: string, provider: string, targets: T[]): Promise<AppliedPolicy<T>> {
    const { policy } = await this.lookup(domain, provider);
    if (!policy || policy.mode === 'none') return { mode: null, targets };
    const listed = (t: T): boolean => mxMatches(t.servername ?? t.host, policy.mx);
    if (policy.mode === 'testing') return { mode: 'testing', targets: targets.map((t) => (listed(t) ? t : { ...t, policyMismatch: true })) };
    const allowed = targets.filter(listed);
    if (!allowed.length) {
      this.countSession('enforce', provider, 'validation-failure');
      const hosts = [...new Set(targets.map((t) => t.servername ?? t.host))].join(', ');
      return {
        mode: 'enforce',
        refusal: `MTA-STS policy of ${domain} (enforce): no MX host matches (MX ${hosts}; policy mx ${policy.mx.join(', ')}); not sent`,
      };
    }
    const by = `MTA-STS policy of ${domain}, enforce`;
    return { mode: 'enforce', targets: allowed.map((t) => ({ ...t, secure: false, requireTls: true, verifyTls: true, tlsRequiredBy: by })) };
  }

  /** Counts one session (or enforce-mode refusal to open one) under a policy; a failure also by its RFC 8460 type. */
  countSession(mode: MtaStsMode, provider: string, failure: TlsFailureType | undefined): void {
    this.deps.metrics.mtaStsSessions.inc({ mode, result: failure ? 'failure' : 'success' });
    if (failure) this.deps.metrics.tlsFailures.inc({ provider, result_type: failure });
  }
}
