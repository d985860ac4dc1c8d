/**
 * DMARC aggregate and TLS-RPT reports as receivers send them (tests/fixtures/reports/ holds the XML and
 * JSON; this packs them the way each reporter does and wraps them in its mail message), and hostile archives.
 *
 * - Google: multipart/mixed, `application/zip` attachment `google.com!<domain>!<begin>!<end>.zip` holding the XML;
 * - Microsoft (Outlook.com / Enterprise Outlook): multipart/mixed, `application/gzip`
 *   `enterprise.protection.outlook.com!<domain>!<begin>!<end>.xml.gz`;
 * - Yahoo: the gzip as the message body itself (`application/gzip`, Content-Disposition attachment);
 * - TLS-RPT (RFC 8460 section 5.3, Google and Microsoft alike): `multipart/report; report-type="tlsrpt"` with an
 *   `application/tlsrpt+gzip` `<submitter>!<domain>!<begin>!<end>!001.json.gz` and the TLS-Report-* headers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { strToU8, zipSync } from 'fflate';

const DIR = join(import.meta.dirname, '../fixtures/reports');

/** A fixture file's text. */
export const reportFixture = (name: string): string => readFileSync(join(DIR, name), 'utf8');

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64').replace(/.{76}/g, '$&\r\n');

interface Attachment {
  contentType: string;
  filename: string;
  bytes: Uint8Array;
}

/** A multipart message with a short text part and the report attachment (CRLF line ends). */
export function reportMail(opts: {
  from: string;
  to: string;
  subject: string;
  headers?: string[];
  report?: string;
  attachment: Attachment;
  intro: string;
}): string {
  const boundary = `----=_Part_${Buffer.from(opts.attachment.filename).toString('hex').slice(0, 24)}`;
  return [
    `From: ${opts.from}`,
    `To: ${opts.to}`,
    `Subject: ${opts.subject}`,
    'Date: Sat, 28 Nov 2026 23:59:59 +0000',
    `Message-ID: <${boundary.slice(8)}@reports.test>`,
    ...(opts.headers ?? []),
    'MIME-Version: 1.0',
    `Content-Type: multipart/${opts.report ? `report; report-type="${opts.report}"` : 'mixed'}; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset="UTF-8"',
    '',
    opts.intro,
    '',
    `--${boundary}`,
    `Content-Type: ${opts.attachment.contentType}; name="${opts.attachment.filename}"`,
    `Content-Disposition: attachment; filename="${opts.attachment.filename}"`,
    'Content-Transfer-Encoding: base64',
    '',
    b64(opts.attachment.bytes),
    `--${boundary}--`,
    '',
  ].join('\r\n');
}

/** Google's DMARC aggregate report: a zip holding the XML. */
export function googleDmarcMail(to: string, xml = reportFixture('google-dmarc.xml')): string {
  const name = 'google.com!example.test!1795824000!1795910399';
  return reportMail({
    from: 'noreply-dmarc-support@google.com',
    to,
    subject: 'Report domain: example.test Submitter: google.com Report-ID: 4857291836452917364',
    intro: 'This is an aggregate report from google.com.',
    attachment: { contentType: 'application/zip', filename: `${name}.zip`, bytes: zipSync({ [`${name}.xml`]: strToU8(xml) }) },
  });
}

/** Microsoft's DMARC aggregate report: gzip XML without a DMARC namespace (xsd/xsi prefixes only). */
export function outlookDmarcMail(to: string): string {
  return reportMail({
    from: 'DMARC Aggregate Report <dmarcreport@microsoft.com>',
    to,
    subject: 'Report Domain: example.test Submitter: enterprise.protection.outlook.com Report-ID: 9e0c4a1f2b3d4c5e8f7a6b5c4d3e2f10',
    intro: 'This is a DMARC aggregate report from Microsoft Corporation. For Emails received between 2026-11-28 00:00:00 UTC to 2026-11-29 00:00:00 UTC.',
    attachment: {
      contentType: 'application/gzip',
      filename: 'enterprise.protection.outlook.com!example.test!1795824000!1795910400.xml.gz',
      bytes: gzipSync(reportFixture('outlook-dmarc.xml')),
    },
  });
}

/** Yahoo's DMARC aggregate report: the gzip is the whole message body. */
export function yahooDmarcMail(to: string): string {
  const name = 'yahoo.com!example.test!1795824000!1795910399.xml.gz';
  return [
    'From: Yahoo DMARC Report <noreply@dmarc.yahoo.com>',
    `To: ${to}`,
    'Subject: Report Domain: example.test Submitter: yahoo.com Report-ID: <1795824000.583112>',
    'Date: Sun, 29 Nov 2026 01:02:03 +0000',
    'MIME-Version: 1.0',
    `Content-Type: application/gzip; name="${name}"`,
    `Content-Disposition: attachment; filename="${name}"`,
    'Content-Transfer-Encoding: base64',
    '',
    b64(gzipSync(reportFixture('yahoo-dmarc.xml'))),
    '',
  ].join('\r\n');
}

/** An SMTP TLS report as RFC 8460 section 5.3 sends it (Google's and Microsoft's layout). */
export function tlsRptMail(to: string, fixture: 'google-tlsrpt.json' | 'microsoft-tlsrpt.json'): string {
  const json = JSON.parse(reportFixture(fixture)) as {
    'organization-name': string;
    'report-id': string;
    policies: Array<{ policy: { 'policy-domain': string } }>;
  };
  const submitter = fixture.startsWith('google') ? 'google.com' : 'microsoft.com';
  const domain = json.policies[0].policy['policy-domain'];
  return reportMail({
    from: `tls-reports@${submitter}`,
    to,
    subject: `Report Domain: ${domain} Submitter: ${submitter} Report-ID: <${json['report-id']}>`,
    headers: [`TLS-Report-Domain: ${domain}`, `TLS-Report-Submitter: ${submitter}`],
    report: 'tlsrpt',
    intro: `This is an aggregate TLS report from ${json['organization-name']}.`,
    attachment: {
      contentType: 'application/tlsrpt+gzip',
      filename: `${submitter}!${domain}!1795824000!1795910399!001.json.gz`,
      bytes: gzipSync(reportFixture(fixture)),
    },
  });
}

/** A zip whose one entry inflates to `mib` MiB of zeros (≈ 1000:1). */
export const zipBomb = (mib = 200): Uint8Array => zipSync({ 'report.xml': new Uint8Array(mib * 1024 * 1024) }, { level: 9 });
/** A gzip inflating to `mib` MiB. */
export const gzipBomb = (mib = 200): Buffer => gzipSync(Buffer.alloc(mib * 1024 * 1024, 0x20), { level: 9 });
/** A zip holding a zip holding the report. */
export const nestedZip = (): Uint8Array => zipSync({ 'inner.zip': zipSync({ 'report.xml': strToU8(reportFixture('google-dmarc.xml')) }) });
/** A gzip XML report with `n` records. */
export function manyRecords(n: number): Buffer {
  const head = reportFixture('yahoo-dmarc.xml').split('<record>')[0].replace('1795824000.583112', `many-${n}`);
  return gzipSync(Buffer.from(`${head}${'<record></record>'.repeat(n)}</feedback>`));
}
/**
 * Google's DMARC report XML with `n` records in its layout (each record of google-dmarc.xml repeated, with
 * distinct source IPs): 10,000 records are 7.3 MB of XML, 52 kB zipped.
 */
export function googleManyRecords(n: number): string {
  const xml = reportFixture('google-dmarc.xml');
  const first = xml.indexOf('<record>');
  const end = xml.lastIndexOf('</record>') + '</record>'.length;
  const records = xml.slice(first, end).split(/(?<=<\/record>)\s*/);
  const body = Array.from({ length: n }, (_, i) => {
    const ip = `198.18.${(i >> 8) & 255}.${i & 255}`;
    return `  ${records[i % records.length].replace(/<source_ip>[^<]*<\/source_ip>/, `<source_ip>${ip}</source_ip>`)}\n`;
  }).join('');
  return `${xml.slice(0, first)}${body.trimStart()}${xml.slice(end)}`;
}
/** Google's zip of {@link googleManyRecords} (the attachment alone, as a forwarding mailbox posts it). */
export const googleManyRecordsZip = (n: number): Uint8Array => zipSync({ 'google.com!example.test!1795824000!1795910399.xml': strToU8(googleManyRecords(n)) });
