/**
 * Body lines over 998 octets (src/intake/long-lines.ts, through prepareMessage): each MIME leaf holding one is
 * re-encoded so that every line is short and a mail reader (mailparser) reads the same text, HTML and attachments;
 * every other byte stays; a long line that cannot be re-encoded is refused naming its line. Until 2 Dec 2026 such
 * lines were signed and sent as they were, and relays that fold them broke the DKIM signature.
 */
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { prepareMessage } from '../../../src/intake/headers.js';
import { longLineAt, MAX_LINE_OCTETS } from '../../../src/intake/long-lines.js';
import { KurirError } from '../../../src/lib/errors.js';

const now = Date.UTC(2026, 11, 2, 12, 0, 0);
const HEAD = ['From: a@example.test', 'To: b@dest.test', 'Subject: Your code', 'Date: Wed, 2 Dec 2026 12:00:00 +0000', 'Message-ID: <long@example.test>'];
const HTML = `<html><body><p>Ihr Code: <b>123456</b> – gültig 30 Minuten.</p>${'<td class="cell">Termin</td>'.repeat(110)}</body></html>`;

const message = (head: string[], body: string): Buffer => Buffer.from(`${head.join('\r\n')}\r\n\r\n${body}`, 'utf8');
const prepare = (raw: Buffer): Buffer => prepareMessage(raw, { hostname: 'gw.example.test', now }).raw;
const lines = (raw: Buffer): string[] => raw.toString('latin1').split('\r\n');

function refusal(raw: Buffer): KurirError {
  try {
    prepare(raw);
  } catch (err) {
    if (err instanceof KurirError) return err;
    throw err;
  }
  throw new Error('prepareMessage accepted the message');
}

/** What a mail reader shows of a message: text, HTML and each attachment's type and content. */
async function readable(raw: Buffer) {
  const m = await simpleParser(raw);
  return { text: m.text, html: m.html, attachments: m.attachments.map((a) => [a.contentType, a.content.toString('base64')]) };
}

describe('a message without a long line', () => {
  it('is left byte for byte, however its parts are encoded', () => {
    const raw = message(
      [...HEAD, 'MIME-Version: 1.0', 'Content-Type: multipart/alternative; boundary="b"'],
      `--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${'ü'.repeat(499)}\r\n--b--\r\n`,
    );
    expect(prepare(raw)).toBe(raw);
    expect(longLineAt(raw)).toBe(-1);
  });

  it('may have lines of exactly 998 octets', () => {
    const raw = message(HEAD, `${'x'.repeat(MAX_LINE_OCTETS)}\r\n${'y'.repeat(MAX_LINE_OCTETS)}`);
    expect(prepare(raw)).toBe(raw);
    expect(longLineAt(Buffer.from(`${'x'.repeat(MAX_LINE_OCTETS + 1)}\r\n`))).toBe(0);
  });
});

describe('a single-part message with a long line', () => {
  it('is sent quoted-printable with its header saying so, MIME-Version added, and reads the same', async () => {
    const raw = message([...HEAD, 'Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: 8bit'], `${HTML}\r\n`);
    expect(Buffer.byteLength(HTML)).toBeGreaterThan(3000);
    const out = prepare(raw);
    const text = out.toString('latin1');
    expect(text.startsWith(`${HEAD.join('\r\n')}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n`)).toBe(true);
    expect(text.match(/^Content-Transfer-Encoding:/gim)).toHaveLength(1);
    expect(text).toMatch(/^MIME-Version: 1\.0\r$/m);
    expect(lines(out).every((l) => l.length <= 76)).toBe(true);
    expect(await readable(out)).toEqual(await readable(raw));
  });
});

describe('a multipart message with a long line', () => {
  const head = [...HEAD, 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="outer"'];
  const plain = 'Ihr Code: 123456\r\n';
  const pdf = Buffer.alloc(900, 0x25).toString('base64');
  const body = [
    'This is a multi-part message in MIME format.',
    '--outer',
    'Content-Type: multipart/alternative; boundary=inner',
    '',
    '--inner',
    'Content-Type: text/plain; charset=utf-8',
    '',
    plain,
    '--inner',
    'Content-Type: text/html; charset=utf-8',
    '',
    HTML,
    '--inner--',
    '',
    '--outer',
    'Content-Type: application/pdf; name=termin.pdf',
    'Content-Transfer-Encoding: base64',
    '',
    pdf,
    '--outer--',
    'epilogue',
  ].join('\r\n');

  it('has only the leaves with long lines re-encoded: base64 lines split, the HTML quoted-printable, the rest as it was', async () => {
    const raw = message(head, body);
    const out = prepare(raw);
    const text = out.toString('utf8');
    expect(lines(out).every((l) => l.length <= 76)).toBe(true);
    expect(text).toContain(`--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${plain}\r\n--inner\r\n`);
    expect(text).toContain('--inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html>');
    expect(text.startsWith(`${head.join('\r\n')}\r\n\r\nThis is a multi-part message in MIME format.\r\n--outer\r\n`)).toBe(true);
    expect(text.endsWith('\r\n--outer--\r\nepilogue')).toBe(true);
    expect(text).not.toMatch(/^MIME-Version: 1\.0\r\n(?:.*\r\n)*MIME-Version/m);
    expect(await readable(out)).toEqual(await readable(raw));
  });

  it('splits the long lines of a quoted-printable part without re-encoding it', async () => {
    const qp = `${'=C3=BC'.repeat(300)}x\r\nshort=20line`;
    const raw = message(
      [...HEAD, 'MIME-Version: 1.0', 'Content-Type: multipart/alternative; boundary=b'],
      `--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${qp}\r\n--b--\r\n`,
    );
    const out = prepare(raw);
    expect(out.toString('latin1')).toContain('Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=BC');
    expect(out.toString('latin1')).toContain('x\r\nshort=20line\r\n--b--\r\n');
    expect(lines(out).every((l) => l.length <= 76)).toBe(true);
    expect((await simpleParser(out)).text).toBe(`${'ü'.repeat(300)}x\nshort line`);
  });
});

describe('a long line that cannot be re-encoded', () => {
  const long = 'x'.repeat(1200);
  const multipart = (parts: string, type = 'multipart/mixed; boundary=b') => message([...HEAD, 'MIME-Version: 1.0', `Content-Type: ${type}`], parts);

  it.each([
    [
      'in a message/rfc822 part',
      multipart(`--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\n${long}\r\n--b--\r\n`),
      14,
      'in a message/rfc822 part',
    ],
    ['in the header of a part', multipart(`--b\r\nX-Long: ${long}\r\n\r\nbody\r\n--b--\r\n`), 10, 'in the header of a MIME part'],
    ['in the preamble', multipart(`${long}\r\n--b\r\n\r\nbody\r\n--b--\r\n`), 9, 'in the preamble of a multipart/mixed'],
    ['after the closing boundary', multipart(`--b\r\n\r\nbody\r\n--b--\r\n${long}`), 13, 'after the closing boundary of a multipart/mixed'],
    [
      'in a multipart without a boundary',
      multipart(`--b\r\n\r\n${long}\r\n--b--\r\n`, 'multipart/mixed'),
      11,
      'in a multipart/mixed without a boundary parameter',
    ],
    ['in a multipart without its closing boundary', multipart(`--b\r\n\r\n${long}\r\n`), 11, 'whose closing boundary --b-- is missing'],
    ['in an x-uuencode part', message([...HEAD, 'Content-Transfer-Encoding: x-uuencode'], long), 8, 'Content-Transfer-Encoding x-uuencode'],
    [
      'in a base64 multipart',
      multipart(`--b\r\n\r\n${long}\r\n--b--\r\n`, 'multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: base64'),
      12,
      'which a multipart may not have',
    ],
  ])('is refused %s, naming its line', (_, raw, line, where) => {
    const err = refusal(raw);
    expect(err).toMatchObject({ code: 'BAD_MESSAGE', field: 'message' });
    // The header line of a part counts its name too: `X-Long: ` and 1,200 octets.
    const octets = where.includes('header') ? 1208 : 1200;
    expect(err.message).toContain(`Line ${line} of the message is ${octets} octets long, over the 998 RFC 5322 allows, `);
    expect(err.message).toContain(where);
  });

  it('names the line as the client sent it, also when a Bcc header was removed before', () => {
    const raw = message(['Bcc: x@dest.test,', '  y@dest.test', ...HEAD, 'Content-Type: message/global'], `short\r\n${long}\r\n`);
    expect(refusal(raw).message).toMatch(/^Line 11 of the message /);
  });
});
