/**
 * The bounce and complaint fixtures (tests/fixtures/feedback/*.eml) with their placeholders filled:
 * `{{VERP}}` (the VERP return path of the original message), `{{RCPT}}` (the recipient it was sent to) and
 * `{{MESSAGE_ID}}` (its Message-ID header, without brackets).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const FIXTURE_DIR = resolve(import.meta.dirname, '../fixtures/feedback');

export interface FixtureValues {
  verp: string;
  rcpt: string;
  messageId: string;
}

/** Names of every fixture file, sorted. */
export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.eml'))
    .sort();
}

/** A fixture with its placeholders replaced, as CRLF text (as it arrives over SMTP). */
export function loadFixture(name: string, values: FixtureValues): string {
  const text = readFileSync(join(FIXTURE_DIR, name), 'utf8')
    .replaceAll('{{VERP}}', values.verp)
    .replaceAll('{{RCPT}}', values.rcpt)
    .replaceAll('{{MESSAGE_ID}}', values.messageId);
  return text.replace(/\r?\n/g, '\r\n');
}

const BOUNDARY = 'RAA14128.773615765/mta.example.org';

/**
 * rfc3464-failed.eml with `parts` text/html parts of `bytesPerPart` each after its report parts (a returned
 * message in pieces, as some MTAs send it): 500 parts of about 3.7 kB make a 1.9 MB report that held the event
 * loop for 1.5–2.5 s when mailparser ran on it (converting each HTML part to text at the end, in one go).
 */
export function manyPartReport(values: FixtureValues, parts = 500, bytesPerPart = 3700): string {
  const dsn = loadFixture('rfc3464-failed.eml', values);
  const closing = `--${BOUNDARY}--`;
  const html = 'a<br>'.repeat(Math.ceil(bytesPerPart / 5)).slice(0, bytesPerPart);
  const part = `--${BOUNDARY}\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n${html}\r\n`;
  return `${dsn.slice(0, dsn.lastIndexOf(closing))}${part.repeat(parts)}${closing}\r\n`;
}

/** rfc3464-failed.eml returning a whole original of about `bytes` (base64 attachment) after its report parts. */
export function dsnReturningOriginal(values: FixtureValues, bytes: number): string {
  const dsn = loadFixture('rfc3464-failed.eml', values);
  const closing = `--${BOUNDARY}--`;
  const line = `${'QUJD'.repeat(19)}\r\n`;
  const original = [
    `--${BOUNDARY}`,
    'Content-Type: message/rfc822',
    '',
    `Return-Path: <${values.verp}>`,
    `To: ${values.rcpt}`,
    `Message-ID: <${values.messageId}>`,
    'MIME-Version: 1.0',
    'Content-Type: application/pdf',
    'Content-Transfer-Encoding: base64',
    '',
    line.repeat(Math.ceil(bytes / line.length)),
  ].join('\r\n');
  return `${dsn.slice(0, dsn.lastIndexOf(closing))}${original}${closing}\r\n`;
}
