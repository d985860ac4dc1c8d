/**
 * Reading reports in threads (src/feedback/aggregate/report-pool.ts): the same answer as reading them on the
 * event loop for every fixture and hostile archive; a read over the wall-clock cap, a thread that dies and a
 * full queue each answer a refusal (never a rejection), and the next report is read by a new thread.
 */
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { ReportPool } from '../../../src/feedback/aggregate/report-pool.js';
import { readAggregateReport, readReportAttachment, REPORT_REFUSALS, type AggregateLimits } from '../../../src/feedback/reports/aggregate-report.js';
import {
  googleDmarcMail,
  googleManyRecordsZip,
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
const pools: ReportPool[] = [];

function pool(opts: Partial<ConstructorParameters<typeof ReportPool>[0]> = {}): ReportPool {
  const p = new ReportPool({ threads: 1, maxQueued: 8, maxParseMs: 60_000, ...opts });
  pools.push(p);
  return p;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

/** Every fixture and hostile input, as whole messages and as bare attachments. */
const inputs: Array<[string, Uint8Array]> = [
  ['google mail (zip)', Buffer.from(googleDmarcMail(TO))],
  ['outlook mail (gzip)', Buffer.from(outlookDmarcMail(TO))],
  ['yahoo mail (gzip body)', Buffer.from(yahooDmarcMail(TO))],
  ['google TLS-RPT mail', Buffer.from(tlsRptMail('tls-reports@bounce.example.test', 'google-tlsrpt.json'))],
  ['microsoft TLS-RPT mail', Buffer.from(tlsRptMail('tls-reports@bounce.example.test', 'microsoft-tlsrpt.json'))],
  ['foreign XML', Buffer.from(reportFixture('foreign-dmarc.xml'))],
  ['google, 2,000 records (zip)', googleManyRecordsZip(2000)],
  ['zip bomb', zipBomb(100)],
  ['gzip bomb', gzipBomb(100)],
  ['nested zip', nestedZip()],
  ['1,000,000 records', manyRecords(1_000_000)],
  ['billion laughs', Buffer.from(reportFixture('billion-laughs.xml'))],
  ['external entity', Buffer.from(reportFixture('external-entity.xml'))],
  ['truncated gzip', gzipSync(reportFixture('outlook-dmarc.xml')).subarray(0, 300)],
  ['truncated XML', Buffer.from(reportFixture('google-dmarc.xml').slice(0, 900))],
  ['broken JSON', Buffer.from('{"organization-name": ')],
  ['plain text mail', Buffer.from('From: a@b.test\r\nTo: dmarc@bounce.example.test\r\nSubject: hi\r\n\r\nhello\r\n')],
];

describe('ReportPool', () => {
  it('answers exactly what reading on the event loop answers, for every fixture and hostile input', async () => {
    const p = pool({ threads: 2, maxQueued: inputs.length });
    const inPool = await Promise.all(inputs.map(([, bytes]) => readAggregateReport(bytes, limits, (b, l) => p.read(b, l))));
    for (const [i, [name, bytes]] of inputs.entries()) {
      const here = await readAggregateReport(bytes, limits);
      expect(inPool[i], name).toStrictEqual(here);
      expect(JSON.stringify(inPool[i]), name).toBe(JSON.stringify(here));
    }
    // Both kinds, the refusals and an internal-error-free run: the comparison covered something of each.
    expect(inPool.filter((r) => r.ok).length).toBe(7);
    expect(new Set(inPool.flatMap((r) => (r.ok ? [] : [r.reason])))).toEqual(
      new Set(['inflated-too-large', 'nested-archive', 'too-many-records', 'dtd-refused', 'truncated', 'malformed-xml', 'malformed-json', 'not-a-report']),
    );
    expect(p.workers().length).toBe(2);
  });

  it('refuses a read over the wall-clock cap as parse-timeout, stops its thread, and reads the next report in a new one', async () => {
    const p = pool({ maxParseMs: 300 });
    const big = googleManyRecordsZip(20_000);
    const warm = await p.read(Buffer.from(reportFixture('google-dmarc.xml')), limits);
    expect(warm.ok).toBe(true);
    const first = p.workers()[0];
    const timedOut = await p.read(big, limits);
    expect(timedOut).toMatchObject({ ok: false, reason: 'parse-timeout' });
    expect(REPORT_REFUSALS).toContain('parse-timeout');
    const next = await p.read(Buffer.from(reportFixture('google-dmarc.xml')), limits);
    expect(next).toStrictEqual(readReportAttachment(Buffer.from(reportFixture('google-dmarc.xml')), limits));
    expect(p.workers()).toHaveLength(1);
    expect(p.workers()[0]).not.toBe(first);
  });

  it('answers internal-error for the report of a thread that dies (out of memory) and reads the next one in a new thread', async () => {
    const p = pool({ resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 } });
    const died = await p.read(googleManyRecordsZip(40_000), limits);
    expect(died).toMatchObject({ ok: false, reason: 'internal-error' });
    if (!died.ok) expect(died.detail).toMatch(/thread stopped/);
    const next = await p.read(Buffer.from(reportFixture('yahoo-dmarc.xml')), limits);
    expect(next).toStrictEqual(readReportAttachment(Buffer.from(reportFixture('yahoo-dmarc.xml')), limits));
  });

  it('refuses as busy when maxQueued reports already wait; the others are read', async () => {
    const p = pool({ maxQueued: 1 });
    const big = googleManyRecordsZip(5000);
    const reads = [p.read(big, limits), p.read(big, limits), p.read(big, limits)];
    const third = await reads[2];
    expect(third).toMatchObject({ ok: false, reason: 'busy' });
    const [a, b] = await Promise.all(reads.slice(0, 2));
    expect(a.ok && b.ok).toBe(true);
  });

  it('close answers busy for reports waiting or being read and for any read after it; safe twice', async () => {
    const p = pool({ maxQueued: 4 });
    const big = googleManyRecordsZip(20_000);
    const reads = [p.read(big, limits), p.read(big, limits)];
    await p.close();
    for (const r of await Promise.all(reads)) expect(r).toMatchObject({ ok: false, reason: 'busy' });
    expect(await p.read(big, limits)).toMatchObject({ ok: false, reason: 'busy' });
    await p.close();
    expect(p.workers()).toEqual([]);
  });
});
