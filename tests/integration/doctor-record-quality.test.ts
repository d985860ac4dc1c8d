/**
 * The doctor on records that exist but do not do their job, against real DNS on loopback: an SPF record that
 * authorises every IP (`+all`, bare `all`) fails and `?all` warns; a DMARC `rua=` without `mailto:` warns; a
 * DMARC or MTA-STS record that is published but invalid says so (not "publishes no record"); a DKIM lookup that
 * fails (SERVFAIL) warns like SPF and DMARC instead of asking to publish the record again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DnsServer } from '../helpers/dns-server.js';
import type { PolicyServer } from '../helpers/policy-server.js';
import { ADMIN_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { BOUNCE, doctorGatewayForFile, IP, publishGoodRecords } from '../helpers/doctor-gateway.js';

const D = 'example.test';

let dns: DnsServer;
let web: PolicyServer;
let t: TestGateway;

/** Every record of a correctly configured example.test, and the gateway's DKIM keys. */
function publishGood(): void {
  publishGoodRecords({ dns, web, t }, D);
}

const doctor = async (): Promise<any> => {
  const res = await fetch(`${t.url}/v1/domains/${D}/doctor`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  expect(res.status).toBe(200);
  return res.json();
};

/** The checks that did not pass. */
const problems = async (): Promise<any[]> => (await doctor()).checks.filter((c: any) => c.status !== 'pass');

doctorGatewayForFile({ masterKey: 'f', blocklists: ['bl.test'] }, (d) => {
  ({ dns, web, t } = d);
  publishGood();
});

afterEach(() => publishGood());

describe('doctor: records that exist but do not do their job', () => {
  it('the correctly published domain passes every check (the baseline of the cases below)', async () => {
    expect(await problems()).toEqual([]);
  });

  it('SPF +all or a bare all fails spf (every IP passes), with the record to publish; spf-ips is not claimed to pass', async () => {
    for (const term of ['+all', 'all']) {
      dns.set(D, 'TXT', [`v=spf1 ip4:${IP} ${term}`]);
      const bad = await problems();
      expect(bad.map((c) => c.id)).toEqual(['spf']);
      expect(bad[0]).toMatchObject({
        status: 'fail',
        summary: `SPF record of ${D} (From domain) authorises every IP on the internet (${term}: v=spf1 ip4:${IP} ${term})`,
      });
      expect(bad[0].why).toMatch(/anyone on the internet/);
      expect(bad[0].fix).toContain(`${D}. IN TXT "v=spf1 ip4:${IP} -all"`);
      expect((await doctor()).checks.some((c: any) => c.id === 'spf-ips')).toBe(false);
    }
    dns.set(BOUNCE, 'TXT', ['v=spf1 +all']);
    dns.set(D, 'TXT', [`v=spf1 ip4:${IP} -all`]);
    expect((await problems()).map((c) => [c.id, c.status])).toEqual([[`spf:${BOUNCE}`, 'fail']]);
  });

  it('SPF ?all warns: unlisted IPs get neutral (the sending IPs still pass spf-ips)', async () => {
    dns.set(D, 'TXT', [`v=spf1 ip4:${IP} ?all`]);
    const bad = await problems();
    expect(bad.map((c) => [c.id, c.status])).toEqual([['spf', 'warn']]);
    expect(bad[0].summary).toBe(`SPF record of ${D} (From domain) ends with ?all: IPs it does not list get neutral, not fail (v=spf1 ip4:${IP} ?all)`);
    expect(bad[0].fix).toMatch(/^end it with -all/);
  });

  it('DMARC rua= without mailto: warns that receivers send it no reports, with the record to publish', async () => {
    dns.set(`_dmarc.${D}`, 'TXT', [`v=DMARC1; p=reject; rua=dmarc@${BOUNCE}`]);
    let bad = await problems();
    expect(bad.map((c) => [c.id, c.status])).toEqual([['dmarc', 'warn']]);
    expect(bad[0].summary).toBe(`DMARC p=reject, but rua= dmarc@${BOUNCE} is not a mailto: URI: receivers send no reports to it`);
    expect(bad[0].fix).toBe(
      `write each rua= address as a mailto: URI, e.g. rua=mailto:dmarc@${BOUNCE}: _dmarc.${D}. IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@${BOUNCE}"`,
    );
    dns.set(`_dmarc.${D}`, 'TXT', [`v=DMARC1; p=none; rua=mailto:dmarc@${BOUNCE}!10m, ops@example.org`]);
    bad = await problems();
    expect(bad.map((c) => [c.id, c.status, c.summary])).toEqual([
      ['dmarc', 'warn', 'DMARC p=none, but rua= ops@example.org is not a mailto: URI: receivers send no reports to it'],
    ]);
  });

  it('a DMARC record with v=DMARC1 not first fails as invalid (not as missing), with the record reordered', async () => {
    dns.set(`_dmarc.${D}`, 'TXT', [`p=reject; v=DMARC1; rua=mailto:dmarc@${BOUNCE}`]);
    const bad = await problems();
    expect(bad.map((c) => [c.id, c.status])).toEqual([['dmarc', 'fail']]);
    expect(bad[0].summary).toBe(
      `_dmarc.${D} publishes an invalid DMARC record: v=DMARC1 must be its first tag (RFC 7489 6.4), so receivers ignore it: "p=reject; v=DMARC1; rua=mailto:dmarc@${BOUNCE}"`,
    );
    expect(bad[0].fix).toBe(`put v=DMARC1 first: _dmarc.${D}. IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@${BOUNCE}"`);
  });

  it('an MTA-STS record without id= (or with v=STSv1 not first) fails as invalid, not as missing', async () => {
    const cases: Array<[string, string]> = [
      ['v=STSv1', 'id= is missing'],
      ['id=20261129; v=STSv1', 'v=STSv1 must be its first tag'],
    ];
    for (const [record, problem] of cases) {
      dns.set(`_mta-sts.${D}`, 'TXT', [record]);
      const bad = await problems();
      expect(bad.map((c) => [c.id, c.status])).toEqual([['mta-sts', 'fail']]);
      expect(bad[0].summary).toBe(`_mta-sts.${D} publishes an invalid MTA-STS record: ${problem}, so senders ignore it and apply no policy: "${record}"`);
      expect(bad[0].fix).toMatch(new RegExp(`^publish _mta-sts\\.${D.replace('.', '\\.')}\\. IN TXT "v=STSv1; id=[0-9a-f]{20}" \\(v=STSv1 first`));
    }
    dns.remove(`_mta-sts.${D}`);
    expect((await problems()).map((c) => [c.id, c.status, c.summary])).toEqual([['mta-sts', 'warn', `${D} publishes no MTA-STS policy (_mta-sts.${D} TXT)`]]);
  });

  it('a DKIM lookup that fails (SERVFAIL) warns that the lookup failed, not that the record must be published', async () => {
    dns.servfail(`kurir1._domainkey.${D}`);
    const report = await doctor();
    const bad = report.checks.filter((c: any) => c.status !== 'pass');
    expect(bad.map((c: any) => [c.id, c.status])).toEqual([['dkim:kurir1', 'warn']]);
    expect(report).toMatchObject({ result: 'warn', exitCode: 1 });
    expect(bad[0].summary).toBe(`DKIM kurir1._domainkey.${D} TXT: the lookup failed (ESERVFAIL); try again`);
    expect(bad[0].fix).toMatch(new RegExp(`^check that the DNS servers of ${D.replace('.', '\\.')} answer, then run the doctor again`));
    // An answer that the name does not exist is known: it still fails with the record to publish.
    dns.servfail(`kurir1._domainkey.${D}`, false);
    dns.remove(`kurir1._domainkey.${D}`);
    const missing = (await problems()).map((c) => [c.id, c.status, c.fix.slice(0, 28)]);
    expect(missing).toEqual([['dkim:kurir1', 'fail', 'publish exactly this record:']]);
  });
});
