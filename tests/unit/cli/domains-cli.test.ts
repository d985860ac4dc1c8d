/** `kurir domains ...` against real Redis and the loopback DNS server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, UsageError } from '../../../src/cli/main.js';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';
import { dropPrefix } from '../../helpers/test-gateway.js';

const prefix = `kurir-test-dcli-${Math.random().toString(36).slice(2, 8)}`;
const ENV = {
  KURIR_REDIS__PREFIX: prefix,
  KURIR_DOMAIN_KEYS__MASTER_KEY: 'f'.repeat(64),
  KURIR_DOMAIN_KEYS__SENDING_IPS: '[192.0.2.10]',
};
let dns: DnsServer;

beforeAll(async () => {
  dns = await startDnsServer({});
  Object.assign(process.env, ENV, { KURIR_DNS__SERVERS: `["${dns.address}"]`, KURIR_DNS__TIMEOUT_SECONDS: '1' });
});
afterAll(async () => {
  for (const k of [...Object.keys(ENV), 'KURIR_DNS__SERVERS', 'KURIR_DNS__TIMEOUT_SECONDS']) delete process.env[k];
  await dropPrefix(prefix);
  await dns.close();
});

describe('kurir domains', () => {
  it('adds a domain and prints the zone lines to publish; verify activates it once DNS serves the key', async () => {
    const out = await runCli(['domains', 'add', 'cli.test']);
    expect(out).toMatch(/^cli\.test: pending-dns/);
    const dkim = out.split('\n').find((l) => l.includes('._domainkey.cli.test. IN TXT ('))!;
    expect(dkim).toMatch(/^k\d{4}m\d{2}\._domainkey\.cli\.test\. IN TXT \( "v=DKIM1; k=rsa; p=[^"]{200,}" "[^"]+" \) {2}; publish, then verify/);
    expect(out).toContain('cli.test. IN TXT "v=spf1 ip4:192.0.2.10 -all"');
    expect(out).not.toMatch(/PRIVATE KEY/);
    expect(await runCli(['domains', 'list'])).toBe('cli.test\tpending-dns');

    const pending = await runCli(['domains', 'verify', 'cli.test']);
    expect(pending).toMatch(/last verification .*NXDOMAIN/);
    const view = JSON.parse(await runCli(['domains', 'show', 'cli.test', '--json']));
    const rec = view.records.find((r: any) => r.purpose === 'dkim');
    dns.set(rec.name, 'TXT', [rec.strings]);
    expect(await runCli(['domains', 'verify', 'cli.test'])).toMatch(/^cli\.test: active/);
    expect(await runCli(['domains', 'rewrap'])).toMatch(/^re-sealed 0 key\(s\) of 0 domain\(s\) under master key [0-9a-f]{16}$/);
  });

  it('refuses missing arguments with a usage error and unknown domains with a clear one', async () => {
    await expect(runCli(['domains', 'verify'])).rejects.toThrow(UsageError);
    await expect(runCli(['domains', 'revoke', 'cli.test'])).rejects.toThrow(/SELECTOR is required/);
    await expect(runCli(['domains', 'show', 'nosuch.test'])).rejects.toThrow(/not a runtime-managed sender domain/);
  });
});
