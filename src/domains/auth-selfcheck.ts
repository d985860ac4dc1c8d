import { randomUUID } from 'node:crypto';
import { dkimVerify, dmarc } from 'mailauth';
import { spf } from 'mailauth/lib/spf/index.js';
import { allSendingIps } from '../config/ip-pools-schema.js';
import type { Config } from '../config/schema.js';
import type { DnsResolver } from '../delivery/resolver.js';
import type { DkimSigner } from '../dkim/signer.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { DomainStore } from '../store/domain-store.js';
import type { SelfCheckOutcome, SelfCheckResult, SelfCheckStore } from '../store/selfcheck-store.js';

export interface AuthSelfCheckDeps {
  config: Config;
  /** Its change counter: a bump (key added, verified, rotated, revoked) makes every domain due at once. */
  domains: DomainStore;
  results: SelfCheckStore;
  /** The live signer: configured keys and the runtime-managed ones this gateway loaded. */
  signer: DkimSigner;
  resolver: DnsResolver;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
}

/** Longest a check may take before another worker may take the domain over. */
const LOCK_MS = 60_000;
const CHECKS = ['dkim', 'spf', 'dmarc'] as const;

/**
 * The continuous authentication self-check (role worker): for each domain the signer can sign for, every
 * `domainKeys.selfCheck.intervalSeconds` and after every change of the sender domains, a probe message is signed
 * with the live key(s) and verified with mailauth against DNS: DKIM passes with the published key, SPF of the
 * MAIL FROM domain (bounce.domain) authorises every sending IP, DMARC of the From domain passes. A Redis lock lets
 * one worker of the cluster check a domain at a time; every worker exports the latest shared result.
 */
export class AuthSelfCheck {
  private readonly owner = randomUUID();
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private exported = new Set<string>();
  private failing = new Map<string, string>();
  private closed = false;

  constructor(private readonly deps: AuthSelfCheckDeps) {
    this.intervalMs = deps.config.domainKeys.selfCheck.intervalSeconds * 1000;
  }

  /** Checks now, then polls a few times per interval (at most every 5 s) for due domains. */
  start(): void {
    const tickMs = Math.min(5000, Math.max(100, this.intervalMs / 4));
    this.timer = setInterval(() => void this.trigger(), tickMs);
    this.timer.unref();
    void this.trigger();
  }

  /** Runs a pass now (after a domain change); a pass already running is followed by one more. */
  trigger(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.pass()
      .catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'auth self-check: pass failed; retrying at the next tick'))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          void this.trigger();
        }
      });
    return this.running;
  }

  /** Stops polling; a pass under way stops before its next domain (waited for at most 2 s: DNS may be slow). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
  }

  private async pass(): Promise<void> {
    const { results, clock } = this.deps;
    const domains = this.deps.signer.domains();
    const version = await this.deps.domains.version();
    const latest = await results.all();
    for (const domain of domains) {
      if (this.closed) return;
      const last = latest.get(domain);
      const due = !last || last.version !== version || clock.now() - last.at >= this.intervalMs;
      if (!due || !(await results.lock(domain, this.owner, LOCK_MS))) continue;
      try {
        const result = await this.check(domain, version);
        await results.put(result);
        latest.set(domain, result);
      } finally {
        await results.unlock(domain, this.owner);
      }
    }
    this.export(domains, latest);
  }

  /** Sets the gauge from the shared results; drops the series of domains that are no longer checked. */
  private export(domains: string[], latest: Map<string, SelfCheckResult>): void {
    const gauge = this.deps.metrics.authSelfCheck;
    const now = new Set<string>();
    for (const domain of domains) {
      const r = latest.get(domain);
      if (!r) continue;
      for (const c of r.checks) {
        gauge.set({ domain, check: c.check }, c.ok ? 1 : 0);
        now.add(`${domain}\n${c.check}`);
        const key = `${domain} ${c.check}`;
        if (!c.ok && this.failing.get(key) !== c.reason) this.deps.logger.warn({ domain, check: c.check, reason: c.reason }, 'auth self-check failed');
        if (c.ok && this.failing.has(key)) this.deps.logger.info({ domain, check: c.check }, 'auth self-check passes again');
        if (c.ok) this.failing.delete(key);
        else this.failing.set(key, c.reason ?? '');
      }
    }
    for (const series of this.exported) {
      if (now.has(series)) continue;
      const [domain, check] = series.split('\n');
      gauge.remove({ domain, check });
    }
    this.exported = now;
  }

  /** Signs a probe for `domain` with its live key(s) and verifies DKIM, SPF and DMARC against DNS. */
  async check(domain: string, version: number): Promise<SelfCheckResult> {
    const { config, resolver, clock } = this.deps;
    const lookup = (name: string, rrtype: string) => resolver.resolve(name, rrtype) as Promise<never>;
    const now = clock.now();
    const bounce = config.bounce.domain;
    const probe = [
      `From: Kurir self-check <selfcheck@${domain}>`,
      `To: <selfcheck@${bounce}>`,
      'Subject: Kurir authentication self-check',
      `Date: ${new Date(now).toUTCString()}`,
      `Message-ID: <selfcheck.${now}.${randomUUID()}@${domain}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'A probe signed with the live DKIM key and verified against DNS; it is never sent.',
      '',
    ].join('\r\n');
    const checks: SelfCheckOutcome[] = [];
    const passing: Array<{ id: string; domain: string; aligned?: string | false }> = [];
    try {
      const signed = await this.deps.signer.sign(Buffer.from(probe), domain);
      const verified = await dkimVerify(signed.message, { resolver: lookup, curTime: new Date(now) });
      const bad = verified.results.filter((r) => r.status.result !== 'pass');
      for (const r of verified.results) if (r.status.result === 'pass') passing.push({ id: r.id, domain: r.signingDomain, aligned: r.status.aligned });
      checks.push(
        bad.length || !verified.results.length
          ? {
              check: 'dkim',
              ok: false,
              reason:
                bad.map((r) => `DKIM ${r.selector}._domainkey.${domain}: ${r.status.result}${r.status.comment ? ` (${r.status.comment})` : ''}`).join('; ') ||
                'no signature',
            }
          : { check: 'dkim', ok: true },
      );
    } catch (err) {
      checks.push({ check: 'dkim', ok: false, reason: `signing failed: ${(err as Error).message}` });
    }
    const ips = allSendingIps(config.domainKeys.sendingIps, config.delivery.ipPools).map((entry) => entry.split('/')[0]);
    let spfOk = false;
    if (ips.length) {
      const failures: string[] = [];
      for (const ip of ips) {
        const r = await spf({ sender: `selfcheck@${bounce}`, ip, helo: config.hostname, mta: config.hostname, resolver: lookup });
        if (r.status.result !== 'pass') failures.push(`SPF of ${bounce} (MAIL FROM) gives ${r.status.result} for ${ip}`);
      }
      spfOk = failures.length === 0;
      checks.push(spfOk ? { check: 'spf', ok: true } : { check: 'spf', ok: false, reason: failures.join('; ') });
    }
    const d = await dmarc({ headerFrom: `selfcheck@${domain}`, spfDomains: spfOk ? [bounce] : [], dkimDomains: passing, resolver: lookup });
    const result = d ? d.status.result : 'none';
    const why =
      result === 'none'
        ? `no DMARC record at _dmarc.${domain}`
        : result === 'temperror'
          ? `the DMARC record could not be read (${d ? (d.error ?? '') : ''})`
          : `neither a passing DKIM signature (d=${domain}) nor SPF (MAIL FROM @${bounce}) aligns with ${domain}`;
    checks.push(result === 'pass' ? { check: 'dmarc', ok: true } : { check: 'dmarc', ok: false, reason: `DMARC ${result}: ${why}` });
    checks.sort((a, b) => CHECKS.indexOf(a.check) - CHECKS.indexOf(b.check));
    return { domain, at: now, version, ok: checks.every((c) => c.ok), checks };
  }
}
