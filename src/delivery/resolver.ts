import { promises as dns } from 'node:dns';
import { systemClock, type Clock } from '../lib/clock.js';
import { DnsCache, type DnsCacheOptions, recordsOf } from './dns-cache.js';
import { wireQuery } from './dns-wire.js';

/** The one DNS door: every lookup Kurir makes goes through an instance of this, built from config. */
export interface DnsResolver {
  resolveMx(name: string): Promise<Array<{ exchange: string; priority: number }>>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
  /** mailauth's `resolver` option has this shape (as dns.promises.resolve). */
  resolve(name: string, rrtype: string): Promise<unknown>;
}

/**
 * Builds a resolver on the configured servers (`ip` or `ip:port`), or the system's when none are given.
 * With `cache` (and `enabled`), MX, A, AAAA and TXT lookups (MTA-STS, DKIM keys of feedback reports) go
 * through a TTL-honouring cache (dns-cache.ts); other types always ask the DNS.
 */
export function createResolver(
  opts: { servers: readonly string[]; timeoutSeconds: number; tries: number; cache?: DnsCacheOptions & { enabled: boolean } },
  clock: Clock = systemClock,
): DnsResolver & { cache?: DnsCache } {
  const r = new dns.Resolver({ timeout: Math.round(opts.timeoutSeconds * 1000), tries: opts.tries });
  if (opts.servers.length) r.setServers([...opts.servers]);
  if (opts.cache?.enabled) {
    const servers = opts.servers.length ? [...opts.servers] : r.getServers();
    const wire = { timeoutMs: Math.round(opts.timeoutSeconds * 1000), tries: opts.tries };
    const cache = new DnsCache(opts.cache, clock, (name, type) => wireQuery(servers, name, type, wire));
    return {
      cache,
      resolveMx: async (name) => recordsOf(await cache.lookup(name, 'MX'), name),
      resolve4: async (name) => recordsOf(await cache.lookup(name, 'A'), name),
      resolve6: async (name) => recordsOf(await cache.lookup(name, 'AAAA'), name),
      resolveTxt: async (name) => recordsOf(await cache.lookup(name, 'TXT'), name),
      resolve: async (name, rrtype) => {
        const type = rrtype.toUpperCase();
        if (type === 'MX' || type === 'A' || type === 'AAAA' || type === 'TXT') return recordsOf(await cache.lookup(name, type), name);
        return r.resolve(name, rrtype as 'A') as Promise<unknown>;
      },
    };
  }
  return {
    // Node 24 adds `type: 'MX'` to each record: answer the interface's shape, as the cache does, on every Node.
    resolveMx: async (name) => (await r.resolveMx(name)).map(({ exchange, priority }) => ({ exchange, priority })),
    resolve4: (name) => r.resolve4(name),
    resolve6: (name) => r.resolve6(name),
    resolveTxt: (name) => r.resolveTxt(name),
    resolve: (name, rrtype) => r.resolve(name, rrtype as 'A') as Promise<unknown>,
  };
}

/** DNS error codes that mean "this name or record does not exist" rather than "try again later". */
export function isDnsNotFound(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
}
