/**
 * The quoted-printable encoder and the split of encoded lines (src/lib/quoted-printable.ts): whatever the octets, the
 * output is short lines of printable ASCII that decode to the input, checked with a decoder written from RFC 2045
 * §6.7 here and against random input (fast-check).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENCODED_LINE_OCTETS, encodeQuotedPrintable, splitEncodedLines } from '../../../src/lib/quoted-printable.js';

/** RFC 2045 §6.7, strictly: `=XX` (upper-case hex) is one octet, `=` at a line's end is a soft line break, CRLF a line break. */
function decodeQp(encoded: Buffer): Buffer {
  const lines = encoded.toString('latin1').split('\r\n');
  const out: number[] = [];
  lines.forEach((line, i) => {
    const soft = line.endsWith('=');
    const text = soft ? line.slice(0, -1) : line;
    for (let j = 0; j < text.length; j++) {
      if (text[j] === '=') {
        const hex = text.slice(j + 1, j + 3);
        if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`bad escape ${JSON.stringify(text.slice(j, j + 3))} on line ${i + 1}`);
        out.push(Number.parseInt(hex, 16));
        j += 2;
      } else out.push(text.charCodeAt(j));
    }
    if (!soft && i < lines.length - 1) out.push(0x0d, 0x0a);
  });
  return Buffer.from(out);
}

/** Every line of `buf` (split at CRLF) is at most `max` octets. */
const linesWithin = (buf: Buffer, max: number): boolean =>
  buf
    .toString('latin1')
    .split('\r\n')
    .every((l) => l.length <= max);

describe('encodeQuotedPrintable', () => {
  it('writes short lines, escapes `=`, 8-bit octets and a space that ends a line, keeps CRLF as line breaks', () => {
    const input = Buffer.from(`a = b ü \r\n${'x'.repeat(200)}\r\nend\t`, 'utf8');
    const out = encodeQuotedPrintable(input);
    const text = out.toString('latin1');
    expect(text.startsWith('a =3D b =C3=BC=20\r\n')).toBe(true);
    expect(text.endsWith('\r\nend=09')).toBe(true);
    expect(linesWithin(out, ENCODED_LINE_OCTETS)).toBe(true);
    expect(decodeQp(out)).toEqual(input);
  });

  it('never splits an =XX at a soft line break', () => {
    for (let pad = 0; pad < 6; pad++) {
      const input = Buffer.from(`${'y'.repeat(70 + pad)}${'é'.repeat(40)}`, 'utf8');
      const out = encodeQuotedPrintable(input);
      for (const line of out.toString('latin1').split('\r\n')) expect(line).toMatch(/^(?:[^=]|=[0-9A-F]{2})*=?$/);
      expect(decodeQp(out)).toEqual(input);
    }
  });

  it('decodes to the input for any octets, with lines of at most 76 printable ASCII octets', () => {
    const lines = fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 6 });
    fc.assert(
      fc.property(lines, (parts) => {
        const input = Buffer.from(parts.map((p) => Buffer.from(p).toString('latin1')).join('\r\n'), 'latin1');
        const out = encodeQuotedPrintable(input);
        expect(out.toString('latin1')).not.toMatch(/[^\t\x20-\x7e\r\n]|[ \t]\r\n|[ \t]$|\r(?!\n)|(?<!\r)\n/);
        expect(linesWithin(out, ENCODED_LINE_OCTETS)).toBe(true);
        expect(decodeQp(out)).toEqual(input);
      }),
      { numRuns: 500 },
    );
  });
});

describe('splitEncodedLines', () => {
  it('splits a long base64 line into lines of 76 and leaves short lines as they are', () => {
    const data = Buffer.alloc(3000, 7);
    const encoded = Buffer.from(`U2hvcnQ=\r\n${data.toString('base64')}\r\n`, 'latin1');
    const out = splitEncodedLines(encoded, 'base64', 998);
    expect(out.toString('latin1').startsWith('U2hvcnQ=\r\n')).toBe(true);
    expect(linesWithin(out, 998)).toBe(true);
    expect(linesWithin(out.subarray(10), 76)).toBe(true);
    expect(out.toString('latin1').replace(/\r\n/g, '')).toBe(encoded.toString('latin1').replace(/\r\n/g, ''));
    expect(Buffer.from(out.subarray(10).toString('latin1'), 'base64')).toEqual(data);
  });

  it('gives a long quoted-printable line soft line breaks outside its =XX; the decoded content is the same', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 400, maxLength: 2000 }), fc.nat(80), (octets, shift) => {
        // One long encoded line, as a sender that does not wrap writes it (shifted so that escapes fall on every column).
        const long = encodeQuotedPrintable(Buffer.from(octets)).toString('latin1').replace(/=\r\n/g, '');
        const encoded = Buffer.from(`${'z'.repeat(shift)}${long}\r\nshort=20\r\n`, 'latin1');
        const out = splitEncodedLines(encoded, 'quoted-printable', 200);
        expect(decodeQp(out)).toEqual(decodeQp(encoded));
        expect(linesWithin(out, 200)).toBe(true);
        expect(out.toString('latin1').endsWith('\r\nshort=20\r\n')).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('answers the same buffer when no line is over the limit', () => {
    const encoded = Buffer.from('abc\r\ndef\r\n');
    expect(splitEncodedLines(encoded, 'quoted-printable', 998)).toBe(encoded);
  });
});
