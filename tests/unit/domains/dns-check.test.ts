/**
 * The DKIM record check `verify` and the doctor's `dkim:<selector>` share (src/domains/dns-check.ts), against
 * the loopback DNS server, and what a receiver (mailauth's key lookup, which reads the first TXT record) makes
 * of the same answer. Found by an audit (1 Dec 2026): `v=DKIM2` (A6) and a stray non-DKIM TXT record at the
 * selector name (A7) passed the check although receivers reject or may misread them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../../src/config/schema.js';
import type { DnsResolver } from '../../../src/delivery/resolver.js';
import { dnsRecordFor, generateDkimKey } from '../../../src/dkim/keys.js';
import { checkDkimRecord } from '../../../src/domains/dns-check.js';
import { dkimChecks } from '../../../src/domains/doctor/auth-checks.js';
import { makeResolver, nodeResolver, startDnsServer, type DnsServer } from '../../helpers/dns-server.js';

const DOMAIN = 'check.test';
const rsa = generateDkimKey('rsa');
const key = { selector: 'k2026m12', algorithm: 'rsa' as const, publicKeyBase64: rsa.publicKeyBase64 };
const NAME = `${key.selector}._domainkey.${DOMAIN}`;
const RIGHT = dnsRecordFor('rsa', rsa.publicKeyBase64);
let dns: DnsServer;

/** What a receiver makes of the record: null when mailauth's key lookup accepts it, else its error code. */
const receiver = async (): Promise<string | null> => {
  const tools = (await import('mailauth/lib/tools.js')) as unknown as {
    getPublicKey(type: string, name: string, minBits: number, resolver: unknown): Promise<unknown>;
  };
  return tools.getPublicKey('DKIM', NAME, 1024, makeResolver(dns.address)).then(
    () => null,
    (err: { code?: string }) => err.code ?? 'error',
  );
};
const check = (): Promise<string | null> => checkDkimRecord(nodeResolver(dns.address), DOMAIN, key);

beforeAll(async () => {
  dns = await startDnsServer({});
});
afterAll(async () => {
  await dns?.close();
});

describe('checkDkimRecord', () => {
  it('accepts the record Kurir proposes, and so does the receiver', async () => {
    dns.set(NAME, 'TXT', [RIGHT]);
    expect(await check()).toBeNull();
    expect(await receiver()).toBeNull();
  });

  it('refuses v= other than DKIM1, which receivers reject (EINVALIDVER)', async () => {
    dns.set(NAME, 'TXT', [RIGHT.replace('v=DKIM1', 'v=DKIM2')]);
    expect(await check()).toBe(`DKIM ${NAME} TXT: v=DKIM2, receivers accept only v=DKIM1 (or no v= tag)`);
    expect(await receiver()).toBe('EINVALIDVER');
  });

  it('refuses v=DKIM1 that is not the first tag (RFC 6376 3.6.1); accepts a record without v=', async () => {
    dns.set(NAME, 'TXT', [`k=rsa; v=DKIM1; p=${rsa.publicKeyBase64}`]);
    expect(await check()).toContain('v=DKIM1 must be the record');
    dns.set(NAME, 'TXT', [`k=rsa; p=${rsa.publicKeyBase64}`]);
    expect(await check()).toBeNull();
  });

  it('refuses a second, non-DKIM TXT record at the selector name, naming it', async () => {
    dns.set(NAME, 'TXT', ['site-verification=abc', RIGHT]);
    const problem = await check();
    expect(problem).toContain('also publishes "site-verification=abc"');
    expect(problem).toContain('receivers may read it instead');
    // mailauth reads the first TXT record: the stray one.
    expect(await receiver()).not.toBeNull();
    dns.set(NAME, 'TXT', [RIGHT, 'site-verification=abc']);
    expect(await check()).toContain('also publishes "site-verification=abc"');
  });

  it('the doctor’s dkim:<selector> check reports the same problems', async () => {
    const ctx = {
      domain: DOMAIN,
      keys: [{ ...key, status: 'active' as const }],
      config: {} as Config,
      resolver: nodeResolver(dns.address) as unknown as DnsResolver,
      fetchPolicy: async () => null,
    } as unknown as Parameters<typeof dkimChecks>[0];
    dns.set(NAME, 'TXT', [RIGHT.replace('v=DKIM1', 'v=DKIM2')]);
    expect((await dkimChecks(ctx))[0]).toMatchObject({ id: `dkim:${key.selector}`, status: 'fail', summary: expect.stringContaining('v=DKIM2') });
    dns.set(NAME, 'TXT', ['site-verification=abc', RIGHT]);
    expect((await dkimChecks(ctx))[0]).toMatchObject({ status: 'fail', summary: expect.stringContaining('site-verification=abc') });
    dns.set(NAME, 'TXT', [RIGHT]);
    expect((await dkimChecks(ctx))[0]).toMatchObject({ status: 'pass' });
  });
});
