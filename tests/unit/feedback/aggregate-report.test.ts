/**
 * DMARC aggregate and TLS-RPT reading (src/feedback/reports/aggregate-report.ts): each reporter's real layout
 * reads to the same data, and every hostile archive or document is refused with its reason, fast and
 * within bounded memory.
 */
import { gzipSync } from 'node:zlib';
import { strToU8, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { readAggregateReport, readReportAttachment, type AggregateLimits } from '../../../src/feedback/reports/aggregate-report.js';
import type { DmarcReport } from '../../../src/feedback/reports/dmarc-aggregate.js';
import type { TlsReport } from '../../../src/feedback/reports/tls-rpt.js';
import { loadConfig } from '../../../src/config/load.js';
import {
  googleDmarcMail,
  gzipBomb,
  manyRecords,
  nestedZip,
  outlookDmarcMail,
  reportFixture,
  tlsRptMail,
  yahooDmarcMail,
  zipBomb,
} from '../../helpers/report-fixtures.js';

const limits: AggregateLimits = loadConfig({ file: 'config/default.yaml', env: {} }).feedback.reports;
const TO = 'dmarc@bounce.example.test';

async function dmarc(raw: string | Uint8Array): Promise<DmarcReport> {
  const r = await readAggregateReport(typeof raw === 'string' ? Buffer.from(raw) : raw, limits);
  if (!r.ok) throw new Error(`${r.reason}: ${r.detail}`);
  expect(r.report.kind).toBe('dmarc');
  return r.report as DmarcReport;
}

async function refusal(raw: Uint8Array | string, l: AggregateLimits = limits): Promise<string> {
  const r = await readAggregateReport(typeof raw === 'string' ? Buffer.from(raw) : raw, l);
  expect(r.ok).toBe(false);
  return r.ok ? '' : r.reason;
}

describe('reporters as they send their reports', () => {
  it('Google: zip attachment in multipart/mixed', async () => {
    const r = await dmarc(googleDmarcMail(TO));
    expect(r).toMatchObject({
      orgName: 'google.com',
      email: 'noreply-dmarc-support@google.com',
      reportId: '4857291836452917364',
      begin: 1795824000,
      policyDomain: 'example.test',
    });
    expect(r.records).toEqual([
      {
        sourceIp: '192.0.2.10',
        count: 120,
        dkimAligned: true,
        spfAligned: false,
        disposition: 'none',
        headerFrom: 'example.test',
        dkimPass: true,
        spfPass: true,
      },
      {
        sourceIp: '203.0.113.77',
        count: 9,
        dkimAligned: false,
        spfAligned: false,
        disposition: 'none',
        headerFrom: 'example.test',
        dkimPass: false,
        spfPass: false,
      },
    ]);
  });

  it('Microsoft: gzip XML with xsd/xsi prefixes and envelope identifiers', async () => {
    const r = await dmarc(outlookDmarcMail(TO));
    expect(r).toMatchObject({ orgName: 'Enterprise Outlook', email: 'dmarcreport@microsoft.com', reportId: '9e0c4a1f2b3d4c5e8f7a6b5c4d3e2f10' });
    expect(r.records.map((x) => [x.sourceIp, x.count, x.dkimAligned, x.dkimPass, x.spfPass])).toEqual([
      ['192.0.2.10', 40, false, false, true],
      ['192.0.2.11', 60, true, true, true],
    ]);
  });

  it('Yahoo: the gzip is the whole message body (no version element)', async () => {
    const r = await dmarc(yahooDmarcMail(TO));
    expect(r).toMatchObject({ orgName: 'Yahoo', reportId: '1795824000.583112', records: [{ sourceIp: '192.0.2.10', count: 31, dkimAligned: true }] });
  });

  it('the DMARC 2.0 namespace and an IPv6 source read the same way', async () => {
    const r = await dmarc(reportFixture('foreign-dmarc.xml'));
    expect(r.records.map((x) => [x.sourceIp, x.count, x.headerFrom])).toEqual([
      ['198.51.100.23', 250, 'example.test'],
      ['2001:db8:77::5', 4, 'not-ours.example'],
    ]);
  });

  it('TLS-RPT from Google (no failures) and Microsoft (certificate-expired), application/tlsrpt+gzip', async () => {
    const g = await readAggregateReport(Buffer.from(tlsRptMail('tls-reports@bounce.example.test', 'google-tlsrpt.json')), limits);
    const m = await readAggregateReport(Buffer.from(tlsRptMail('tls-reports@bounce.example.test', 'microsoft-tlsrpt.json')), limits);
    if (!g.ok || !m.ok) throw new Error('not read');
    expect(g.report).toMatchObject({
      kind: 'tlsrpt',
      orgName: 'Google Inc.',
      policies: [{ policyType: 'sts', policyDomain: 'bounce.example.test', successful: 52, failed: 0, failures: [] }],
    });
    expect((m.report as TlsReport).policies[0]).toMatchObject({
      policyDomain: 'example.test',
      successful: 8,
      failed: 3,
      failures: [{ resultType: 'certificate-expired', sessions: 3, sendingIp: '2603:10a6:20b:4f3::1', receivingMx: 'mx.example.test' }],
    });
  });

  it('a bare attachment (zip, gzip, XML, JSON) reads like the message holding it', async () => {
    const xml = reportFixture('google-dmarc.xml');
    for (const bytes of [zipSync({ 'r.xml': strToU8(xml) }), gzipSync(xml), Buffer.from(xml)]) {
      expect((await dmarc(bytes)).reportId).toBe('4857291836452917364');
    }
    const json = readReportAttachment(gzipSync(reportFixture('microsoft-tlsrpt.json')), limits);
    expect(json.ok && json.report.kind).toBe('tlsrpt');
  });
});

describe('hostile input is refused with its reason', () => {
  it('a zip bomb (100 MiB of zeros in about 100 kB) stops at the inflated cap', async () => {
    const bomb = zipBomb(100);
    expect(bomb.length).toBeLessThan(200_000);
    const before = process.memoryUsage().rss;
    const started = Date.now();
    expect(await refusal(bomb)).toBe('inflated-too-large');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(process.memoryUsage().rss - before).toBeLessThan(limits.maxInflatedBytes * 2);
  });

  it('a gzip bomb stops at the cap', async () => {
    expect(await refusal(gzipBomb(100))).toBe('inflated-too-large');
  });

  it('nested archives: a zip in a zip, a zip in a gzip, a zip entry named .gz', async () => {
    expect(await refusal(nestedZip())).toBe('nested-archive');
    expect(await refusal(gzipSync(zipSync({ 'r.xml': strToU8('<feedback/>') })))).toBe('nested-archive');
    expect(await refusal(zipSync({ 'r.xml.gz': gzipSync('<feedback/>') }))).toBe('nested-archive');
  });

  it('too many zip entries', async () => {
    const entries = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`r${i}.xml`, strToU8('<feedback/>')]));
    expect(await refusal(zipSync(entries))).toBe('too-many-entries');
  });

  it('DOCTYPE and entities (billion laughs, external entity) are refused, never expanded', async () => {
    expect(await refusal(reportFixture('billion-laughs.xml'))).toBe('dtd-refused');
    expect(await refusal(gzipSync(reportFixture('external-entity.xml')))).toBe('dtd-refused');
  });

  it('1,000,000 records are refused before a tree is built', async () => {
    const started = Date.now();
    expect(await refusal(manyRecords(1_000_000))).toBe('too-many-records');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('truncated gzip, zip and XML', async () => {
    const gz = gzipSync(reportFixture('google-dmarc.xml'));
    expect(await refusal(gz.subarray(0, gz.length - 20))).toBe('truncated');
    const zip = zipSync({ 'r.xml': strToU8(reportFixture('google-dmarc.xml')) });
    expect(await refusal(zip.subarray(0, Math.floor(zip.length / 2)))).toBe('truncated');
    const xml = reportFixture('google-dmarc.xml');
    expect(await refusal(xml.slice(0, xml.length / 2))).toBe('malformed-xml');
  });

  it('invalid fields: a source_ip that is no address, a negative count, a report without id', async () => {
    const xml = reportFixture('yahoo-dmarc.xml');
    expect(await refusal(xml.replace('192.0.2.10', 'not-an-ip'))).toBe('invalid-report');
    expect(await refusal(xml.replace('<count>31</count>', '<count>-5</count>'))).toBe('invalid-report');
    expect(await refusal(xml.replace(/<report_id>.*<\/report_id>/, ''))).toBe('invalid-report');
    expect(await refusal('{"report-id":"x","policies":[{"policy":{"policy-type":"bogus"}}]}')).toBe('invalid-report');
    expect(await refusal('{"report-id": "x", "policies": [')).toBe('malformed-json');
  });

  it('no report at all: plain mail, an unknown attachment, an XML that is no DMARC report', async () => {
    expect(await refusal('From: a@b.test\r\nSubject: hi\r\n\r\nhello\r\n')).toBe('not-a-report');
    expect(await refusal('<html><body>hi</body></html>')).toBe('not-a-report');
    expect(await refusal(Buffer.alloc(0))).toBe('not-a-report');
  });

  it('an attachment larger than maxCompressedBytes', async () => {
    expect(await refusal(gzipSync(reportFixture('google-dmarc.xml')), { ...limits, maxCompressedBytes: 100 })).toBe('too-large');
  });
});
