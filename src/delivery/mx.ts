import type { DnsResolver } from './resolver.js';

export interface MxHost {
  exchange: string;
  priority: number;
  addresses: string[];
}

/** Where mail for a domain goes, as data: hosts to try, or why there are none. */
export type Route =
  | { kind: 'hosts'; hosts: MxHost[]; implicit: boolean }
  | { kind: 'null-mx' }
  | { kind: 'no-domain'; reason: string }
  | { kind: 'temp-error'; reason: string };

function code(err: unknown): string {
  return (err as { code?: string })?.code ?? 'EUNKNOWN';
}

async function addressesOf(resolver: DnsResolver, host: string): Promise<{ addresses: string[]; error?: string }> {
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
  const addresses = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
  const failures = [v4, v6].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => code(r.reason));
  const temporary = failures.find((c) => c !== 'ENOTFOUND' && c !== 'ENODATA');
  return { addresses, error: addresses.length ? undefined : (temporary ?? failures[0]) };
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

/**
 * Resolves a recipient domain to MX hosts in preference order (equal preferences shuffled), per RFC 5321
 * 5.1: no MX records → the domain's own A/AAAA is an implicit MX; a null MX (RFC 7505) → no mail accepted;
 * a name that does not exist → permanent; SERVFAIL, timeouts → temporary.
 */
export async function resolveRoute(resolver: DnsResolver, domain: string): Promise<Route> {
  let records: Array<{ exchange: string; priority: number }>;
  try {
    records = await resolver.resolveMx(domain);
  } catch (err) {
    const c = code(err);
    if (c === 'ENOTFOUND') return { kind: 'no-domain', reason: `${domain}: domain does not exist (NXDOMAIN)` };
    if (c !== 'ENODATA') return { kind: 'temp-error', reason: `${domain}: MX lookup failed (${c})` };
    records = [];
  }
  if (records.length === 1 && (records[0].exchange === '' || records[0].exchange === '.')) return { kind: 'null-mx' };
  if (!records.length) {
    const { addresses, error } = await addressesOf(resolver, domain);
    if (addresses.length) return { kind: 'hosts', hosts: [{ exchange: domain, priority: 0, addresses }], implicit: true };
    if (error === 'ENOTFOUND' || error === 'ENODATA') return { kind: 'no-domain', reason: `${domain}: no MX and no A/AAAA records` };
    return { kind: 'temp-error', reason: `${domain}: address lookup failed (${error})` };
  }
  const byPriority = new Map<number, string[]>();
  for (const r of records.filter((r) => r.exchange && r.exchange !== '.')) {
    byPriority.set(r.priority, [...(byPriority.get(r.priority) ?? []), r.exchange.toLowerCase().replace(/\.$/, '')]);
  }
  const ordered = [...byPriority.keys()].sort((a, b) => a - b).flatMap((p) => shuffle(byPriority.get(p) ?? []).map((exchange) => ({ exchange, priority: p })));
  const resolved = await Promise.all(ordered.map(async (h) => ({ ...h, ...(await addressesOf(resolver, h.exchange)) })));
  const hosts = resolved.filter((h) => h.addresses.length).map(({ exchange, priority, addresses }) => ({ exchange, priority, addresses }));
  if (hosts.length) return { kind: 'hosts', hosts, implicit: false };
  // MX hosts without addresses are usually a transient fault at the receiver: retry until the TTL.
  return { kind: 'temp-error', reason: `${domain}: no MX host address could be resolved` };
}
