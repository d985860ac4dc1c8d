/**
 * Reading a message's header block: line ends, the split into header and body, header lines unfolded, one field's
 * value, and the block without some fields. Shared by prepareMessage (./headers.ts) and the MIME walk of
 * ./long-lines.ts; it imports nothing from either.
 */
import { KurirError } from '../lib/errors.js';

export interface HeaderLine {
  name: string;
  /** Unfolded value without the leading space. */
  value: string;
}

/** Converts bare LF (and bare CR) line ends to CRLF, as SMTP and DKIM canonicalization expect. */
export function toCrlf(raw: Buffer): Buffer {
  if (!hasBareLineEnd(raw)) return raw;
  return Buffer.from(raw.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

/**
 * Whether `buf` has a CR or LF that is not part of a CRLF. Scans the bytes with indexOf rather than a regular
 * expression over a latin1 copy: the check runs on every accepted message, and most have none.
 */
function hasBareLineEnd(buf: Buffer): boolean {
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) if (i === 0 || buf[i - 1] !== 0x0d) return true;
  for (let i = buf.indexOf(0x0d); i !== -1; i = buf.indexOf(0x0d, i + 1)) if (buf[i + 1] !== 0x0a) return true;
  return false;
}

/** Splits a CRLF message into its header block (without the blank line) and body. */
export function splitMessage(raw: Buffer): { header: string; body: Buffer } {
  const idx = raw.indexOf('\r\n\r\n');
  if (idx === -1) return { header: raw.toString('latin1').replace(/\r\n$/, ''), body: Buffer.alloc(0) };
  return { header: raw.subarray(0, idx).toString('latin1'), body: raw.subarray(idx + 4) };
}

/** Parses a header block into unfolded lines; throws BAD_MESSAGE on a line that is not a header. */
export function parseHeaders(header: string): HeaderLine[] {
  const out: HeaderLine[] = [];
  for (const line of header.split('\r\n')) {
    if (!line) continue;
    if (/^[ \t]/.test(line) && out.length) {
      out[out.length - 1].value += line.replace(/^[ \t]+/, ' ');
      continue;
    }
    const m = /^([\x21-\x39\x3b-\x7e]+)[ \t]*:[ \t]?(.*)$/.exec(line);
    if (!m) throw new KurirError('BAD_MESSAGE', `Malformed header line: ${JSON.stringify(line.slice(0, 60))}`, { field: 'message' });
    out.push({ name: m[1], value: m[2] });
  }
  return out;
}

/** The first header of that name (case-insensitive). */
export function headerValue(headers: HeaderLine[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find((h) => h.name.toLowerCase() === lower)?.value;
}

/** The header block without the fields named in `names` (lower case), each with its folded continuation lines. */
export function withoutFields(header: string, names: ReadonlySet<string>): string {
  const kept: string[] = [];
  let dropping = false;
  for (const line of header.split('\r\n')) {
    const continuation = line.startsWith(' ') || line.startsWith('\t');
    if (!continuation) {
      const colon = line.indexOf(':');
      dropping = colon > 0 && names.has(line.slice(0, colon).trimEnd().toLowerCase());
    }
    if (!dropping) kept.push(line);
  }
  return kept.join('\r\n');
}
