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
