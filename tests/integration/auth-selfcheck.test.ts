/**
 * The continuous authentication self-check on a worker gateway, with DNS from the loopback server: a correctly
 * published domain passes DKIM, SPF and DMARC (kurir_auth_selfcheck 1); changing the published DKIM record makes
 * the DKIM check fail within one interval (metric 0, the reason in the doctor answer); a key change (verify of a
 * runtime-managed domain) re-checks every domain at once; a removed domain's series disappears.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDkimKey } from '../../src/dkim/keys.js';
import { SelfCheckStore } from '../../src/store/selfcheck-store.js';
import { createKeys } from '../../src/store/keys.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

const IP = '192.0.2.20';
const BOUNCE = 'bounce.selfcheck.test';
const D = 'example.test';
const INTERVAL_S = 1;

let dns: DnsServer;
let t: TestGateway;

const admin = (method: string, path: string, body?: unknown): Promise<any> =>
  fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then((r) => r.json());

/** The value of kurir_auth_selfcheck{domain,check} at GET /metrics, or undefined without that series. */
const gauge = async (domain: string, check: string, url = t.url): Promise<number | undefined> => {
  const text = await fetch(`${url}/metrics`).then((r) => r.text());
  const line = text.split('\n').find((l) => l.startsWith(`kurir_auth_selfcheck{domain="${domain}",check="${check}"}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
};

const overrides = {
  hostname: 'mail.selfcheck.test',
  bounce: { domain: BOUNCE },
  domainKeys: { masterKey: 'd'.repeat(64), sendingIps: [IP], refreshSeconds: 0.2, selfCheck: { enabled: true, intervalSeconds: INTERVAL_S } },
};

beforeAll(async () => {
  dns = await startDnsServer({
    [BOUNCE]: { TXT: [`v=spf1 ip4:${IP} -all`] },
    [`_dmarc.${D}`]: { TXT: [`v=DMARC1; p=reject; rua=mailto:dmarc@${BOUNCE}`] },
    '_dmarc.runtime.test': { TXT: ['v=DMARC1; p=none'] },
  });
  t = await startTestGateway({
    dns,
    overrides,
  });
  t.publishDkim(dns);
}, 30_000);

afterAll(async () => {
  await t?.close();
  await dns?.close();
});

describe('authentication self-check', () => {
  it('passes DKIM, SPF and DMARC for a correctly published domain', async () => {
    for (const check of ['dkim', 'spf', 'dmarc']) await until(async () => (await gauge(D, check)) === 1, 5000, `${check} self-check passing`);
    const doc = await admin('GET', `/v1/domains/${D}/doctor`);
    expect(doc.selfCheck).toMatchObject({
      ok: true,
      checks: [
        { check: 'dkim', ok: true },
        { check: 'spf', ok: true },
        { check: 'dmarc', ok: true },
      ],
    });
  });

  it('fails DKIM (and DMARC) within one interval once the published key changes, and recovers', async () => {
    const other = generateDkimKey('rsa', 2048).publicKeyBase64;
    const changed = Date.now();
    dns.set(`kurir1._domainkey.${D}`, 'TXT', [`v=DKIM1; k=rsa; p=${other}`]);
    await until(async () => (await gauge(D, 'dkim')) === 0, INTERVAL_S * 1000 + 1500, 'the DKIM self-check failing', 50);
    const detectedMs = Date.now() - changed;
    expect(detectedMs).toBeLessThanOrEqual(INTERVAL_S * 1000 + 1500);
    expect(await gauge(D, 'spf')).toBe(1);
    // The Ed25519 signature still verifies and aligns, so DMARC passes on it.
    expect(await gauge(D, 'dmarc')).toBe(1);
    const doc = await admin('GET', `/v1/domains/${D}/doctor`);
    expect(doc.selfCheck.ok).toBe(false);
    expect(doc.selfCheck.checks[0]).toMatchObject({ check: 'dkim', ok: false });
    expect(doc.selfCheck.checks[0].reason).toMatch(new RegExp(`^DKIM kurir1\\._domainkey\\.${D.replace('.', '\\.')}: (fail|neutral)`));
    expect(check(doc, 'dkim:kurir1').status).toBe('fail');
    // The incident view names the domain, the failed check and the reason.
    const incidents = await admin('GET', '/v1/incidents');
    expect(incidents.status).toBe('critical');
    const mine = incidents.domains.find((d: { domain: string }) => d.domain === D);
    expect(mine).toMatchObject({ status: 'critical', findings: [{ severity: 'critical', kind: 'self-check', cause: 'dkim' }] });
    expect(mine.findings[0].text).toMatch(new RegExp(`^${D.replace('.', '\\.')}: the DKIM self-check failed at \\S+: DKIM kurir1\\._domainkey`));

    dns.remove(`kurir1e._domainkey.${D}`);
    await until(async () => (await gauge(D, 'dmarc')) === 0, INTERVAL_S * 1000 + 1500, 'the DMARC self-check failing');
    t.publishDkim(dns);
    for (const c of ['dkim', 'dmarc']) await until(async () => (await gauge(D, c)) === 1, INTERVAL_S * 1000 + 1500, `${c} passing again`);
    expect((await admin('GET', '/v1/incidents')).domains).toEqual([]);
    console.log(`self-check: DKIM change detected after ${detectedMs} ms (interval ${INTERVAL_S * 1000} ms)`);
  });

  it('re-checks every domain at once after a key change, and drops the series of a removed domain', async () => {
    const store = new SelfCheckStore(t.gateway.redis, createKeys(t.config.redis.prefix));
    const added = await admin('POST', '/v1/domains', { name: 'runtime.test' });
    for (const r of added.records.filter((x: any) => x.purpose === 'dkim')) dns.set(r.name, 'TXT', [r.strings]);
    const before = (await store.get(D))!.version;
    await admin('POST', '/v1/domains/runtime.test/verify');
    const after = await until(
      async () => {
        const r = await store.get(D);
        return r && r.version > before ? r : null;
      },
      1000,
      `${D} re-checked at the new version`,
    );
    expect(after.ok).toBe(true);
    await until(async () => (await gauge('runtime.test', 'dkim')) === 1, 3000, 'the runtime domain checked');
    // runtime.test has no SPF-aligned MAIL FROM, but its DKIM signature aligns: DMARC passes.
    expect(await gauge('runtime.test', 'dmarc')).toBe(1);

    await admin('DELETE', '/v1/domains/runtime.test');
    await until(async () => (await gauge('runtime.test', 'dkim')) === undefined, 3000, 'the removed domain series gone');
    expect(await gauge(D, 'dkim')).toBe(1);
  });
});

describe('in a cluster', () => {
  it('every worker exports the shared result: a second worker reports the failure another one found', async () => {
    // Same Redis prefix and the same key files: two gateways of one cluster.
    const dkim = t.config.domains[0].dkim.map((k) => ({ selector: k.selector, algorithm: k.algorithm, privateKeyFile: k.privateKeyFile }));
    const b = await startTestGateway({
      dns,
      prefix: t.config.redis.prefix,
      overrides: { ...overrides, roles: ['worker', 'api'], domains: [{ name: D, dkim }] },
    });
    try {
      await until(async () => (await gauge(D, 'dkim', b.url)) === 1, 5000, 'the second worker exporting the result');
      dns.set(`kurir1._domainkey.${D}`, 'TXT', [`v=DKIM1; k=rsa; p=${generateDkimKey('rsa', 2048).publicKeyBase64}`]);
      for (const url of [t.url, b.url])
        await until(async () => (await gauge(D, 'dkim', url)) === 0, INTERVAL_S * 1000 + 1500, `${url} reporting the failure`, 50);
      t.publishDkim(dns);
      for (const url of [t.url, b.url]) await until(async () => (await gauge(D, 'dkim', url)) === 1, INTERVAL_S * 1000 + 1500, `${url} passing again`, 50);
    } finally {
      await b.close();
    }
  }, 20_000);
});

describe('SelfCheckStore lock', () => {
  it('lets one owner hold a domain at a time; only the holder releases it; it lapses after its TTL', async () => {
    const store = new SelfCheckStore(t.gateway.redis, createKeys(t.config.redis.prefix));
    expect(await store.lock('lock.test', 'worker-a', 300)).toBe(true);
    expect(await store.lock('lock.test', 'worker-b', 300)).toBe(false);
    await store.unlock('lock.test', 'worker-b');
    expect(await store.lock('lock.test', 'worker-b', 300)).toBe(false);
    await store.unlock('lock.test', 'worker-a');
    expect(await store.lock('lock.test', 'worker-b', 300)).toBe(true);
    await until(() => store.lock('lock.test', 'worker-c', 300), 2000, 'the lock lapsing');
  });
});

function check(report: any, id: string): any {
  return report.checks.find((c: any) => c.id === id);
}
