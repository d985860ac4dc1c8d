import { allSendingIps, poolAddresses } from '../../config/ip-pools-schema.js';
import type { Config } from '../../config/schema.js';
import type { PolicyFetcher } from '../../delivery/mta-sts-fetch.js';
import type { DnsResolver } from '../../delivery/resolver.js';

/** The result of one check: `fail` breaks a bulk-sender requirement, `warn` weakens deliverability. */
export type CheckStatus = 'pass' | 'warn' | 'fail';

/** One finding of the doctor. */
export interface DoctorCheck {
  /** Stable id, e.g. `spf`, `spf-lookups`, `dkim:k2026m11`, `rdns:192.0.2.10`, `blocklist:192.0.2.10`. */
  id: string;
  status: CheckStatus;
  /** What was found. */
  summary: string;
  /** Why it matters for Gmail, Yahoo and Microsoft's bulk-sender requirements. */
  why: string;
  /** The exact fix (absent when the check passes). */
  fix?: string;
}

/** Everything the doctor found for one sender domain. */
export interface DoctorReport {
  domain: string;
  source: 'config' | 'runtime';
  checkedAt: string;
  /** The worst status of all checks. */
  result: CheckStatus;
  /** The CLI's exit code: 0 pass, 1 warn, 2 fail. */
  exitCode: 0 | 1 | 2;
  checks: DoctorCheck[];
  /** The latest continuous authentication self-check of the domain (role worker), when one ran. */
  selfCheck?: {
    at: string;
    ok: boolean;
    checks: Array<{ check: string; ok: boolean; reason?: string }>;
  };
}

/** A DKIM key the doctor compares with DNS (public part only). */
export interface DoctorKey {
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  publicKeyBase64: string;
  /** Pending keys are checked when the domain has no active key yet. */
  status: 'active' | 'pending';
}

/** What every check reads: the domain, its keys, the configuration and the one DNS door. */
export interface DoctorContext {
  domain: string;
  keys: DoctorKey[];
  /** Why no key could be read (a configured key file that is missing or invalid). */
  keyProblem?: string;
  /** A runtime-managed domain's state (pending-dns, suspended, ...): says why none of its keys signs. */
  state?: string;
  config: Config;
  resolver: DnsResolver;
  fetchPolicy: PolicyFetcher;
  /** A runtime-managed domain's own MTA-STS mx: list (PATCH mtaStsMx), for the fix Kurir proposes. */
  mtaStsMx?: string[];
}

const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };

/** The worst of some statuses (pass when there are none). */
export function worstStatus(statuses: Iterable<CheckStatus>): CheckStatus {
  let worst: CheckStatus = 'pass';
  for (const s of statuses) if (RANK[s] > RANK[worst]) worst = s;
  return worst;
}

/** The exit code of `kurir doctor` for a status: 0 pass, 1 warn, 2 fail. */
export function exitCodeOf(status: CheckStatus): 0 | 1 | 2 {
  return RANK[status] as 0 | 1 | 2;
}

/** mailauth's resolver option over the injected resolver. */
export function mailauthResolver(resolver: DnsResolver): (name: string, rrtype: string) => Promise<never> {
  return (name, rrtype) => resolver.resolve(name, rrtype) as Promise<never>;
}

/** The error code of a failed DNS lookup, in words. */
export function dnsProblem(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ENOTFOUND') return 'the name does not exist (NXDOMAIN)';
  if (code === 'ENODATA') return 'no record of this type';
  return `the lookup failed (${code ?? (err as Error).message})`;
}

/** A sending IP as the doctor checks it; `pool` and `helo` for the addresses of a source-IP pool (delivery.ipPools). */
export interface SendingAddress {
  ip: string;
  range: boolean;
  pool?: string;
  /** The HELO name sent from this address (a pool address's own, else absent: `hostname`). */
  helo?: string;
}

/**
 * The sending IPs: `domainKeys.sendingIps` as single addresses (a CIDR range stands for its first address),
 * then the pools' addresses not listed there. A listed address that is also in a pool carries the pool's HELO.
 */
export function sendingAddresses(config: Config): SendingAddress[] {
  const pooled = new Map(poolAddresses(config.delivery.ipPools).map((a) => [a.address.toLowerCase(), { pool: a.pool, helo: a.helo ?? config.hostname }]));
  const listed = config.domainKeys.sendingIps.map((entry): SendingAddress => {
    const [ip, bits] = entry.split('/');
    const range = bits !== undefined && bits !== (ip.includes(':') ? '128' : '32');
    const pool = range ? undefined : pooled.get(ip.toLowerCase());
    return { ip, range, ...(pool ?? {}) };
  });
  const seen = new Set(listed.map((a) => a.ip.toLowerCase()));
  const rest = [...pooled].filter(([ip]) => !seen.has(ip)).map(([ip, p]): SendingAddress => ({ ip, range: false, ...p }));
  return [...listed, ...rest];
}

/** The ip4:/ip6: mechanisms of the sending IPs (listed ranges as given, pool addresses one by one). */
export function spfMechanisms(config: Config): string[] {
  return allSendingIps(config.domainKeys.sendingIps, config.delivery.ipPools).map((ip) => `${ip.includes(':') ? 'ip6' : 'ip4'}:${ip}`);
}

/** The SPF record Kurir proposes for `domain` (the sending IPs, then -all). */
export function proposedSpf(config: Config): string {
  const mechanisms = spfMechanisms(config);
  return mechanisms.length ? `v=spf1 ${mechanisms.join(' ')} -all` : 'v=spf1 ip4:<your sending IP> -all';
}

/** `1.2.0.192.in-addr.arpa` / nibble `ip6.arpa` name of an address, without the suffix when `suffix` is given. */
export function reverseName(ip: string, suffix?: string): string {
  let labels: string;
  if (!ip.includes(':')) labels = ip.split('.').reverse().join('.');
  else {
    const [head, tail = ''] = ip.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    labels = groups
      .map((g) => g.padStart(4, '0'))
      .join('')
      .split('')
      .reverse()
      .join('.');
  }
  return `${labels}.${suffix ?? (ip.includes(':') ? 'ip6.arpa' : 'in-addr.arpa')}`;
}
