import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveRoute } from '../../../src/delivery/mx.js';
import { createResolver } from '../../../src/delivery/resolver.js';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';

let dns: DnsServer;
beforeAll(async () => {
  dns = await startDnsServer({
    'multi.test': {
      MX: [
        { exchange: 'mx2.multi.test', priority: 20 },
        { exchange: 'mx1.multi.test', priority: 10 },
      ],
    },
    'mx1.multi.test': { A: ['127.0.0.11'] },
    'mx2.multi.test': { A: ['127.0.0.12'], AAAA: ['::1'] },
    'implicit.test': { A: ['127.0.0.13'] },
    'nullmx.test': { MX: [{ exchange: '.', priority: 0 }] },
    'empty.test': { TXT: ['nothing here'] },
    'broken.test': { MX: [{ exchange: 'mx.broken.test', priority: 10 }] },
    'flaky.test': { servfail: true },
  });
});
afterAll(() => dns.close());

const resolver = () => createResolver({ servers: [dns.address], timeoutSeconds: 1, tries: 1 });

describe('resolveRoute', () => {
  it('orders MX hosts by preference with their addresses', async () => {
    const r = await resolveRoute(resolver(), 'multi.test');
    expect(r).toEqual({
      kind: 'hosts',
      implicit: false,
      hosts: [
        { exchange: 'mx1.multi.test', priority: 10, addresses: ['127.0.0.11'] },
        { exchange: 'mx2.multi.test', priority: 20, addresses: ['127.0.0.12', '::1'] },
      ],
    });
  });

  it('uses the A record as an implicit MX when there is no MX', async () => {
    expect(await resolveRoute(resolver(), 'implicit.test')).toEqual({
      kind: 'hosts',
      implicit: true,
      hosts: [{ exchange: 'implicit.test', priority: 0, addresses: ['127.0.0.13'] }],
    });
  });

  it('recognizes a null MX (RFC 7505)', async () => {
    expect(await resolveRoute(resolver(), 'nullmx.test')).toEqual({ kind: 'null-mx' });
  });

  it('is permanent for a missing domain or one with neither MX nor address', async () => {
    expect((await resolveRoute(resolver(), 'nxdomain.test')).kind).toBe('no-domain');
    expect((await resolveRoute(resolver(), 'empty.test')).kind).toBe('no-domain');
  });

  it('is temporary for SERVFAIL and for MX hosts without addresses', async () => {
    expect((await resolveRoute(resolver(), 'flaky.test')).kind).toBe('temp-error');
    expect((await resolveRoute(resolver(), 'broken.test')).kind).toBe('temp-error');
  });
});
