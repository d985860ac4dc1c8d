/**
 * Mutations of bounce and complaint reports for the parser's property test
 * (tests/unit/feedback/parser-property.test.ts) and the long fuzz run (bench/fuzz-feedback-parser.ts): each
 * is a function of the original bytes. They aim at the MIME layer mailparser reads — truncation, flipped
 * bytes, deleted or huge headers, binary parts, broken boundaries, and empty, duplicated or garbage
 * Content-Type, Content-Disposition, Content-Transfer-Encoding, boundary and charset values.
 */
import fc from 'fast-check';

export type Mutation = (b: Buffer) => Buffer;

const latin1 = (b: Buffer): string => b.toString('latin1');
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

/** MIME header fields whose values steer mailparser (and so the report reader). */
const MIME_FIELDS = ['Content-Type', 'Content-Disposition', 'Content-Transfer-Encoding'] as const;

/** Values a broken or hostile sender puts in those fields. */
const GARBAGE_VALUES = [
  '',
  ' ',
  ';',
  ';;;',
  '"',
  '=',
  '/',
  'multipart/',
  '/report',
  'multipart/report; boundary=',
  'multipart/report; boundary=""',
  'multipart/report; report-type=; boundary="b',
  'multipart/report; report-type=feedback-report; report-type=delivery-status',
  'multipart/mixed; boundary="a"; boundary="b"',
  'text/plain; charset=',
  'text/plain; charset="',
  'text/plain; charset=x-no-such-charset',
  "text/plain; charset*=utf-8''%FF%FE%00",
  "text/plain; charset*0*=us-ascii''a; charset*1=b",
  'text/plain; name*0="a"; name*2="c"',
  "text/plain; name*=''",
  'message/delivery-status; charset=utf-7',
  'message/feedback-report; charset=utf-16',
  'message/rfc822; name=',
  'application/octet-stream; name="a\u00ff.bin"',
  'attachment; filename=',
  "attachment; filename*=utf-8''",
  "attachment; filename*0*=x''%; filename*1=",
  'inline; inline; attachment',
  'base64',
  'quoted-printable',
  'x-uuencode',
  'binary',
  '8bit',
  'bogus-encoding',
  '=?utf-8?B?====?=',
  '=?x-unknown?Q?=FF=FE?=',
  '\u00ff\u00fe\u0000\u0001',
  '(comment only)',
] as const;

/** Replace, empty, duplicate or fold the n-th occurrence of a MIME field (top-level or in any part). */
const mimeFieldMutation: fc.Arbitrary<Mutation> = fc
  .record({
    name: fc.constantFrom(...MIME_FIELDS),
    occurrence: fc.nat({ max: 20 }),
    mode: fc.constantFrom('replace', 'duplicate', 'duplicate-garbage', 'empty', 'fold'),
    value: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...GARBAGE_VALUES) }, { weight: 1, arbitrary: fc.string({ maxLength: 60 }) }),
  })
  .map(({ name, occurrence, mode, value }) => (b: Buffer) => {
    const text = latin1(b);
    const re = new RegExp(`^${name}:[^\\r\\n]*(?:\\r?\\n[ \\t][^\\r\\n]*)*`, 'gim');
    const hits = [...text.matchAll(re)];
    const clean = value.replace(/[\r\n]/g, ' ');
    if (!hits.length) return bytes(`${name}: ${clean}\r\n${text}`);
    const hit = hits[occurrence % hits.length];
    const start = hit.index ?? 0;
    const line = hit[0];
    const replacement =
      mode === 'replace'
        ? `${name}: ${clean}`
        : mode === 'duplicate'
          ? `${line}\r\n${line}`
          : mode === 'duplicate-garbage'
            ? `${line}\r\n${name}: ${clean}`
            : mode === 'empty'
              ? `${name}:`
              : `${name}:\r\n ${clean}\r\n\t${line.slice(name.length + 1).trim()}`;
    return bytes(text.slice(0, start) + replacement + text.slice(start + line.length));
  });

/** A boundary parameter replaced by an empty, quoted-empty, over-long or garbage value. */
const boundaryMutation: fc.Arbitrary<Mutation> = fc
  .constantFrom('boundary=', 'boundary=""', 'boundary="', `boundary="${'x'.repeat(5000)}"`, 'boundary=--', 'boundary="\u00ff\u0000"', 'boundary=";"')
  .map((replacement) => (b: Buffer) => bytes(latin1(b).replace(/boundary=(?:"[^"\r\n]*"|[^;\s]+)/i, replacement)));

/** Every mutation, for fc.array(mutation). */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  // truncation anywhere
  fc.double({ min: 0, max: 1, noNaN: true }).map((f) => (b: Buffer) => b.subarray(0, Math.floor(b.length * f))),
  // random byte flips
  fc
    .array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 40 })
    .map((flips) => (b: Buffer) => {
      const c = Buffer.from(b);
      for (const [pos, byte] of flips) if (c.length) c[Math.min(c.length - 1, Math.floor(pos * c.length))] = byte;
      return c;
    }),
  // delete header lines (top-level or of any part) matching a random field name
  fc
    .constantFrom(
      'Content-Type',
      'MIME-Version',
      'Content-Transfer-Encoding',
      'Content-Disposition',
      'Final-Recipient',
      'Action',
      'Status',
      'Feedback-Type',
      'From',
      'Subject',
      'Diagnostic-Code',
      'Original-Rcpt-To',
    )
    .map((name) => (b: Buffer) => bytes(latin1(b).replace(new RegExp(`^${name}:[^\\r\\n]*\\r?\\n`, 'gim'), ''))),
  // a huge header: one long line, or thousands of folded lines
  fc.constantFrom('long', 'folded', 'many').map((kind) => (b: Buffer) => {
    const huge =
      kind === 'long'
        ? `X-Huge: ${'A'.repeat(300_000)}\r\n`
        : kind === 'folded'
          ? `X-Folded: start\r\n${' continued line\r\n'.repeat(20_000)}`
          : Array.from({ length: 5000 }, (_, i) => `X-H${i}: v\r\n`).join('');
    return Buffer.concat([bytes(huge), b]);
  }),
  // a binary part inserted before the first boundary delimiter (or appended)
  fc.uint8Array({ minLength: 1, maxLength: 50_000 }).map((data) => (b: Buffer) => {
    const text = latin1(b);
    const m = /^--([^\r\n]+)\r?$/m.exec(text);
    if (!m) return Buffer.concat([b, Buffer.from(data)]);
    const part = Buffer.concat([
      bytes(`--${m[1]}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n`),
      Buffer.from(data),
      bytes('\r\n'),
    ]);
    const at = Buffer.byteLength(text.slice(0, m.index), 'latin1');
    return Buffer.concat([b.subarray(0, at), part, b.subarray(at)]);
  }),
  // base64 garbage declared as the delivery-status / feedback-report encoding
  fc.constant((b: Buffer) =>
    bytes(latin1(b).replace(/(Content-Type: message\/(?:delivery-status|feedback-report)[^\r\n]*)/gi, '$1\r\nContent-Transfer-Encoding: base64')),
  ),
  // boundaries broken or duplicated
  fc.constant((b: Buffer) => bytes(latin1(b).replace(/boundary="?([^";\r\n]+)"?/i, 'boundary="$1$1"'))),
  fc.constant((b: Buffer) => bytes(latin1(b).replace(/^--([^\r\n]+)--\r?$/gm, '--$1'))),
  boundaryMutation,
  { weight: 4, arbitrary: mimeFieldMutation },
);
