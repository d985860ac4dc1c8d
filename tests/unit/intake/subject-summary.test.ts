/**
 * The subject a message's record keeps (src/intake/subject-summary.ts): decoded from what a header holds (8-bit UTF-8
 * or latin1 bytes, RFC 2047 encoded words) and cut to 200 code points, never inside a character or an encoded word.
 */
import { describe, expect, it } from 'vitest';
import { composeMessage } from '../../../src/intake/compose.js';
import { prepareMessage } from '../../../src/intake/headers.js';
import { SUBJECT_SUMMARY_CHARS, shownSubject, subjectSummary } from '../../../src/intake/subject-summary.js';

/** A header value as parseHeaders hands it over: the bytes of `text` in UTF-8, one latin1 character each. */
const asRead = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

describe('subjectSummary', () => {
  it.each([
    ['Your code', 'Your code'],
    ['=?UTF-8?Q?Your_code_=E2=98=83?=', 'Your code ☃'],
    ['=?utf-8?b?WW91ciBjb2RlIOKYgw==?=', 'Your code ☃'],
    ['Re: =?UTF-8?B?w7w=?= 8bit', 'Re: ü 8bit'],
    ['=?UTF-8?Q?=E2=98?= =?UTF-8?Q?=83?=', '☃'], // one character split across two words
    ['=?UTF-8?Q?Pa=C3=9F?=\t=?UTF-8?Q?_office?=', 'Paß office'],
    ['=?ISO-8859-1?Q?f=FCr_Sie?=', 'für Sie'],
    ['=?UTF-8?Q?a=0D=0Ab=00c=1B?=', 'a b c'], // control characters a word decodes to
    ['=?UTF-8?Q?never closed', '=?UTF-8?Q?never closed'],
    ['  spaced  ', 'spaced'],
  ])('%j → %j', (value, summary) => {
    expect(subjectSummary(value)).toBe(summary);
  });

  it('reads 8-bit bytes as UTF-8, and as latin1 when they are not UTF-8', () => {
    expect(subjectSummary(asRead('ü 8bit'))).toBe('ü 8bit');
    expect(subjectSummary(asRead('Ελληνικά 日本語 😀'))).toBe('Ελληνικά 日本語 😀');
    expect(subjectSummary('\xfc 8bit latin1')).toBe('ü 8bit latin1');
  });

  it('cuts at 200 code points, never inside a surrogate pair or an encoded word', () => {
    const emoji = '😀'.repeat(300);
    expect(subjectSummary(asRead(emoji))).toBe('😀'.repeat(SUBJECT_SUMMARY_CHARS));
    // 150 words of two characters each: the old .slice(0, 200) of the header ended inside the fourth word.
    const words = Array.from({ length: 150 }, () => '=?UTF-8?B?4piDw7w=?=').join(' ');
    expect(subjectSummary(words)).toBe('☃ü'.repeat(100));
    expect(subjectSummary(asRead(`${'a'.repeat(199)}😀b`))).toBe(`${'a'.repeat(199)}😀`);
  });

  it('decodes a bounded part of a huge Subject, still giving 200 characters of UTF-8 (not latin1)', () => {
    const noSpaces = `x${'é'.repeat(600_000)}`; // 1.2 MB; the bound falls inside a character
    const started = performance.now();
    expect(subjectSummary(asRead(noSpaces))).toBe(`x${'é'.repeat(199)}`);
    const words = Array.from({ length: 50_000 }, () => '=?UTF-8?Q?=E2=98=83?=').join(' ');
    expect(subjectSummary(words)).toBe('☃'.repeat(200));
    expect(performance.now() - started).toBeLessThan(500);
  });
});

describe('the subject prepareMessage gives the record', () => {
  it.each(['Your code ☃', 'Paß', 'Ελληνικά, 日本語 and a long tail '.repeat(12), 'plain ASCII subject'])(
    'is what a JSON client sent (up to 200 code points): %j',
    async (subject) => {
      const { raw } = await composeMessage({ from: 'noreply@example.test', to: ['b@dest.test'], subject, text: 'x' });
      const prepared = prepareMessage(raw, { hostname: 'h', now: 0 });
      expect(prepared.subject).toBe(Array.from(subject.trim()).slice(0, SUBJECT_SUMMARY_CHARS).join(''));
      expect(prepared.raw.equals(raw)).toBe(true); // the message itself is not changed
    },
  );
});

describe('shownSubject: a record stored before 2 Dec 2026 kept the header undecoded', () => {
  it.each([
    ['=?UTF-8?Q?Your_code_=E2=98=83?=', 'Your code ☃'],
    ['Re: =?ISO-8859-1?Q?f=FCr?= Sie', 'Re: für Sie'],
    [asRead('Grüße =?utf-8?b?4piD?='), 'Grüße ☃'], // 8-bit bytes beside an encoded word, as the old record kept them
  ])('decodes %j → %j', (stored, shown) => {
    expect(shownSubject(stored)).toBe(shown);
  });

  it('drops an encoded word the old 200-character cut left unfinished, and says so with …', () => {
    const stored = Array.from({ length: 150 }, () => '=?UTF-8?B?4piDw7w=?=')
      .join(' ')
      .slice(0, 200);
    expect(shownSubject(stored)).toBe(`${'☃ü'.repeat(9)}…`); // 9 whole words of 20 characters, then a cut one
  });

  it.each([
    ['Your code', 'a plain subject'],
    ['Your code ☃ =?utf-8?q?x?=', 'a decoded one with a character above latin1: newer, and left as it is'],
    ['=?UTF-8?Q?never closed', 'no whole encoded word'],
    ['', 'empty'],
  ])('shows %j as stored (%s)', (stored) => {
    expect(shownSubject(stored)).toBe(stored);
  });

  it('shows no subject as none', () => {
    expect(shownSubject(undefined)).toBeUndefined();
  });
});
