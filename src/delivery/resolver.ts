import { promises as dns } from 'node:dns';

/** The one DNS door: every lookup Kurir makes goes through an instance of this, built from config. */
export interface DnsResolver {
  resolveMx(name: string): Promise<Array<{ exchange: string; priority: number }>>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
  /** mailauth's `resolver` option has this shape (as dns.promises.resolve). */
  resolve(name: string, rrtype: string): Promise<unknown>;
}

/** Builds a resolver on the configured servers (`ip` or `ip:port`), or the system's when none are given. */
export function createResolver(opts: { servers: readonly string[]; timeoutSeconds: number; tries: number }): DnsResolver {
  const r = new dns.Resolver({ timeout: Math.round(opts.timeoutSeconds * 1000), tries: opts.tries });
  if (opts.servers.length) r.setServers([...opts.servers]);
  return {
    resolveMx: (name) => r.resolveMx(name),
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
