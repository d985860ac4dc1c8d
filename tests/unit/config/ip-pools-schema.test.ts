/**
 * delivery.ipPools through loadConfig: the default keeps today's behaviour (no pools), a valid pool setup
 * loads, and each mistake is a startup error naming the key: an unknown pool in a priority or sender-domain
 * mapping, an address that is not an IP, the same IP twice, verification sharing bulk's pool.
 */
import { describe, expect, it } from 'vitest';
import { allSendingIps, poolAddresses, poolNameFor } from '../../../src/config/ip-pools-schema.js';
import { recordsFor } from '../../../src/domains/records.js';
import { ConfigError, loadConfig } from '../../../src/config/load.js';

const load = (ipPools: unknown) => loadConfig({ file: 'config/default.yaml', overrides: { delivery: { ipPools } } });

const POOLS = {
  transactional: [{ address: '127.0.0.2', helo: 'a.example' }],
  bulk: [
    { address: '127.0.0.3', helo: 'b.example', warmupStart: '2026-11-20', warmup: { perHour: [10, 20], perDay: [100] } },
    { address: '::1', helo: 'b6.example' },
  ],
};

describe('delivery.ipPools', () => {
  it('is empty by default: every priority goes out from the OS-chosen address with hostname as HELO', () => {
    const c = loadConfig({ file: 'config/default.yaml' });
    expect(c.delivery.ipPools).toEqual({ pools: {}, priorities: {}, domains: {} });
    expect(poolNameFor(c.delivery.ipPools, 'verification', 'example.test')).toBeUndefined();
    expect(poolAddresses(c.delivery.ipPools)).toEqual([]);
  });

  it('loads pools, priorities and per-sender-domain mappings (the domain mapping wins, else the priorities)', () => {
    const c = load({
      pools: { ...POOLS, brand: [{ address: '127.0.0.4' }] },
      priorities: { verification: 'transactional', bulk: 'bulk' },
      domains: { 'brand.test': { bulk: 'brand' } },
    });
    const p = c.delivery.ipPools;
    expect(poolNameFor(p, 'verification', 'brand.test')).toBe('transactional');
    expect(poolNameFor(p, 'bulk', 'Brand.Test')).toBe('brand');
    expect(poolNameFor(p, 'bulk', 'example.test')).toBe('bulk');
    expect(poolNameFor(p, 'normal', 'example.test')).toBeUndefined();
    expect(poolAddresses(p).map((a) => `${a.pool}:${a.address}`)).toEqual(['transactional:127.0.0.2', 'bulk:127.0.0.3', 'bulk:::1', 'brand:127.0.0.4']);
  });

  it('adds the pool addresses to the sending IPs that SPF must authorise (the records Kurir proposes too)', () => {
    const c = loadConfig({
      file: 'config/default.yaml',
      overrides: { domainKeys: { sendingIps: ['192.0.2.0/28', '127.0.0.2'] }, delivery: { ipPools: { pools: POOLS } } },
    });
    expect(allSendingIps(c.domainKeys.sendingIps, c.delivery.ipPools)).toEqual(['192.0.2.0/28', '127.0.0.2', '127.0.0.3', '::1']);
    const spf = recordsFor({ name: 'brand.test', keys: [] } as never, c, 0).find((r) => r.purpose === 'spf');
    expect(spf?.value).toBe('v=spf1 ip4:192.0.2.0/28 ip4:127.0.0.2 ip4:127.0.0.3 ip6:::1 -all');
  });

  it('refuses a priority mapped to a pool that does not exist, naming the key and the known pools', () => {
    expect(() => load({ pools: POOLS, priorities: { bulk: 'bulkk' } })).toThrowError(
      /delivery\.ipPools\.priorities\.bulk = "bulkk": no such pool in delivery\.ipPools\.pools \(pools: transactional, bulk\)/,
    );
    expect(() => load({ pools: POOLS, domains: { 'brand.test': { normal: 'nope' } } })).toThrowError(
      /delivery\.ipPools\.domains\.brand\.test\.normal = "nope": no such pool/,
    );
    expect(() => load({ priorities: { verification: 'transactional' } })).toThrowError(/pools: none configured/);
  });

  it('refuses a bind address that is not an IP, and a range', () => {
    expect(() => load({ pools: { a: [{ address: 'mta1.example.com' }] } })).toThrowError(
      /delivery\.ipPools\.pools\.a\.0\.address = "mta1\.example\.com": an IP address/,
    );
    expect(() => load({ pools: { a: [{ address: '192.0.2.0/24' }] } })).toThrowError(
      /delivery\.ipPools\.pools\.a\.0\.address = "192\.0\.2\.0\/24": an IP address/,
    );
  });

  it('refuses the same IP twice, in one pool or in two, naming both places', () => {
    expect(() => load({ pools: { a: [{ address: '127.0.0.2' }], b: [{ address: '127.0.0.2' }] } })).toThrowError(
      /delivery\.ipPools\.pools\.b\.0\.address = "127\.0\.0\.2": duplicate source IP \(already at delivery\.ipPools\.pools\.a\.0\.address\)/,
    );
    expect(() => load({ pools: { a: [{ address: '2001:DB8::1' }, { address: '2001:db8::1' }] } })).toThrowError(/pools\.a\.1\.address .*duplicate source IP/);
  });

  it('refuses verification and bulk in one pool, also when a sender domain maps them together', () => {
    expect(() => load({ pools: POOLS, priorities: { verification: 'bulk', bulk: 'bulk' } })).toThrowError(
      /delivery\.ipPools\.priorities\.bulk = "bulk": verification and bulk mail would share pool "bulk"/,
    );
    expect(() =>
      load({ pools: POOLS, priorities: { verification: 'transactional', bulk: 'bulk' }, domains: { 'x.test': { bulk: 'transactional' } } }),
    ).toThrowError(/delivery\.ipPools\.domains\.x\.test\.bulk = "transactional": verification and bulk mail would share/);
  });

  it('wants warmup and warmupStart together, and a HELO that is a host name', () => {
    expect(() => load({ pools: { a: [{ address: '127.0.0.2', warmup: { perHour: [5] } }] } })).toThrowError(
      /pools\.a\.0\.warmupStart = missing: warmup and warmupStart go together/,
    );
    expect(() => load({ pools: { a: [{ address: '127.0.0.2', helo: 'not a name' }] } })).toThrowError(/pools\.a\.0\.helo = "not a name": a host name/);
    expect(() => load({ pools: { A: [{ address: '127.0.0.2' }] } })).toThrowError(ConfigError);
  });
});
