import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import { httpsPolicyFetcher } from '../delivery/mta-sts-fetch.js';
import { createResolver } from '../delivery/resolver.js';
import { Doctor } from '../domains/doctor/doctor.js';
import type { DoctorReport } from '../domains/doctor/report.js';
import { systemClock } from '../lib/clock.js';
import { DomainStore } from '../store/domain-store.js';
import { createKeys } from '../store/keys.js';
import { SelfCheckStore } from '../store/selfcheck-store.js';

/** Usage lines of `kurir doctor`. */
export const DOCTOR_USAGE = `  doctor DOMAIN [--json]             check SPF, DKIM, DMARC, bounce MX, PTR/HELO, MTA-STS, TLS-RPT and blocklists
                                     of a sender domain; exit code 0 all pass, 1 a warning, 2 a failure`;

const MARK = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' } as const;

/** A doctor report as text: one line per check, then why and the fix for every check that did not pass. */
export function formatDoctor(r: DoctorReport): string {
  const lines = [`${r.domain} (${r.source === 'config' ? 'configured' : 'runtime-managed'}): ${MARK[r.result]}`];
  for (const c of r.checks) {
    lines.push(`${MARK[c.status]}  ${c.id}: ${c.summary}`);
    if (c.status !== 'pass') {
      lines.push(`      why: ${c.why}`);
      if (c.fix) lines.push(`      fix: ${c.fix}`);
    }
  }
  if (r.selfCheck) {
    const failed = r.selfCheck.checks.filter((c) => !c.ok);
    lines.push(`self-check ${r.selfCheck.at}: ${failed.length ? failed.map((c) => `${c.check} FAIL (${c.reason ?? ''})`).join('; ') : 'pass'}`);
  }
  const count = (s: string) => r.checks.filter((c) => c.status === s).length;
  lines.push(`${count('pass')} pass, ${count('warn')} warn, ${count('fail')} fail`);
  return lines.join('\n');
}

/** Runs the doctor for one domain through the configured DNS resolver; answers the report. */
export async function runDoctor(cfg: Config, redis: Redis, domain: string): Promise<DoctorReport> {
  const resolver = createResolver(cfg.dns);
  const keys = createKeys(cfg.redis.prefix);
  const doctor = new Doctor({
    config: cfg,
    store: new DomainStore(redis, keys),
    selfChecks: new SelfCheckStore(redis, keys),
    resolver,
    clock: systemClock,
    fetchPolicy: httpsPolicyFetcher({ resolver, timeoutMs: cfg.delivery.mtaSts.fetchTimeoutSeconds * 1000 }),
  });
  return doctor.examine(domain);
}
