/**
 * composePlain writes the usual JSON submission without MailComposer, and must write exactly what MailComposer
 * writes for it: every case below is built both ways and compared byte for byte (same Message-ID, boundary and
 * Date). A fixed corpus names the shapes that matter (Slovenian and Serbian text, long lines, trailing spaces, dots,
 * quoted and encoded display names, folding) and a seeded random corpus mixes them. Where composePlain declines
 * (base64 bodies, addresses it does not write itself), composeMessage uses MailComposer; that is checked too.
 */
import { describe, expect, it } from 'vitest';
import { buildWithMailComposer as reference, composeMessage } from '../../../src/intake/compose.js';
import { composePlain, type PlainParts } from '../../../src/intake/compose-plain.js';

const date = new Date('2026-11-29T21:07:03Z');

const parts = (o: Partial<PlainParts>): PlainParts => ({
  from: 'Bench <noreply@example.test>',
  to: ['user@dest.test'],
  cc: [],
  messageId: '<2b1c0f5e-7d1e-4a43-9a0e-3f1b2c3d4e5f@example.test>',
  boundary: '2b1c0f5e7d1e4a439a0e3f1b2c3d4e5f',
  date,
  ...o,
});

const long = 'Vaša koda za potrditev termina je 482913. '.repeat(6);
const CORPUS: Array<[string, Partial<PlainParts>]> = [
  ['ASCII text', { subject: 'Your code', text: 'Code: 123456\r\nValid for 30 minutes.\r\n' }],
  ['bare LF, no final newline', { subject: 'Code', text: 'line one\nline two' }],
  ['HTML only', { subject: 'Code', html: '<p>Your code is <b>123456</b></p>' }],
  ['text and HTML', { subject: 'Code', text: 'Code: 1', html: '<p>Code: 1</p>' }],
  ['Slovenian text and subject (quoted-printable)', { subject: 'Vaša koda za prijavo', text: 'Spoštovani,\nvaša koda je 123456.\nLep pozdrav' }],
  ['Serbian Latin HTML', { subject: 'Šifra: 123456', html: `<p>Poštovani, vaša šifra je 123456. Važi 30 minuta.</p>` }],
  ['lines longer than 76', { subject: 'Code', text: `${'x'.repeat(200)}\n${long}` }],
  ['a line of exactly 76 characters before CRLF (7bit)', { subject: 'Code', text: `${'a'.repeat(76)}\r\n${'b'.repeat(76)}` }],
  ['a line of 77 characters before CRLF (quoted-printable)', { subject: 'Code', text: `${'a'.repeat(77)}\r\nend` }],
  ['bare CRs break lines too (7bit)', { subject: 'Code', text: `${'a'.repeat(70)}\r${'b'.repeat(70)}\r${'c'.repeat(70)}` }],
  ['a long stretch between bare CRs (quoted-printable)', { subject: 'Code', text: `${'a'.repeat(70)}\r${'b'.repeat(77)}\n` }],
  ['DEL is plain text to MailComposer', { subject: 'Code', text: 'a\u007fb' }],
  ['trailing spaces and tabs, = signs, leading dots', { subject: 'a = b', text: 'end with space \nend with tab\t\n.dot line\n=3D literal\n' }],
  ['long ASCII subject is folded', { subject: `Appointment ${'confirmation '.repeat(12)}`, text: 'x' }],
  ['long Slovenian subject is folded into encoded words', { subject: `Potrditev termina ${'čšž '.repeat(30)}`, text: 'x' }],
  ['subject with a quote', { subject: 'Your "code"', text: 'x' }],
  ['whitespace subject is left out', { subject: '   ', text: 'x' }],
  ['no subject', { text: 'x' }],
  ['bare From address', { from: 'noreply@example.test', text: 'x' }],
  ['From name with a comma (quoted)', { from: '"Passport Office, Ljubljana" <noreply@example.test>', text: 'x' }],
  ['From name with a backslash and quote', { from: '"A \\"B\\" C" <noreply@example.test>', text: 'x' }],
  ['From name in Slovenian (encoded word)', { from: 'Upravna enota Šmarje <noreply@example.test>', text: 'x' }],
  ['From name in Cyrillic (B encoding)', { from: 'Управа <noreply@example.test>', text: 'x' }],
  ['upper-case domains are lower-cased', { from: 'noreply@Example.TEST', to: ['User@Dest.TEST'], text: 'x' }],
  [
    'cc, reply-to, several recipients folded',
    { to: Array.from({ length: 8 }, (_, i) => `applicant.number.${i}@dest.test`), cc: ['copy@dest.test'], replyTo: 'help@example.test', text: 'x' },
  ],
  ['only cc', { to: [], cc: ['copy@dest.test'], text: 'x' }],
  ['control characters go quoted-printable', { text: 'a\u0001b\fc' }],
];

describe('composePlain', () => {
  it.each(CORPUS)('%s: the same bytes as MailComposer', async (_name, o) => {
    const p = parts(o);
    const fast = composePlain(p);
    expect(fast, 'composePlain declined').not.toBeNull();
    expect(fast?.toString()).toBe((await reference(p)).toString());
  });

  it('declines what MailComposer encodes in base64 (mostly non-Latin bodies) and addresses it does not write', () => {
    expect(composePlain(parts({ text: 'Ваша шифра је 123456. Важи 30 минута.' }))).toBeNull();
    expect(composePlain(parts({ to: ['"a b"@dest.test'], text: 'x' }))).toBeNull();
    expect(composePlain(parts({ to: ['user@bücher.test'], text: 'x' }))).toBeNull();
    expect(composePlain(parts({ from: 'a@example.test, b@example.test', text: 'x' }))).toBeNull();
    expect(composePlain(parts({}))).toBeNull();
    expect(composePlain(parts({ text: '' }))).toBeNull();
  });

  it('matches MailComposer on 400 random messages', async () => {
    let seed = 20261129;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pieces = ['Koda', ' ', 'čšž', 'ČŠŽ', '\n', '\r\n', '\t', '=', '.', ' \n', 'x'.repeat(90), '123456', '<b>', '"', '€', 'ß', 'a-b_c'];
    const pick = (k: number): string => Array.from({ length: k }, () => pieces[rnd(pieces.length)]).join('');
    let compared = 0;
    for (let i = 0; i < 400; i++) {
      const text = rnd(3) ? pick(rnd(40)) : undefined;
      const html = rnd(2) || text === undefined ? `<p>${pick(rnd(40))}</p>` : undefined;
      const p = parts({
        subject: rnd(4) ? pick(rnd(12)) : undefined,
        text,
        html,
        from: rnd(2) ? `${pick(rnd(4)).replace(/[\r\n\t"<>]/g, '')} <noreply@example.test>` : 'noreply@example.test',
      });
      const fast = composePlain(p);
      if (!fast) continue;
      compared++;
      expect(fast.toString(), JSON.stringify(p)).toBe((await reference(p)).toString());
    }
    expect(compared).toBeGreaterThan(250); // the rest need base64 or are empty: MailComposer writes those
  });

  it('composeMessage falls back to MailComposer for what composePlain declines', async () => {
    const cyrillic = await composeMessage({ from: 'noreply@example.test', to: ['user@dest.test'], subject: 'Шифра', text: 'Ваша шифра је 123456.' });
    expect(cyrillic.raw.toString()).toMatch(/Content-Transfer-Encoding: base64/);
    const withHeader = await composeMessage({ from: 'noreply@example.test', to: ['user@dest.test'], text: 'x', headers: { 'x-booking-id': 'B-1' } });
    expect(withHeader.raw.toString()).toMatch(/^X-Booking-ID: B-1\r\n/m);
    const plain = await composeMessage({
      from: 'Bench <noreply@example.test>',
      to: ['user@dest.test'],
      bcc: ['audit@dest.test'],
      subject: 'Code',
      text: 'Code: 1',
    });
    expect(plain.recipients).toEqual(['user@dest.test', 'audit@dest.test']);
    expect(plain.raw.toString()).not.toMatch(/audit@/);
    expect(plain.raw.toString()).toMatch(
      /^Content-Transfer-Encoding: 7bit\r\nMIME-Version: 1\.0\r\nContent-Type: text\/plain; charset=utf-8\r\n\r\nCode: 1\r\n$/m,
    );
  });
});
