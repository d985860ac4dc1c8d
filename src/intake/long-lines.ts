/**
 * Body lines over 998 octets (RFC 5322 §2.1.1) in a raw message. Relays fold or cut such lines (Postfix at 2,048
 * octets), which breaks the DKIM body hash Kurir signed: the mail then fails DKIM and DMARC at the receiver. Before
 * signing, each MIME leaf with such a line is re-encoded so that every line is short and the decoded content is the
 * same: a 7bit, 8bit, binary or unlabelled part as quoted-printable (its Content-Transfer-Encoding header set to
 * say so), a base64 or quoted-printable part by splitting its long lines. Every other byte of the message stays as
 * it was. A long line where that cannot be done (a message/* part, a part's header, a malformed multipart) is
 * refused, naming the line, rather than sent to fail DKIM. A message without a long line costs one scan of its body.
 */
import libmime from 'libmime';
import { KurirError } from '../lib/errors.js';
import { encodeQuotedPrintable, splitEncodedLines } from '../lib/quoted-printable.js';
import { headerValue, parseHeaders, withoutFields } from './header-block.js';

/** Longest line RFC 5322 §2.1.1 allows, CRLF not counted. */
export const MAX_LINE_OCTETS = 998;

/** Multiparts nested deeper than this are refused when a long line is inside (a bound on the walk, not a MIME rule). */
const MAX_DEPTH = 40;

const CRLF = Buffer.from('\r\n', 'latin1');
const CTE = new Set(['content-transfer-encoding']);

/**
 * The offset of the first line in `buf` from `start` to `end` longer than {@link MAX_LINE_OCTETS} octets, or -1.
 * Expects CRLF line ends (toCrlf); the last `MAX_LINE_OCTETS` octets are not looked at, as no long line fits there.
 */
export function longLineAt(buf: Buffer, start = 0, end = buf.length): number {
  let from = start;
  while (end - from > MAX_LINE_OCTETS) {
    const lf = buf.indexOf(0x0a, from);
    const stop = lf === -1 || lf >= end ? end : lf - 1;
    if (stop - from > MAX_LINE_OCTETS) return from;
    if (stop === end) return -1;
    from = lf + 1;
  }
  return -1;
}

/** What the walk needs to word a refusal: the body it reads, and the number its first line has in the message as sent. */
interface Walk {
  body: Buffer;
  firstLine: number;
}

/** An entity rewritten: its header block (without the blank line) and its body in pieces. */
interface Rewritten {
  header: string;
  body: Buffer[];
  /** Whether the entity's own Content-Transfer-Encoding was changed. */
  recoded: boolean;
}

/** Refuses the message (BAD_MESSAGE) for the long line at `at` of the body, saying where it is and why it stays. */
function refuse(walk: Walk, at: number, where: string): never {
  let line = walk.firstLine;
  for (let i = walk.body.indexOf(0x0a); i !== -1 && i < at; i = walk.body.indexOf(0x0a, i + 1)) line++;
  const lf = walk.body.indexOf(0x0a, at);
  const octets = (lf === -1 ? walk.body.length : lf - 1) - at;
  throw new KurirError(
    'BAD_MESSAGE',
    `Line ${line} of the message is ${octets} octets long, over the ${MAX_LINE_OCTETS} RFC 5322 allows, ${where}, so Kurir cannot re-encode it: wrap the line, or send its part quoted-printable or base64`,
    { field: 'message' },
  );
}

/** The media type (lower case) and parameters of a Content-Type value; RFC 2045 §5.2's default for none or a broken one. */
function mediaType(value: string | undefined, fallback: string): { type: string; params: Record<string, string> } {
  const parsed = value === undefined ? null : libmime.parseHeaderValue(value);
  const type = String(parsed?.value || '')
    .trim()
    .toLowerCase();
  return /^[^/\s]+\/[^/\s]+$/.test(type) ? { type, params: parsed?.params ?? {} } : { type: fallback, params: {} };
}

/**
 * Rewrites the entity with header block `header` and body `walk.body[start, end)`, which holds a long line: a leaf is
 * re-encoded, a multipart has each of its parts that holds one rewritten.
 */
function rewrite(walk: Walk, header: string, start: number, end: number, fallbackType: string, depth: number): Rewritten {
  const fields = parseHeaders(header);
  const { type, params } = mediaType(headerValue(fields, 'content-type'), fallbackType);
  const encoding = (headerValue(fields, 'content-transfer-encoding') ?? '')
    .trim()
    .toLowerCase()
    .split(/[\s;(]/)[0];
  const at = longLineAt(walk.body, start, end);
  if (type.startsWith('multipart/')) {
    if (!['', '7bit', '8bit', 'binary'].includes(encoding))
      refuse(walk, at, `in a ${type} with Content-Transfer-Encoding ${encoding}, which a multipart may not have`);
    if (!params.boundary) refuse(walk, at, `in a ${type} without a boundary parameter`);
    if (depth >= MAX_DEPTH) refuse(walk, at, `in multiparts nested more than ${MAX_DEPTH} deep`);
    return { header, body: rewriteParts(walk, type, params.boundary, start, end, depth), recoded: false };
  }
  if (type.startsWith('message/')) refuse(walk, at, `in a ${type} part`);
  const content = walk.body.subarray(start, end);
  if (encoding === 'base64' || encoding === 'quoted-printable') {
    return { header, body: [splitEncodedLines(content, encoding, MAX_LINE_OCTETS)], recoded: false };
  }
  if (!['', '7bit', '8bit', 'binary'].includes(encoding)) refuse(walk, at, `in a part with Content-Transfer-Encoding ${encoding}`);
  const kept = header ? withoutFields(header, CTE) : '';
  return { header: `${kept ? `${kept}\r\n` : ''}Content-Transfer-Encoding: quoted-printable`, body: [encodeQuotedPrintable(content)], recoded: true };
}

/** A boundary delimiter line of a multipart: where it starts and ends (CRLF not included), and whether it closes. */
interface Delimiter {
  start: number;
  end: number;
  close: boolean;
}

/** The delimiter lines of `boundary` in `buf[start, end)`, up to and with the closing one (RFC 2046 §5.1.1). */
function delimiters(buf: Buffer, boundary: string, start: number, end: number): Delimiter[] {
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const afterLineEnd = Buffer.concat([CRLF, dash]);
  const found: Delimiter[] = [];
  for (let at = start; at < end; ) {
    const first = at === start && buf.subarray(start, start + dash.length).equals(dash);
    const next = first ? -1 : buf.indexOf(afterLineEnd, at);
    if (!first && next === -1) break;
    const hit = first ? start : next + 2;
    if (hit + dash.length > end) break;
    const lf = buf.indexOf(0x0a, hit);
    const lineEnd = lf === -1 || lf >= end ? end : lf - 1;
    const rest = buf.subarray(hit + dash.length, lineEnd).toString('latin1');
    const close = /^--[ \t]*$/.test(rest);
    if (close || /^[ \t]*$/.test(rest)) found.push({ start: hit, end: lineEnd, close });
    if (close) break;
    at = lineEnd;
  }
  return found;
}

/** The body of a multipart with each part that holds a long line rewritten, the rest as it was. */
function rewriteParts(walk: Walk, type: string, boundary: string, start: number, end: number, depth: number): Buffer[] {
  const { body } = walk;
  const marks = delimiters(body, boundary, start, end);
  const last = marks[marks.length - 1];
  if (!last?.close) refuse(walk, longLineAt(body, start, end), `in a ${type} whose closing boundary --${boundary}-- is missing`);
  const preamble = longLineAt(body, start, Math.max(start, marks[0].start - 2));
  if (preamble !== -1) refuse(walk, preamble, `in the preamble of a ${type} (before its first boundary)`);
  const epilogue = longLineAt(body, last.end, end);
  if (epilogue !== -1) refuse(walk, epilogue, `after the closing boundary of a ${type}`);
  const childType = type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
  const pieces: Buffer[] = [];
  let kept = start;
  for (const mark of marks) if (mark.end - mark.start > MAX_LINE_OCTETS) refuse(walk, mark.start, `in a boundary line of a ${type}`);
  for (let i = 0; i < marks.length - 1; i++) {
    const mark = marks[i];
    const partStart = mark.end + 2;
    const partEnd = marks[i + 1].start - 2; // the CRLF before a delimiter belongs to it
    if (partEnd <= partStart || longLineAt(body, partStart, partEnd) === -1) continue;
    pieces.push(body.subarray(kept, partStart), ...rewritePart(walk, partStart, partEnd, childType, depth + 1));
    kept = partEnd;
  }
  pieces.push(body.subarray(kept, end));
  return pieces;
}

/** One body part `walk.body[start, end)` (its header, a blank line, its body) with its long lines re-encoded. */
function rewritePart(walk: Walk, start: number, end: number, fallbackType: string, depth: number): Buffer[] {
  const { body } = walk;
  const noHeader = body[start] === 0x0d && body[start + 1] === 0x0a;
  const blank = noHeader ? start : body.indexOf('\r\n\r\n', start);
  if (blank === -1 || blank >= end) refuse(walk, longLineAt(body, start, end), 'in the header of a MIME part');
  const headerEnd = noHeader ? start : blank;
  const inHeader = longLineAt(body, start, headerEnd);
  if (inHeader !== -1) refuse(walk, inHeader, 'in the header of a MIME part');
  const header = body.subarray(start, headerEnd).toString('latin1');
  try {
    parseHeaders(header);
  } catch {
    refuse(walk, longLineAt(body, start, end), 'in a MIME part whose header is malformed');
  }
  const out = rewrite(walk, header, Math.min(end, headerEnd + (noHeader ? 2 : 4)), end, fallbackType, depth);
  return [Buffer.from(out.header ? `${out.header}\r\n\r\n` : '\r\n', 'latin1'), ...out.body];
}

/**
 * A message's header block and body with every body line over {@link MAX_LINE_OCTETS} octets re-encoded away (see the
 * file's comment), or null when the body has none: the usual case, one scan. A single-part message that is re-encoded
 * gets `MIME-Version: 1.0` when it had none, so that receivers decode it. `firstLine` is the number of the body's first
 * line in the message as the client sent it, for the refusal's wording.
 * @throws KurirError BAD_MESSAGE naming the line, for a long line that cannot be re-encoded.
 */
export function shortenLongLines(header: string, body: Buffer, firstLine: number): { header: string; body: Buffer } | null {
  if (longLineAt(body) === -1) return null;
  const out = rewrite({ body, firstLine }, header, 0, body.length, 'text/plain', 0);
  const mimeVersion = out.recoded && !headerValue(parseHeaders(header), 'mime-version');
  return { header: mimeVersion ? `${out.header}\r\nMIME-Version: 1.0` : out.header, body: Buffer.concat(out.body) };
}
