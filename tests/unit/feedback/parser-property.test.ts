/**
 * Property tests of the report parser's boundary (src/feedback/reports/report.ts): random bytes and mutated
 * fixtures (tests/helpers/report-mutations.ts: truncated, bytes flipped, headers deleted, huge headers,
 * binary parts, empty / duplicated / garbage Content-Type, Content-Disposition, Content-Transfer-Encoding,
 * boundary and charset, deep nesting) never make it throw, reject or fail internally; it answers a DSN,
 * an ARF report, or a typed "unusable" reason. The pure field parsers under it are total over arbitrary
 * strings too. bench/fuzz-feedback-parser.ts runs the same mutations 10,000 times and more.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseFeedbackReport } from '../../../src/feedback/reports/arf.js';
import { parseDeliveryStatus } from '../../../src/feedback/reports/dsn.js';
import { parsePlainBounce } from '../../../src/feedback/reports/plain-bounce.js';
import { parseDomino } from '../../../src/feedback/reports/plain-layouts-legacy.js';
import { parseExchange } from '../../../src/feedback/reports/plain-layouts.js';
import { originalRefs } from '../../../src/feedback/reports/mime.js';
import { parseReport, UNUSABLE_REASONS, type FeedbackReport } from '../../../src/feedback/reports/report.js';
import { verpAddress } from '../../../src/lib/verp.js';
import { fixtureNames, loadFixture } from '../../helpers/feedback-fixtures.js';
import { mutation } from '../../helpers/report-mutations.js';

const values = {
  verp: verpAddress('01hq7x3k9m2n4p6r8t0v2w4y6z', 'bounce.example.test', 'property-secret'),
  rcpt: 'nobody@example.org',
  messageId: 'orig-1@example.test',
};
const fixtures = fixtureNames().map((name) => Buffer.from(loadFixture(name, values), 'utf8'));
const ACTIONS = new Set(['failed', 'delayed', 'delivered', 'relayed', 'expanded']);

/** The shape every answer must have, whatever the input. */
function assertWellFormed(r: FeedbackReport): void {
  expect(['dsn', 'arf', 'unusable']).toContain(r.kind);
  if (r.kind === 'unusable') {
    expect(UNUSABLE_REASONS).toContain(r.reason);
    // internal-error means the parser caught an exception of its own: a bug, never an answer about the input.
    expect(r.reason, r.detail).not.toBe('internal-error');
    expect(typeof r.detail).toBe('string');
    return;
  }
  expect(Array.isArray(r.original.verpCandidates)).toBe(true);
  expect(Array.isArray(r.original.to)).toBe(true);
  if (r.kind === 'dsn') {
    expect(r.recipients.length).toBeGreaterThan(0);
    for (const x of r.recipients) {
      expect(ACTIONS.has(x.action)).toBe(true);
      if (x.status !== undefined) expect(x.status).toMatch(/^[245]\.\d{1,3}\.\d{1,3}$/);
      if (x.code !== undefined) expect(x.code).toBeGreaterThanOrEqual(200);
    }
  } else {
    expect(['abuse', 'fraud', 'virus', 'other']).toContain(r.feedbackType);
    expect(Array.isArray(r.recipients)).toBe(true);
  }
}

/** Parses and checks; a rejection fails the property with the input's size in the message. */
async function parsesSafely(input: Buffer): Promise<void> {
  let result: FeedbackReport;
  try {
    result = await parseReport(input, { timeoutMs: 5000 });
  } catch (err) {
    throw new Error(`parseReport rejected for a ${input.length}-byte input: ${String(err)}`);
  }
  assertWellFormed(result);
}

const fixture = fc.integer({ min: 0, max: fixtures.length - 1 }).map((i) => fixtures[i]);

describe('report parser boundary (property)', () => {
  it('never throws on random bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 20_000 }), (bytes) => parsesSafely(Buffer.from(bytes))),
      { numRuns: 150 },
    );
  });

  it('never throws on random text that looks like headers and MIME', async () => {
    const line = fc.oneof(
      fc.constantFrom(
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        'Content-Type: message/delivery-status',
        'Content-Type: message/feedback-report',
        '--b',
        '--b--',
        '',
        'Final-Recipient: rfc822; x@example.org',
        'Action: failed',
        'Status: 5.1.1',
        'Feedback-Type: abuse',
        'Content-Transfer-Encoding: base64',
        'Content-Type: message/rfc822',
      ),
      fc.string({ maxLength: 200 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 120 }), (lines) => parsesSafely(Buffer.from(lines.join('\r\n'), 'utf8'))),
      { numRuns: 200 },
    );
  });

  it('never fails on mutated fixtures (truncation, byte flips, deleted, huge or garbage MIME headers, binary parts)', async () => {
    await fc.assert(
      fc.asyncProperty(fixture, fc.array(mutation, { minLength: 1, maxLength: 3 }), async (original, mutations) => {
        await parsesSafely(mutations.reduce<Buffer>((b, m) => m(b), original));
      }),
      { numRuns: 400 },
    );
  }, 60_000);

  it('reads a report whose parts have empty or duplicated Content-Type and Content-Disposition headers', async () => {
    const raw = [
      'From: MAILER-DAEMON@mx.example.org',
      'Subject: Undelivered Mail Returned to Sender',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
      '',
      '--b',
      'Content-Type:',
      '',
      'The mail system',
      '--b',
      'Content-Type: message/delivery-status',
      'Content-Disposition:',
      'Content-Disposition: inline; inline',
      '',
      'Reporting-MTA: dns; mx.example.org',
      '',
      'Final-Recipient: rfc822; gone@example.org',
      'Action: failed',
      'Status: 5.1.1',
      '--b',
      'Content-Type:',
      'Content-Transfer-Encoding: bogus',
      '',
      'whatever',
      '--b--',
      '',
    ].join('\r\n');
    const r = await parseReport(raw);
    expect(r).toMatchObject({ kind: 'dsn', recipients: [{ address: 'gone@example.org', action: 'failed', status: '5.1.1' }] });
  });

  it('never throws on deeply nested multiparts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 300 }), async (depth) => {
        let body = 'Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; x@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n';
        for (let i = 0; i < depth; i++) body = `Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n${body}\r\n--n${i}--\r\n`;
        await parsesSafely(Buffer.from(`From: MAILER-DAEMON@x.example\r\nMIME-Version: 1.0\r\n${body}`, 'latin1'));
      }),
      { numRuns: 20 },
    );
  }, 60_000);

  it('parses adversarial inputs (backtracking bait) in bounded time', async () => {
    const bait = [
      `From: MAILER-DAEMON@x.example\r\nSubject: Undelivered Mail\r\n\r\nThis is the mail system at host x.\r\n\r\n<${'@'.repeat(1_500_000)}`,
      `From: MAILER-DAEMON@x.example\r\nSubject: Undelivered\r\n\r\nThe mail system\r\n${'<a@b>: host x[host x['.repeat(60_000)}`,
      `From: MAILER-DAEMON@x.example\r\nSubject: failure notice\r\n\r\n** Address not found **\r\nDelivery to the following recipient failed permanently:${' '.repeat(500_000)}\r\n${' \r\n'.repeat(200_000)}`,
      `From: MAILER-DAEMON@x.example\r\nSubject: Returned mail\r\n\r\n${'-'.repeat(1_500_000)}`,
      `From: postmaster@x.example\r\nSubject: Undeliverable\r\n\r\nDelivery has failed to these recipients or groups:\r\na@b.example\r\nDiagnostic information for administrators:\r\na@b.example\r\n#550 ${' '.repeat(19_000)}x\r\n`,
      `From: MAILER-DAEMON@yahoo.com\r\nSubject: Failure Notice\r\n\r\nSorry, we were unable to deliver your message to the following address.\r\n<a@b.example>:\r\n${' - a.b.c.d'.repeat(150_000)}x`,
      `From: MAILER-DAEMON@x.example\r\nSubject: Returned mail\r\n\r\nYour message to ${'a@'.repeat(600_000)} couldn't be delivered`,
      `From: MAILER-DAEMON@x.example\r\nSubject: Returned mail\r\n\r\n${'b+aaaa.'.repeat(200_000)}`,
    ];
    for (const text of bait) {
      const started = performance.now();
      await parsesSafely(Buffer.from(text, 'latin1'));
      expect(performance.now() - started, `${text.slice(0, 120)}…`).toBeLessThan(3000);
    }
  }, 60_000);

  it('reads a 1 MB delivery-status part that is one endless recipient group in linear time', async () => {
    // Until 1 Dec 2026 every field line rescanned its recipient group, so these took about 20 s each and
    // blocked the bounce MX (anyone can send to fbl@); now a few hundred milliseconds.
    const report = (fields: string): string =>
      [
        'From: MAILER-DAEMON@mx.example.org',
        'Subject: Undelivered Mail Returned to Sender',
        'MIME-Version: 1.0',
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        '',
        '--b',
        'Content-Type: message/delivery-status',
        '',
        'Reporting-MTA: dns; mx.example.org',
        '',
        fields,
        '--b--',
        '',
      ].join('\r\n');
    const nothingButRemoteMta = report('Remote-MTA:x\r\n'.repeat(75_000));
    const oneRecipient = report(
      `Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n${'Remote-MTA: dns; mx.example.org\r\n'.repeat(30_000)}`,
    );
    expect(nothingButRemoteMta.length).toBeGreaterThan(1_000_000);

    let started = performance.now();
    expect(await parseReport(nothingButRemoteMta)).toMatchObject({ kind: 'unusable', reason: 'truncated' });
    expect(performance.now() - started).toBeLessThan(3000);
    started = performance.now();
    expect(await parseReport(oneRecipient)).toMatchObject({
      kind: 'dsn',
      recipients: [{ address: 'gone@example.org', action: 'failed', status: '5.1.1', remoteMta: 'mx.example.org' }],
    });
    expect(performance.now() - started).toBeLessThan(3000);
    started = performance.now();
    expect(parseDeliveryStatus('Remote-MTA: dns; x\n'.repeat(100_000)).recipients).toEqual([]);
    expect(performance.now() - started).toBeLessThan(3000);
  }, 120_000);

  it('reads an Exchange list of 20,000 recipients and a text of nothing but Domino markers in linear time', () => {
    // Until 1 Dec 2026 each listed address was looked up in the list of those before it, and each Domino
    // marker searched the 8000 characters after it for its "because:": 1.1–1.8 s and 0.4–0.7 s here.
    const listed = Array.from({ length: 400 }, (_, i) => Array.from({ length: 50 }, (_, j) => `a${i * 50 + j}@b.example`).join(' '));
    const exchange = `Delivery has failed to these recipients or groups:\n${listed.join('\n')}\n\nDiagnostic information for administrators\n#550 5.1.1 x ##\n`;
    const domino = `${'was not delivered to:\n because:'.repeat(32_000)}\nbecause:\n  User unknown\n`;
    /** The fastest of three runs, in milliseconds (one slow run is the machine, not the parser). */
    const fastest = (run: () => unknown): number =>
      Math.min(
        ...[0, 1, 2].map(() => {
          const started = performance.now();
          run();
          return performance.now() - started;
        }),
      );
    expect(parseExchange(exchange, 'failed')?.recipients).toHaveLength(100);
    expect(parseExchange(exchange, 'failed')?.recipients[0]).toMatchObject({ address: 'a0@b.example', status: '5.1.1' });
    expect(parseDomino(domino, 'failed')?.recipients).toHaveLength(100);
    expect(parseDomino(domino, 'failed')?.recipients[0]).toMatchObject({ diagnostic: 'because: User unknown', status: '5.0.0' });
    expect(fastest(() => parseExchange(exchange, 'failed'))).toBeLessThan(150);
    expect(fastest(() => parseDomino(domino, 'failed'))).toBeLessThan(150);
  });

  it('answers too-large and empty without parsing', async () => {
    expect(await parseReport(Buffer.alloc(0))).toMatchObject({ kind: 'unusable', reason: 'empty' });
    expect(await parseReport(Buffer.alloc(3 * 1024 * 1024, 0x41))).toMatchObject({ kind: 'unusable', reason: 'too-large' });
  });

  it('keeps the pure field parsers total over arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 3000 }), fc.string({ maxLength: 100 }), (text, subject) => {
        const ds = parseDeliveryStatus(text);
        for (const r of ds.recipients) expect(ACTIONS.has(r.action)).toBe(true);
        parseFeedbackReport(text);
        parsePlainBounce(text, subject, subject);
        originalRefs([text], text);
      }),
      { numRuns: 500 },
    );
  });
});
