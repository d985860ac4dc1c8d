/**
 * The strict From header reader (src/intake/from-mailbox.ts): the forms mail clients and Kurir's own composer write
 * are accepted, every ambiguous or malformed value is refused with BAD_MESSAGE on `from` saying why. The refused
 * values in the first table are the audit's: each was accepted and signed with the first address's domain before.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { composeMessage } from '../../../src/intake/compose.js';
import { parseFromMailbox } from '../../../src/intake/from-mailbox.js';
import { prepareMessage } from '../../../src/intake/headers.js';
import { KurirError } from '../../../src/lib/errors.js';

/** The refusal parseFromMailbox throws for `value`; fails the test when it accepts it. */
function refusal(value: string): KurirError {
  try {
    parseFromMailbox(value);
  } catch (err) {
    if (err instanceof KurirError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(value)}`);
}

describe('parseFromMailbox accepts one mailbox', () => {
  it.each([
    ['noreply@example.test', 'noreply@example.test'],
    ['<noreply@example.test>', 'noreply@example.test'],
    ['Passport office <noreply@example.test>', 'noreply@example.test'],
    ['"Office, Passport" <noreply@example.test>', 'noreply@example.test'],
    ['=?UTF-8?Q?Pa=C3=9F?= <noreply@example.test>', 'noreply@example.test'],
    ['=?UTF-8?B?UGFzc3BvcnQgb2ZmaWNl?= <noreply@example.test>', 'noreply@example.test'],
    ['noreply@example.test (Passport office)', 'noreply@example.test'],
    ['(Passport office) noreply@example.test', 'noreply@example.test'],
    ['Passport (the (nested) office) <noreply@example.test> (trailing)', 'noreply@example.test'],
    ['"x@other.test" <noreply@example.test>', 'noreply@example.test'],
    ['"Quote \\" and backslash \\\\" <noreply@example.test>', 'noreply@example.test'],
    ['J. R. Doe <noreply@example.test>', 'noreply@example.test'],
    ['Name<noreply@example.test>', 'noreply@example.test'],
    ['Name < noreply@example.test >', 'noreply@example.test'],
    ['\tName\t<noreply@example.test>', 'noreply@example.test'],
    ['Pass "port" office <noreply@example.test>', 'noreply@example.test'],
    ["o'brien+tag@sub.example.test", "o'brien+tag@sub.example.test"],
    ['first.last@example.test', 'first.last@example.test'],
    ['"john doe"@example.test', '"john doe"@example.test'],
    ['Passport <"a@b"@example.test>', '"a@b"@example.test'],
    ['Bürgeramt <noreply@example.test>', 'noreply@example.test'],
    ['B\u00c3\u00bcrgeramt <noreply@example.test>', 'noreply@example.test'], // 8-bit UTF-8 as read (latin1)
  ])('%j → %s', (value, address) => {
    expect(parseFromMailbox(value)).toBe(address);
  });
});

describe('parseFromMailbox refuses anything else, saying why', () => {
  it.each([
    // The audit's four: two addresses, or one the receiver may read differently.
    ['noreply@example.test x@other.test', 'more after the address noreply@example.test: "x@other.test"'],
    ['<noreply@example.test>x@other.test', 'more after <noreply@example.test>: "x@other.test"'],
    ['noreply@example.test <>', 'the angle brackets are empty (<>)'],
    ['x@other.test <noreply@example.test>', 'the display name "x@other.test" holds an unquoted "@"'],
    // More of the same kind.
    ['<noreply@example.test> <x@other.test>', 'more after <noreply@example.test>: "<x@other.test>"'],
    ['<noreply@example.test> x', 'more after <noreply@example.test>: "x"'],
    ['Name <noreply@example.test> <x@other.test>', 'more after'],
    ['noreply@example.test <x@other.test>', 'holds an unquoted "@"'],
    ['Name x@other.test <noreply@example.test>', 'holds an unquoted "@"'],
    ['<>', 'the angle brackets are empty (<>)'],
    ['Name <>', 'the angle brackets are empty (<>)'],
    ['a@example.test, c@example.test', 'exactly one address, not a list'],
    ['a@example.test,', 'exactly one address, not a list'],
    ['Name <a@example.test>, x@other.test', 'exactly one address, not a list'],
    ['undisclosed-recipients:;', 'not a group'],
    ['Team: a@example.test;', 'not a group'],
    ['Re: x <a@example.test>', 'a ":" outside quotes'],
    ['<@route.test:a@example.test>', 'not a group'],
    // Malformed.
    ['', 'no address'],
    ['   ', 'no address'],
    ['(just a comment)', 'no address'],
    ['Passport office', 'no address (no "@")'],
    ['Passport office noreply@example.test', 'a display name needs the address in angle brackets'],
    ['noreply', 'no address (no "@")'],
    ['@example.test', 'unexpected "@" where the local part must start'],
    ['noreply@', 'the address has no domain'],
    ['noreply@example.test.', 'the domain has an empty part'],
    ['noreply@.example.test', 'the domain has an empty part'],
    ['no..reply@example.test', 'the local part has an empty part'],
    ['.noreply@example.test', 'the local part has an empty part'],
    ['noreply.@example.test', 'the local part has an empty part'],
    ['noreply@@example.test', 'the domain must start'],
    ['noreply@example.test@other.test', 'more after the address noreply@example.test'],
    ['noreply @example.test', 'no space or comment may stand inside the address'],
    ['noreply@ example.test', 'no space or comment may stand inside the address'],
    ['noreply(c)@example.test', 'no space or comment may stand inside the address'],
    ['noreply@example. test', 'no space or comment may stand inside the address'],
    ['noreply@[192.0.2.1]', 'a domain literal'],
    ['Name <noreply@example.test', 'no ">" after noreply@example.test'],
    ['Name <noreply@example.test x>', '"x" where the ">" after noreply@example.test must come'],
    ['Name noreply@example.test>', 'a display name needs the address in angle brackets'],
    ['Name <<noreply@example.test>>', 'unexpected "<" where the local part must start'],
    ['"unclosed <noreply@example.test>', 'a quoted string is not closed'],
    ['(unclosed noreply@example.test', 'a comment "(" is not closed'],
    ['noreply@example.test)', 'a ")" without its "("'],
    ['Name [x] <noreply@example.test>', 'has a "[" outside quotes'],
    ['.Name <noreply@example.test>', 'has a "." outside quotes'],
    ['Name \\ x <noreply@example.test>', 'has a "\\\\" outside quotes'],
  ])('%j: %s', (value, reason) => {
    const err = refusal(value);
    expect(err).toMatchObject({ code: 'BAD_MESSAGE', field: 'from' });
    expect(err.message.startsWith('From header: ')).toBe(true);
    expect(err.message).toContain(reason);
  });

  it('shows at most 60 characters of the value in a refusal', () => {
    const err = refusal(`noreply@example.test ${'x'.repeat(500)}`);
    expect(err.message.length).toBeLessThan(150);
    expect(err.message).toContain('...');
  });
});

describe('the From header intake reads (prepareMessage)', () => {
  const prepare = (from: string) => prepareMessage(Buffer.from(`From: ${from}\r\nTo: b@dest.test\r\n\r\nBody\r\n`, 'latin1'), { hostname: 'h', now: 0 });

  it('is one mailbox, folded or not', () => {
    expect(prepare('"Office, Passport"\r\n <noreply@example.test>').fromAddresses).toEqual(['noreply@example.test']);
    expect(() => prepare('noreply@example.test\r\n x@other.test')).toThrowError(/more after the address/);
  });

  // What composeMessage writes from a JSON `from`, by composePlain and by MailComposer (an attachment forces it).
  const json = { to: ['b@dest.test'], subject: 'Code', text: 'Code: 123456' };
  const attachment = { attachments: [{ filename: 'a.txt', content: 'aGk=' }] };

  it.each([
    'noreply@example.test',
    '<noreply@example.test>',
    'Passport office <noreply@example.test>',
    '"Office, Passport" <noreply@example.test>',
    '"x@other.test" <noreply@example.test>',
    'Paß Office <noreply@example.test>',
    '"Quote \\" and \\\\ backslash" <noreply@example.test>',
    'noreply@example.test (Passport office)',
    'Ελληνικά, 日本語 <noreply@example.test>',
    '"J. Doe; (tel) <x>" <noreply@example.test>',
  ])('round-trips the composer: %j', async (from) => {
    for (const extra of [{}, attachment]) {
      const { raw } = await composeMessage({ ...json, ...extra, from });
      expect(prepareMessage(raw, { hostname: 'h', now: 0 }).fromAddresses).toEqual(['noreply@example.test']);
    }
  });

  it('round-trips the composer for any display name (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.boolean(), async (name, withFile) => {
        // A JSON client's display name: quoted, its quotes and backslashes escaped, no line breaks or NUL.
        const clean = name.replace(/[\r\n\0]/g, ' ');
        const from = `"${clean.replace(/(["\\])/g, '\\$1')}" <noreply@example.test>`;
        const { raw } = await composeMessage({ ...json, ...(withFile ? attachment : {}), from });
        expect(prepareMessage(raw, { hostname: 'h', now: 0 }).fromAddresses).toEqual(['noreply@example.test']);
      }),
      { numRuns: 300 },
    );
  });
});
