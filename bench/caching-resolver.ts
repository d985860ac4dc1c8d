/**
 * A caching DNS forwarder (dnsmasq, Debian package `dnsmasq-base`) in front of the benchmark's loopback DNS
 * server, for rspamd. rspamd asks the same ~22 names for every message it scores (RBL lookups of the sending
 * IP, the HELO and envelope domains, DMARC), and its documentation asks for a local caching resolver next to
 * it (https://rspamd.com/doc/faq.html#resolver-setup); without one, each scored message costs the benchmark's
 * own uncached JavaScript DNS server about 22 answers on the same two cores as Kurir, which a production host
 * does not pay. Negative answers are cached for their SOA's TTL, as the benchmark's server sends one.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { freePort } from './gateway-child.js';

export interface CachingResolver {
  /** `127.0.0.1:PORT`, as rspamd's `dns.nameserver` takes it. */
  address: string;
  close(): Promise<void>;
}

/** Whether dnsmasq is installed (it is looked up on PATH and in /usr/sbin). */
export function dnsmasqPath(): string | undefined {
  for (const p of ['dnsmasq', '/usr/sbin/dnsmasq']) if (spawnSync(p, ['--version'], { stdio: 'ignore' }).status === 0) return p;
  return undefined;
}

/** Starts dnsmasq forwarding everything to `upstream` (`127.0.0.1:PORT`), caching answers; resolves once it listens. */
export async function startCachingResolver(bin: string, upstream: string): Promise<CachingResolver> {
  const port = await freePort();
  const [host, upPort] = upstream.split(':');
  const args = [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--pid-file=',
    `--port=${port}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    '--no-resolv',
    '--no-hosts',
    `--server=${host}#${upPort}`,
    '--cache-size=10000',
  ];
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // dnsmasq binds before it answers; a failed start exits at once with the reason on stderr.
  const started = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 300))]);
  if (!started) throw new Error(`dnsmasq did not start: ${stderr.trim() || 'no reason given'}`);
  return {
    address: `127.0.0.1:${port}`,
    async close() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
