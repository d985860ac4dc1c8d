/**
 * The deliverability doctor for source-IP pools, against real DNS on loopback: each pool address gets its
 * own PTR / forward-confirmation check and a check of its own HELO name (resolves to the address, is its PTR
 * name), besides the gateway's `hostname` for the addresses outside any pool. Passing records, then each
 * single misconfiguration of one address: the failing or warning check says so and how to fix it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createResolver } from '../../src/delivery/resolver.js';
import { Doctor } from '../../src/domains/doctor/doctor.js';
import type { DoctorCheck } from '../../src/domains/doctor/report.js';
import { systemClock } from '../../src/lib/clock.js';
import { DomainStore } from '../../src/store/domain-store.js';
import { createKeys } from '../../src/store/keys.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { dropPrefix, testConfig } from '../helpers/test-gateway.js';

const HOST = 'mail.kurir.test';
const LISTED = '192.0.2.10';
const A = { ip: '127.0.0.2', ptr: '2.0.0.127.in-addr.arpa', helo: 'a.example' };
const B = { ip: '127.0.0.3', ptr: '3.0.0.127.in-addr.arpa', helo: 'b.example' };

let dns: DnsServer;
let redis: Redis;
let doctor: Doctor;
let dataDir: string;
let prefix: string;

function publishGood(): void {
  dns.set('10.2.0.192.in-addr.arpa', 'PTR', [HOST]);
  dns.set(HOST, 'A', [LISTED]);
  for (const x of [A, B]) {
    dns.set(x.ptr, 'PTR', [x.helo]);
    dns.set(x.helo, 'A', [x.ip]);
  }
  dns.remove('elsewhere.example');
}

async function rdnsChecks(): Promise<DoctorCheck[]> {
  const report = await doctor.examine('example.test');
  return report.checks.filter((c) => c.id.startsWith('rdns') || c.id.startsWith('helo'));
}

const byId = (checks: DoctorCheck[], id: string): DoctorCheck => {
  const c = checks.find((x) => x.id === id);
  expect(c, `${id} in ${checks.map((x) => x.id).join(', ')}`).toBeDefined();
  return c as DoctorCheck;
};

beforeAll(async () => {
  dns = await startDnsServer({});
  dataDir = mkdtempSync(join(tmpdir(), 'kurir-doctor-pools-'));
  const config = testConfig(
    dataDir,
    {
      hostname: HOST,
      domainKeys: { sendingIps: [LISTED] },
      delivery: {
        ipPools: {
          pools: { transactional: [{ address: A.ip, helo: A.helo }], bulk: [{ address: B.ip, helo: B.helo }] },
          priorities: { verification: 'transactional', bulk: 'bulk' },
        },
      },
    },
    dns.address,
  );
  prefix = config.redis.prefix;
  redis = new Redis('redis://127.0.0.1:6379');
  doctor = new Doctor({
    config,
    store: new DomainStore(redis, createKeys(prefix)),
    resolver: createResolver({ servers: [dns.address], timeoutSeconds: 1, tries: 1 }),
    fetchPolicy: async () => {
      throw new Error('no policy server in this test');
    },
    clock: systemClock,
  });
  publishGood();
});

afterEach(() => publishGood());

afterAll(async () => {
  await dropPrefix(prefix);
  await redis?.quit();
  await dns?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('doctor: source-IP pools', () => {
  it('checks PTR, forward confirmation and the own HELO name of every pool address, and passes when all match', async () => {
    const checks = await rdnsChecks();
    expect(checks.map((c) => c.id)).toEqual([`rdns:${LISTED}`, `rdns:${A.ip}`, `rdns:${B.ip}`, 'helo', `helo:${A.ip}`, `helo:${B.ip}`]);
    expect(checks.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(byId(checks, `rdns:${A.ip}`).summary).toBe(`${A.ip} → ${A.helo} → ${A.ip} (forward-confirmed)`);
    expect(byId(checks, `helo:${B.ip}`).summary).toBe(`HELO ${B.helo} of ${B.ip} (pool bulk) resolves to ${B.ip} and is its PTR name`);
    // The pool addresses are sending IPs for the blocklist checks too.
    const report = await doctor.examine('example.test');
    expect(report.checks.map((c) => c.id)).toEqual(expect.arrayContaining([`blocklist:${A.ip}`, `blocklist:${B.ip}`]));
  });

  it('wants SPF to authorise the pool addresses too, and proposes them in the fix', async () => {
    dns.set('example.test', 'TXT', [`v=spf1 ip4:${LISTED} -all`]);
    try {
      const spfIps = byId((await doctor.examine('example.test')).checks, 'spf-ips');
      expect(spfIps).toMatchObject({ status: 'fail', summary: `SPF of example.test does not authorise ${A.ip} (fail), ${B.ip} (fail)` });
      expect(spfIps.fix).toContain(`add ip4:${LISTED} ip4:${A.ip} ip4:${B.ip} before the all mechanism`);
      dns.set('example.test', 'TXT', [`v=spf1 ip4:${LISTED} ip4:${A.ip} ip4:${B.ip} -all`]);
      expect(byId((await doctor.examine('example.test')).checks, 'spf-ips').status).toBe('pass');
    } finally {
      dns.remove('example.test');
    }
  });

  it('a pool address without PTR: fails its rdns check, with the PTR naming its own HELO as the fix', async () => {
    dns.remove(A.ptr);
    const checks = await rdnsChecks();
    expect(byId(checks, `rdns:${A.ip}`)).toMatchObject({ status: 'fail', summary: `${A.ip} has no PTR record: the name does not exist (NXDOMAIN)` });
    expect(byId(checks, `rdns:${A.ip}`).fix).toContain(`${A.ptr}. IN PTR ${A.helo}.`);
    // Its HELO still resolves to it; nothing to compare with the PTR.
    expect(byId(checks, `helo:${A.ip}`)).toMatchObject({ status: 'pass', summary: `HELO ${A.helo} of ${A.ip} (pool transactional) resolves to ${A.ip}` });
    expect(checks.filter((c) => c.status !== 'pass').map((c) => c.id)).toEqual([`rdns:${A.ip}`]);
  });

  it('a PTR that does not resolve back: fails rdns (not forward-confirmed) and warns that the HELO is not the PTR name', async () => {
    dns.set(B.ptr, 'PTR', ['elsewhere.example']);
    dns.set('elsewhere.example', 'A', ['192.0.2.99']);
    const checks = await rdnsChecks();
    expect(byId(checks, `rdns:${B.ip}`)).toMatchObject({
      status: 'fail',
      summary: `PTR of ${B.ip} is elsewhere.example, which does not resolve back to ${B.ip}`,
    });
    expect(byId(checks, `helo:${B.ip}`)).toMatchObject({
      status: 'warn',
      summary: `HELO ${B.helo} of ${B.ip} (pool bulk) resolves to ${B.ip}, but the PTR of ${B.ip} is elsewhere.example`,
    });
  });

  it('a HELO name that resolves to another address: fails the helo check of that address only', async () => {
    dns.set(B.helo, 'A', [A.ip]);
    const checks = await rdnsChecks();
    expect(byId(checks, `helo:${B.ip}`)).toMatchObject({
      status: 'fail',
      summary: `HELO ${B.helo} of ${B.ip} (pool bulk) resolves to ${A.ip}, not to ${B.ip}`,
    });
    expect(byId(checks, `helo:${B.ip}`).fix).toContain(`publish ${B.helo}. IN A ${B.ip}`);
    // Its PTR (b.example) no longer resolves back to it either.
    expect(checks.filter((c) => c.status !== 'pass').map((c) => c.id)).toEqual([`rdns:${B.ip}`, `helo:${B.ip}`]);
  });

  it('a HELO name that does not resolve: fails', async () => {
    dns.remove(A.helo);
    const checks = await rdnsChecks();
    expect(byId(checks, `helo:${A.ip}`)).toMatchObject({ status: 'fail', summary: `HELO ${A.helo} of ${A.ip} (pool transactional) does not resolve` });
    expect(byId(checks, `rdns:${A.ip}`).status).toBe('fail');
  });
});
