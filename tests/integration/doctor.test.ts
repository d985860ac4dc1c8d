/**
 * The deliverability doctor against real DNS on loopback: a correctly published domain passes every check,
 * and each single misconfiguration fails (or warns) exactly its check, with the fix to apply. Through
 * GET /v1/domains/:domain/doctor for a configured and a runtime-managed domain, and through the `kurir doctor`
 * binary for its exit codes and --json.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { generateDkimKey } from '../../src/dkim/keys.js';
import { DomainStore } from '../../src/store/domain-store.js';
import { createKeys } from '../../src/store/keys.js';
import type { DnsServer } from '../helpers/dns-server.js';
import { policy, type PolicyServer } from '../helpers/policy-server.js';
import { ADMIN_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { BOUNCE, doctorGatewayForFile, HOST, IP, PTR, publishGoodRecords } from '../helpers/doctor-gateway.js';

const D = 'example.test';

let dns: DnsServer;
let web: PolicyServer;
let t: TestGateway;

/** Every record of a correctly configured example.test, and the gateway's DKIM keys. */
function publishGood(): void {
  publishGoodRecords({ dns, web, t }, D);
}

const doctor = async (domain = D): Promise<{ status: number; body: any }> => {
  const res = await fetch(`${t.url}/v1/domains/${domain}/doctor`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  return { status: res.status, body: await res.json() };
};

const check = (report: any, id: string): any => {
  const c = report.checks.find((x: any) => x.id === id);
  expect(c, `check ${id} in ${JSON.stringify(report.checks.map((x: any) => x.id))}`).toBeDefined();
  return c;
};

/** The one check that did not pass, asserting every other one passed. */
const onlyProblem = (report: any): any => {
  const bad = report.checks.filter((c: any) => c.status !== 'pass');
  expect(bad.map((c: any) => c.id)).toHaveLength(1);
  return bad[0];
};

doctorGatewayForFile({ masterKey: 'c', blocklists: ['bl.test', 'bl2.test'] }, (d) => {
  ({ dns, web, t } = d);
  publishGood();
});

afterEach(() => publishGood());

describe('GET /v1/domains/:domain/doctor', () => {
  it('passes every check of a correctly published configured domain', async () => {
    const { status, body } = await doctor();
    expect(status).toBe(200);
    expect(body).toMatchObject({ domain: D, source: 'config', result: 'pass', exitCode: 0 });
    expect(body.checks.map((c: any) => c.id)).toEqual([
      'spf',
      'spf-lookups',
      'spf-ips',
      `spf:${BOUNCE}`,
      `spf-lookups:${BOUNCE}`,
      `spf-ips:${BOUNCE}`,
      'dkim:kurir1',
      'dkim:kurir1e',
      'dmarc',
      'dmarc-alignment',
      'bounce-mx',
      `rdns:${IP}`,
      'helo',
      'mta-sts',
      'tls-rpt',
      `blocklist:${IP}`,
    ]);
    expect(body.checks.filter((c: any) => c.status !== 'pass')).toEqual([]);
    expect(check(body, 'dkim:kurir1').summary).toContain('RSA-2048');
    expect(check(body, 'spf-lookups').summary).toBe(`SPF of ${D} needs 0 of at most 10 DNS lookups`);
    expect(check(body, `rdns:${IP}`).summary).toBe(`${IP} → ${HOST} → ${IP} (forward-confirmed)`);
    for (const c of body.checks) expect(c.why).toMatch(/Gmail|Microsoft|Yahoo|RFC/);
  });

  it('SPF syntax error: fails spf with the record to publish', async () => {
    dns.set(D, 'TXT', [`v=spf1 ip4:${IP} foo:bar -all`]);
    const c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'spf', status: 'fail' });
    expect(c.summary).toMatch(/invalid/);
    expect(c.fix).toBe(`replace it with ${D}. IN TXT "v=spf1 ip4:${IP} -all" (merge with any existing SPF record: publish exactly one)`);
  });

  it('SPF over 10 DNS lookups: fails spf-lookups', async () => {
    const includes = Array.from({ length: 11 }, (_, i) => `i${i}.spf.test`);
    for (const n of includes) dns.set(n, 'TXT', ['v=spf1 -all']);
    dns.set(D, 'TXT', [`v=spf1 ip4:${IP} ${includes.map((n) => `include:${n}`).join(' ')} -all`]);
    const c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'spf-lookups', status: 'fail' });
    expect(c.fix).toMatch(/^remove include: mechanisms .* at most 10 lookups$/);
  });

  it('SPF not authorising the sending IP: fails spf-ips for the MAIL FROM domain', async () => {
    dns.set(BOUNCE, 'TXT', ['v=spf1 ip4:198.51.100.1 -all']);
    const c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: `spf-ips:${BOUNCE}`, status: 'fail', summary: `SPF of ${BOUNCE} does not authorise ${IP} (fail)` });
    expect(c.fix).toContain(`add ip4:${IP} before the all mechanism: ${BOUNCE}. IN TXT "v=spf1 ip4:${IP} -all"`);
  });

  it('DKIM record missing or with another key: fails that selector with the exact record', async () => {
    dns.remove(`kurir1._domainkey.${D}`);
    let c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'dkim:kurir1', status: 'fail', summary: `DKIM kurir1._domainkey.${D} TXT: the name does not exist (NXDOMAIN)` });
    expect(c.fix).toMatch(new RegExp(`^publish exactly this record: kurir1\\._domainkey\\.${D.replace('.', '\\.')}\\. IN TXT \\( "v=DKIM1; k=rsa; p=`));
    dns.set(`kurir1._domainkey.${D}`, 'TXT', [`v=DKIM1; k=rsa; p=${generateDkimKey('rsa', 1024).publicKeyBase64}`]);
    c = onlyProblem((await doctor()).body);
    expect(c.summary).toContain("publishes a different public key than Kurir's private key");
  });

  it('DKIM key under 2048 bits: warns with the rotation to do (runtime-managed domain)', async () => {
    const key = generateDkimKey('rsa', 1024);
    const store = new DomainStore(t.gateway.redis, createKeys(t.config.redis.prefix));
    const now = Date.now();
    await store.put({
      name: 'small.test',
      state: 'active',
      createdAt: now,
      updatedAt: now,
      rev: 1,
      keys: [{ selector: 's1024', algorithm: 'rsa', bits: 1024, publicKeyBase64: key.publicKeyBase64, sealedPrivateKey: '', status: 'active', createdAt: now }],
    });
    dns.set('s1024._domainkey.small.test', 'TXT', [`v=DKIM1; k=rsa; p=${key.publicKeyBase64}`]);
    const { body } = await doctor('small.test');
    expect(body.source).toBe('runtime');
    const c = check(body, 'dkim:s1024');
    expect(c).toMatchObject({ status: 'warn', summary: 's1024: published and matching, RSA-1024 (2048 bits recommended)' });
    expect(c.fix).toContain('kurir domains rotate small.test');
  });

  it('DMARC missing, several, or without rua', async () => {
    dns.remove(`_dmarc.${D}`);
    let c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'dmarc', status: 'fail', summary: `${D} publishes no DMARC record` });
    expect(c.fix).toBe(`publish _dmarc.${D}. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@${BOUNCE}"`);
    dns.set(`_dmarc.${D}`, 'TXT', ['v=DMARC1; p=none', 'v=DMARC1; p=reject']);
    c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'dmarc', status: 'fail', summary: `_dmarc.${D} publishes several DMARC records: receivers ignore them all` });
    dns.set(`_dmarc.${D}`, 'TXT', ['v=DMARC1; p=reject; aspf=s']);
    const { body } = await doctor();
    expect(body).toMatchObject({ result: 'warn', exitCode: 1 });
    c = onlyProblem(body);
    expect(c).toMatchObject({ id: 'dmarc', status: 'warn' });
    expect(c.fix).toBe(`add rua=mailto:dmarc@${BOUNCE}: _dmarc.${D}. IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@${BOUNCE}"`);
    expect(check(body, 'dmarc-alignment').summary).toBe(
      `DKIM d=${D} aligns (adkim=r, aspf=s); SPF does not align (MAIL FROM @${BOUNCE}, strict aspf): DMARC rests on DKIM alone`,
    );
  });

  it('bounce domain without MX: fails bounce-mx', async () => {
    dns.remove(BOUNCE, 'MX');
    const c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'bounce-mx', status: 'fail', summary: `MX of the bounce domain ${BOUNCE}: no record of this type` });
    expect(c.fix).toBe(`publish ${BOUNCE}. IN MX 10 ${HOST}. (the host running role feedback on port 25)`);
  });

  it('sending IP without PTR: fails rdns', async () => {
    dns.remove(PTR);
    const c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: `rdns:${IP}`, status: 'fail', summary: `${IP} has no PTR record: the name does not exist (NXDOMAIN)` });
    expect(c.fix).toBe(`ask the owner of ${IP} (your hosting provider) for ${PTR}. IN PTR ${HOST}. and publish ${HOST}. IN A ${IP}`);
  });

  it('PTR not forward-confirmed: fails rdns (and the HELO name no longer matches it)', async () => {
    dns.set(PTR, 'PTR', ['ptr.kurir.test']);
    const { body } = await doctor();
    expect(check(body, `rdns:${IP}`)).toMatchObject({ status: 'fail', summary: `PTR of ${IP} is ptr.kurir.test, which does not resolve back to ${IP}` });
    expect(check(body, 'helo').status).toBe('warn');
    expect(body.checks.filter((c: any) => c.status !== 'pass')).toHaveLength(2);
  });

  it('HELO name that the PTR does not name: warns helo', async () => {
    dns.set(PTR, 'PTR', ['ptr.kurir.test']);
    dns.set('ptr.kurir.test', 'A', [IP]);
    const c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'helo', status: 'warn', summary: `HELO ${HOST}: PTR does not name ${HOST}: ${IP} (PTR ptr.kurir.test)` });
    expect(c.fix).toBe('set hostname to the fully qualified name in the PTR of the sending IPs, with an A/AAAA record naming them');
  });

  it('MTA-STS policy that cannot be fetched, or does not list the MX: fails mta-sts', async () => {
    web.set(D, { status: 404 });
    let c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'mta-sts', status: 'fail' });
    expect(c.summary).toBe(`_mta-sts.${D} announces policy 20261129T0800, but https://mta-sts.${D}/.well-known/mta-sts.txt: HTTP 404`);
    expect(c.fix).toContain(`or remove _mta-sts.${D}`);
    web.set(D, policy('enforce', ['other.example.test']));
    c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'mta-sts', status: 'fail', fix: `add mx: mx.${D} to the policy and publish a new id in _mta-sts.${D}` });
  });

  it('TLS-RPT missing (warn) or without a valid rua (fail)', async () => {
    dns.remove(`_smtp._tls.${D}`);
    let c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'tls-rpt', status: 'warn', fix: `publish _smtp._tls.${D}. IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@${BOUNCE}"` });
    dns.set(`_smtp._tls.${D}`, 'TXT', ['v=TLSRPTv1; rua=tls@example.test']);
    c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: 'tls-rpt', status: 'fail' });
  });

  it('sending IP on a DNS blocklist: fails blocklist with the zone', async () => {
    dns.set('10.2.0.192.bl.test', 'A', ['127.0.0.2']);
    const c = onlyProblem((await doctor()).body);
    expect(c).toMatchObject({ id: `blocklist:${IP}`, status: 'fail', summary: `${IP} is listed in bl.test (127.0.0.2)` });
    expect(c.fix).toMatch(/^find and stop the cause .* request delisting/);
  });

  it('checks a runtime-managed domain added and verified through the API; unknown domains are 404', async () => {
    const add = await fetch(`${t.url}/v1/domains`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'runtime.test' }),
    }).then((r) => r.json() as Promise<any>);
    for (const r of add.records.filter((x: any) => x.type === 'TXT')) dns.set(r.name, 'TXT', [r.strings]);
    await fetch(`${t.url}/v1/domains/runtime.test/verify`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const { body } = await doctor('runtime.test');
    const selector = add.keys[0].selector;
    expect(body.source).toBe('runtime');
    expect(check(body, `dkim:${selector}`)).toMatchObject({
      status: 'pass',
      summary: `${selector}._domainkey.runtime.test publishes Kurir's RSA-2048 public key`,
    });
    expect(check(body, 'spf-ips').status).toBe('pass');
    expect(check(body, 'dmarc').summary).toContain('p=none meets the requirement');
    const bad = await doctor('not_a..domain');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ field: 'domain' });
    const missing = await doctor('nowhere.test');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'NOT_FOUND', field: 'domain' });
    expect(missing.body.error.message).toContain('nowhere.test is not a sender domain');
  });
});

describe('a runtime-managed domain intake refuses (found by an audit, 1 Dec 2026)', () => {
  const api = (method: string, path: string): Promise<any> =>
    fetch(`${t.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}` } }).then((r) => r.json());

  it('fails dmarc-alignment while no key is active (pending-dns, suspended); the waiting key is shown as not signing', async () => {
    const W = 'waiting.test';
    const add = await fetch(`${t.url}/v1/domains`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: W }),
    }).then((r) => r.json() as Promise<any>);
    for (const r of add.records.filter((x: any) => x.type === 'TXT')) dns.set(r.name, 'TXT', [r.strings]);
    const selector = add.keys[0].selector;
    const pending = (await doctor(W)).body;
    expect(check(pending, 'dmarc-alignment')).toMatchObject({
      status: 'fail',
      summary: expect.stringContaining(`no active DKIM key signs as ${W} (${W} has no active key yet (pending-dns; intake refuses it))`),
      fix: expect.stringContaining(`kurir domains verify ${W}`),
    });
    expect(check(pending, `dkim:${selector}`)).toMatchObject({
      status: 'warn',
      summary: expect.stringContaining('does not sign yet'),
      fix: expect.stringContaining(`kurir domains verify ${W}`),
    });
    expect((await api('POST', `/v1/domains/${W}/verify`)).state).toBe('active');
    const active = (await doctor(W)).body;
    expect(check(active, 'dmarc-alignment').status).toBe('pass');
    expect(check(active, `dkim:${selector}`).status).toBe('pass');
    expect((await api('POST', `/v1/domains/${W}/keys/${selector}/revoke`)).state).toBe('suspended');
    const suspended = (await doctor(W)).body;
    expect(check(suspended, 'dmarc-alignment')).toMatchObject({ status: 'fail', summary: expect.stringContaining(`${W} is suspended`) });
    expect(check(suspended, 'dkim').status).toBe('fail');
  });
});

describe('kurir doctor (the binary, over the admin API)', () => {
  const runBin = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((done) => {
      execFile(
        resolve('node_modules/.bin/tsx'),
        [resolve('src/cli/bin.ts'), 'doctor', ...args],
        { env: { PATH: process.env.PATH ?? '', KURIR_URL: t.url, KURIR_ADMIN_KEY: ADMIN_KEY } },
        (err, stdout, stderr) => done({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr }),
      );
    });

  it('exits 0 when all pass, 1 on a warning and 2 on a failure; --json prints the report', async () => {
    const pass = await runBin([D]);
    expect(pass.code).toBe(0);
    expect(pass.stdout).toMatch(new RegExp(`^${D.replace(/\./g, '\\.')} \\(configured\\): PASS\n`));
    dns.remove(`_mta-sts.${D}`);
    const warn = await runBin([D]);
    expect(warn.code).toBe(1);
    expect(warn.stdout).toContain(`WARN  mta-sts: ${D} publishes no MTA-STS policy (_mta-sts.${D} TXT)`);
    expect(warn.stdout).toMatch(/\n\d+ pass, 1 warn, 0 fail\n$/);

    dns.set('10.2.0.192.bl.test', 'A', ['127.0.0.2']);
    const fail = await runBin([D, '--json']);
    expect(fail.code).toBe(2);
    const report = JSON.parse(fail.stdout);
    expect(report).toMatchObject({ domain: D, result: 'fail', exitCode: 2 });
    expect(report.checks.find((c: any) => c.id === `blocklist:${IP}`).status).toBe('fail');

    const usage = await runBin([]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('doctor: exactly one DOMAIN is required');
    const unknown = await runBin(['nowhere.test']);
    expect(unknown).toMatchObject({ code: 2, stdout: '' });
    expect(unknown.stderr).toContain('404 NOT_FOUND: domain: nowhere.test is not a sender domain (neither in domains[] nor runtime-managed)');
  }, 60_000);
});
