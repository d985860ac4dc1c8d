/**
 * Reports read in the gateway's report threads (feedback.reports.parseThreads): a gateway with one thread, no
 * queue (maxQueuedReports 0) and a tiny maxParseSeconds. A large real-layout report runs over the cap and is
 * refused as parse-timeout (SMTP 550, HTTP 422); a report arriving while the thread is busy is answered busy
 * (SMTP 451 4.3.2, HTTP 503 BUSY) so the sender retries; the next report is read by a new thread and applied.
 */
import { describe, expect, it } from 'vitest';
import { googleDmarcMail, googleManyRecords, googleManyRecordsZip, outlookDmarcMail, reportFixture } from '../helpers/report-fixtures.js';
import { ADMIN_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';
import { sendToBounceMx, type BounceMxAnswer } from '../helpers/bounce-mx-client.js';

const START = Date.parse('2026-11-29T12:00:00Z');
const realStart = Date.now();
const clock = { now: () => START + (Date.now() - realStart) };
const DMARC = 'dmarc@bounce.example.test';
/** Seconds of CPU at least, far over the cap below. */
const RECORDS = 20_000;

let t: TestGateway;

gatewayForFile(
  {
    overrides: { roles: ['api', 'feedback'], feedback: { reports: { parseThreads: 1, maxQueuedReports: 0, maxParseSeconds: 0.3 } } },
    gatewayOptions: { clock },
  },
  (g) => {
    t = g;
  },
);

async function mail(raw: string): Promise<BounceMxAnswer> {
  return sendToBounceMx(t.gateway.ports.feedback, DMARC, raw, 'reports@reporter.test');
}

async function post(body: Uint8Array, contentType: string): Promise<{ status: number; retryAfter: string | null; body: any }> {
  const res = await fetch(`${t.url}/v1/reports`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': contentType },
    body: Buffer.from(body),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

async function refused(reason: string, via: string): Promise<number> {
  const m = await t.gateway.metrics.registry.getSingleMetric('kurir_reports_refused_total')?.get();
  return (m?.values ?? []).filter((v) => v.labels.reason === reason && v.labels.via === via).reduce((n, v) => n + v.value, 0);
}

describe('report threads of a gateway', () => {
  it('over HTTP: one large report times out (422 parse-timeout), one posted meanwhile is busy (503 BUSY); the next is applied', async () => {
    const big = googleManyRecordsZip(RECORDS);
    const answers = await Promise.all([post(big, 'application/zip'), post(big, 'application/zip')]);
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([422, 503]);
    const timedOut = answers.find((a) => a.status === 422)!;
    expect(timedOut.body.error).toMatchObject({ code: 'BAD_REPORT', field: 'body', details: { reason: 'parse-timeout' } });
    const busy = answers.find((a) => a.status === 503)!;
    expect(busy.body.error).toMatchObject({ code: 'BUSY', details: { reason: 'busy' } });
    expect(busy.retryAfter).toBe('5');

    const next = await post(Buffer.from(outlookDmarcMail(DMARC)), 'message/rfc822');
    expect(next).toMatchObject({ status: 200, body: { result: 'applied', kind: 'dmarc', org: 'Enterprise Outlook' } });
    expect(await refused('parse-timeout', 'http')).toBe(1);
    expect(await refused('busy', 'http')).toBe(1);
  });

  it('over SMTP: 550 5.6.0 parse-timeout for the large report, 451 4.3.2 for one sent meanwhile; the next is applied', async () => {
    const big = googleDmarcMail(DMARC, googleManyRecords(RECORDS).replace('4857291836452917364', 'many-smtp'));
    const answers = await Promise.all([mail(big), mail(big)]);
    const codes = answers.map((a) => a.code).sort();
    expect(codes).toEqual([451, 550]);
    expect(answers.find((a) => a.code === 550)!.response).toContain('5.6.0 Report refused (parse-timeout)');
    expect(answers.find((a) => a.code === 451)!.response).toContain('4.3.2 Report not read now (busy)');

    const next = await mail(googleDmarcMail(DMARC, reportFixture('google-dmarc.xml')));
    expect(next).toMatchObject({ ok: true });
    expect(next.response).toContain('Report applied');
    expect(await refused('parse-timeout', 'smtp')).toBe(1);
    expect(await refused('busy', 'smtp')).toBe(1);
  });
});
