/**
 * DMARC aggregate and TLS-RPT reports end to end: a real gateway (roles api, feedback) with real Redis;
 * reports delivered over SMTP to the bounce MX (nodemailer, as a reporter's MTA does) and posted to
 * POST /v1/reports; counts read back from GET /v1/domains/:domain/reports, Redis and the metrics. The
 * gateway's clock is fixed near the fixtures' report day (2026-11-28) so the test does not age.
 */
import { gzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { ADMIN_KEY, adminRequest, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
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
} from '../helpers/report-fixtures.js';
import { strToU8, zipSync } from 'fflate';
import { sendToBounceMx, type BounceMxAnswer } from '../helpers/bounce-mx-client.js';

const START = Date.parse('2026-11-29T12:00:00Z');
const realStart = Date.now();
const clock = { now: () => START + (Date.now() - realStart) };
const DMARC = 'dmarc@bounce.example.test';
const TLSRPT = 'tls-reports@bounce.example.test';

let t: TestGateway;
let redis: Redis;

beforeAll(async () => {
  t = await startTestGateway({
    overrides: { roles: ['api', 'feedback'], domainKeys: { sendingIps: ['192.0.2.10', '192.0.2.11/32'] } },
    gatewayOptions: { clock },
  });
  redis = new Redis('redis://127.0.0.1:6379');
});

afterAll(async () => {
  await redis?.quit();
  await t?.close();
});

/** Delivers a message to the bounce MX as a reporter's MTA would. */
async function mail(to: string, raw: string | Uint8Array): Promise<BounceMxAnswer> {
  return sendToBounceMx(t.gateway.ports.feedback, to, raw, 'reports@reporter.test');
}

async function post(body: Uint8Array | string, contentType: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}/v1/reports`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': contentType },
    body: typeof body === 'string' ? body : Buffer.from(body),
  });
  return { status: res.status, body: await res.json() };
}

async function metric(name: string): Promise<Array<{ labels: Record<string, string>; value: number }>> {
  const m = t.gateway.metrics.registry.getSingleMetric(name);
  return ((await m?.get())?.values ?? []) as Array<{ labels: Record<string, string>; value: number }>;
}
const sumOf = async (name: string, labels: Record<string, string>): Promise<number> =>
  (await metric(name)).filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);

async function reportKeys(): Promise<string[]> {
  return (await redis.keys(`${t.config.redis.prefix}:report*`)).sort();
}

describe('reports from several reporters', () => {
  it('Google (zip), Microsoft (gzip), Yahoo (gzip body) over SMTP to the rua address are applied', async () => {
    for (const raw of [googleDmarcMail(DMARC), outlookDmarcMail(DMARC), yahooDmarcMail(DMARC)]) {
      const r = await mail(DMARC, raw);
      expect(r).toMatchObject({ ok: true });
      expect(r.response).toMatch(/^250 2\.0\.0 Report applied/);
    }
  });

  it('TLS reports from Google and Microsoft over SMTP to the TLS-RPT address are applied', async () => {
    expect((await mail(TLSRPT, tlsRptMail(TLSRPT, 'google-tlsrpt.json'))).response).toMatch(/^250 2\.0\.0 Report applied/);
    expect((await mail(TLSRPT, tlsRptMail(TLSRPT, 'microsoft-tlsrpt.json'))).response).toMatch(/^250 2\.0\.0 Report applied/);
  });

  it('a report of a foreign IP sending as the domain, posted by a forwarding mailbox, is applied; records of other domains are left out', async () => {
    const r = await post(reportFixture('foreign-dmarc.xml'), 'application/xml');
    expect(r).toMatchObject({
      status: 200,
      body: { result: 'applied', kind: 'dmarc', org: 'Mail.Ru', reportId: '28716459301', domains: ['example.test'], skipped: 1 },
    });
  });

  it('the same report again — over SMTP or HTTP — counts once', async () => {
    const before = await adminRequest(t.url, 'GET', '/v1/domains/example.test/reports');
    expect((await mail(DMARC, googleDmarcMail(DMARC))).response).toMatch(/^250 2\.0\.0 Report already received \(duplicate\)/);
    const name = 'google.com!example.test!1795824000!1795910399';
    const zip = zipSync({ [`${name}.xml`]: strToU8(reportFixture('google-dmarc.xml')) });
    expect(await post(zip, 'application/zip')).toMatchObject({ status: 200, body: { result: 'duplicate', reportId: '4857291836452917364' } });
    expect(await post(gzipSync(reportFixture('microsoft-tlsrpt.json')), 'application/tlsrpt+gzip')).toMatchObject({
      status: 200,
      body: { result: 'duplicate' },
    });
    // a forwarding mailbox posting the whole message, and the JSON without gzip
    expect(await post(outlookDmarcMail(DMARC), 'message/rfc822')).toMatchObject({ status: 200, body: { result: 'duplicate', org: 'Enterprise Outlook' } });
    expect(await post(reportFixture('microsoft-tlsrpt.json'), 'application/json')).toMatchObject({
      status: 200,
      body: { result: 'duplicate', kind: 'tlsrpt' },
    });
    const after = await adminRequest(t.url, 'GET', '/v1/domains/example.test/reports');
    expect(after.body.dmarc).toEqual(before.body.dmarc);
    expect(after.body.tlsRpt).toEqual(before.body.tlsRpt);
    expect(await sumOf('kurir_reports_received_total', { result: 'duplicate' })).toBe(5);
  });

  it('GET /v1/domains/:domain/reports: per-reporter rates, own IPs apart from foreign sources, TLS sessions and failures', async () => {
    const { status, body } = await adminRequest(t.url, 'GET', '/v1/domains/example.test/reports');
    expect(status).toBe(200);
    // google 120 own + 9 foreign, outlook 40 + 60 own, yahoo 31 own, mail.ru 250 foreign
    expect(body.dmarc).toMatchObject({
      reports: 4,
      messages: 510,
      dkimPass: 211,
      spfPass: 501,
      spfAligned: 0,
      dkimAligned: 211,
      dmarcPass: 211,
      ownMessages: 251,
      ownDkimFail: 40,
      ownDmarcFail: 40,
      foreignMessages: 259,
    });
    expect(body.dmarc.rates).toEqual({ dkim: 0.4137, spf: 0.9824, dkimAligned: 0.4137, spfAligned: 0, dmarc: 0.4137 });
    const byOrg = Object.fromEntries(body.dmarc.reporters.map((r: any) => [r.org, r]));
    expect(Object.keys(byOrg).sort()).toEqual(['enterprise outlook', 'google.com', 'mail.ru', 'yahoo']);
    expect(byOrg['enterprise outlook']).toMatchObject({
      messages: 100,
      dkimPass: 60,
      spfPass: 100,
      dmarcPass: 60,
      ownDkimFail: 40,
      rates: { dkimAligned: 0.6, dmarc: 0.6 },
    });
    expect(byOrg.yahoo.rates.dmarc).toBe(1);
    expect(body.dmarc.foreignSources).toEqual([
      { ip: '198.51.100.23', messages: 250, dmarcPass: 0 },
      { ip: '203.0.113.77', messages: 9, dmarcPass: 0 },
    ]);
    expect(body.tlsRpt).toMatchObject({
      reports: 1,
      successful: 8,
      failed: 3,
      policies: [{ policy: 'sts', successful: 8, failed: 3 }],
      failures: [{ resultType: 'certificate-expired', sessions: 3 }],
    });
    expect(body.recent.map((r: any) => r.reportId)).toContain('9e0c4a1f2b3d4c5e8f7a6b5c4d3e2f10');
    const bounce = await adminRequest(t.url, 'GET', '/v1/domains/bounce.example.test/reports?days=7');
    expect(bounce.body.tlsRpt).toMatchObject({ successful: 52, failed: 0, reporters: [{ org: 'google inc.' }] });
  });

  it('kurir domains reports DOMAIN prints the same, per reporter', async () => {
    const text = await runCli(['domains', 'reports', 'example.test', '--days', '7'], {
      cwd: process.cwd(),
      env: { KURIR_URL: t.url, KURIR_ADMIN_KEY: ADMIN_KEY },
    });
    expect(text).toContain('example.test, last 7 day(s)');
    expect(text).toContain('4 DMARC report(s), 510 messages; DMARC pass 41.4 %');
    expect(text).toContain('own IPs: 251 messages, DKIM fail 40, DMARC fail 40');
    expect(text).toMatch(/enterprise outlook\s+100\s+60\.0 %/);
    expect(text).toMatch(/198\.51\.100\.23\s+250\s+0/);
    expect(text).toContain('TLS reports: 1, sessions 8 successful, 3 failed: certificate-expired 3');
  });

  it('metrics: messages by source and result, own failures by check, TLS failures by type — with bounded labels', async () => {
    expect(await sumOf('kurir_dmarc_own_failures_total', { domain: 'example.test', reporter: 'microsoft', check: 'dkim' })).toBe(40);
    expect(await sumOf('kurir_dmarc_own_failures_total', { domain: 'example.test', reporter: 'microsoft', check: 'dmarc' })).toBe(40);
    expect(await sumOf('kurir_dmarc_own_failures_total', { reporter: 'google', check: 'dkim' })).toBe(0);
    expect(await sumOf('kurir_dmarc_messages_total', { source: 'foreign', dmarc: 'fail' })).toBe(259);
    expect(await sumOf('kurir_dmarc_messages_total', { source: 'own', dmarc: 'pass' })).toBe(211);
    expect(await sumOf('kurir_dmarc_messages_total', { reporter: 'mailru' })).toBe(250);
    expect(await sumOf('kurir_tlsrpt_failures_total', { domain: 'example.test', reporter: 'microsoft', result_type: 'certificate-expired' })).toBe(3);
    expect(await sumOf('kurir_tlsrpt_sessions_total', { domain: 'bounce.example.test', reporter: 'google', policy: 'sts', result: 'success' })).toBe(52);
    expect(await sumOf('kurir_reports_received_total', { result: 'applied' })).toBe(6);
  });

  it('keeps every report key for the retention only', async () => {
    const keys = await reportKeys();
    expect(keys.length).toBeGreaterThan(5);
    const maxMs = (t.config.feedback.reports.retentionDays + 2) * 86_400_000;
    for (const key of keys) {
      const ttl = await redis.pttl(key);
      expect(ttl, key).toBeGreaterThan(0);
      expect(ttl, key).toBeLessThanOrEqual(maxMs);
    }
  });
  it('the same new report twice at the same moment: one applied, one duplicate, counted once', async () => {
    const xml = gzipSync(
      reportFixture('outlook-dmarc.xml')
        .replace('9e0c4a1f2b3d4c5e8f7a6b5c4d3e2f10', 'race-1')
        .replace(/example\.test/g, 'race.example'),
    );
    const runtime = await adminRequest(t.url, 'GET', '/v1/domains/race.example/reports');
    expect(runtime.status).toBe(404);
    // a report about a domain Kurir does not send for writes nothing, however often it comes
    const both = await Promise.all([post(xml, 'application/gzip'), post(xml, 'application/gzip')]);
    expect(both.map((r) => r.body.error?.details?.reason)).toEqual(['unknown-domain', 'unknown-domain']);
    const own = gzipSync(reportFixture('yahoo-dmarc.xml').replace('1795824000.583112', 'race-2').replace('<count>31</count>', '<count>1</count>'));
    const results = await Promise.all([post(own, 'application/gzip'), post(own, 'application/gzip')]);
    expect(results.map((r) => r.body.result).sort()).toEqual(['applied', 'duplicate']);
  });
});

describe('hostile and unusable reports are refused, counted, and write nothing', () => {
  it('over SMTP: zip bomb, gzip bomb, nested zip — 550 5.6.0 naming the reason', async () => {
    const before = await reportKeys();
    const bombs: Array<[Uint8Array, string, string]> = [
      [zipBomb(100), 'application/zip', 'inflated-too-large'],
      [gzipBomb(100), 'application/gzip', 'inflated-too-large'],
      [nestedZip(), 'application/zip', 'nested-archive'],
    ];
    for (const [bytes, type, reason] of bombs) {
      const raw = googleDmarcMail(DMARC).replace(/Content-Type: application\/zip[\s\S]*?\r\n\r\n[\s\S]*?\r\n--/, (part) => {
        const head = part.slice(0, part.indexOf('\r\n\r\n')).replace('application/zip', type);
        return `${head}\r\n\r\n${Buffer.from(bytes).toString('base64').replace(/.{76}/g, '$&\r\n')}\r\n--`;
      });
      const r = await mail(DMARC, raw);
      expect(r, reason).toMatchObject({ ok: false, code: 550 });
      expect(r.response).toContain(`5.6.0 Report refused (${reason})`);
    }
    expect(await sumOf('kurir_reports_refused_total', { via: 'smtp', reason: 'inflated-too-large' })).toBe(2);
    expect(await sumOf('kurir_reports_refused_total', { via: 'smtp', reason: 'nested-archive' })).toBe(1);
    expect(await reportKeys()).toEqual(before);
  });

  it('over HTTP: DOCTYPE/entities, 1M records, truncated, unknown domain — 422 BAD_REPORT with the reason', async () => {
    const before = await reportKeys();
    const gz = gzipSync(reportFixture('yahoo-dmarc.xml').replace('1795824000.583112', 'cut-1'));
    const cases: Array<[Uint8Array | string, string, string]> = [
      [reportFixture('billion-laughs.xml'), 'text/xml', 'dtd-refused'],
      [gzipSync(reportFixture('external-entity.xml')), 'application/gzip', 'dtd-refused'],
      [manyRecords(1_000_000), 'application/gzip', 'too-many-records'],
      [gz.subarray(0, gz.length - 12), 'application/gzip', 'truncated'],
      [
        reportFixture('foreign-dmarc.xml')
          .replace(/example\.test/g, 'someone-else.example')
          .replace('28716459301', 'x-2'),
        'application/xml',
        'unknown-domain',
      ],
    ];
    for (const [body, type, reason] of cases) {
      const r = await post(body, type);
      expect(r.status, reason).toBe(422);
      expect(r.body.error).toMatchObject({ code: 'BAD_REPORT', field: 'body', details: { reason } });
      expect(r.body.error.message).toContain(`Report refused (${reason})`);
    }
    expect(await sumOf('kurir_reports_refused_total', { via: 'http', reason: 'dtd-refused' })).toBe(2);
    expect(await sumOf('kurir_reports_refused_total', { via: 'http', reason: 'too-many-records' })).toBe(1);
    expect(await sumOf('kurir_reports_refused_total', { via: 'http', reason: 'unknown-domain' })).toBe(3); // 2 in the race above
    expect(await reportKeys()).toEqual(before);
  });

  it('a plain message to the rua address is refused as not-a-report; other addresses stay refused at RCPT', async () => {
    const r = await mail(DMARC, 'From: someone@reporter.test\r\nTo: dmarc@bounce.example.test\r\nSubject: hello\r\n\r\nNot a report.\r\n');
    expect(r).toMatchObject({ ok: false, code: 550 });
    expect(r.response).toContain('(not-a-report)');
    expect(await mail('postmaster@bounce.example.test', googleDmarcMail('postmaster@bounce.example.test'))).toMatchObject({ ok: false, code: 550 });
  });

  it('GET refuses an unknown domain (404) and a days value outside the retention (400)', async () => {
    expect((await adminRequest(t.url, 'GET', '/v1/domains/someone-else.example/reports')).status).toBe(404);
    expect((await adminRequest(t.url, 'GET', '/v1/domains/example.test/reports?days=0')).body.error).toMatchObject({ code: 'VALIDATION', field: 'days' });
    expect((await adminRequest(t.url, 'GET', '/v1/domains/example.test/reports?days=9999')).status).toBe(400);
  });
});
