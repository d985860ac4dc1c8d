/**
 * The usual JSON submission composed without nodemailer's stream pipeline: a text and/or HTML body, no
 * attachments, no custom headers, addresses in ASCII. The output is byte for byte what MailComposer builds for the
 * same input (tests/unit/intake/compose-plain.test.ts compares both over a corpus), made with the same encoders
 * (nodemailer's mime-funcs and quoted-printable). MailComposer spends several event-loop turns and stream objects on
 * each message, about 7 % of the gateway's CPU under load (docs/benchmarks.md). Anything else returns null and
 * goes to MailComposer.
 */
import addressparser from 'nodemailer/lib/addressparser/index.js';
import mimeFuncs from 'nodemailer/lib/mime-funcs/index.js';
import qp from 'nodemailer/lib/qp/index.js';

/** What {@link composePlain} needs; addresses already checked and normalized by the caller. */
export interface PlainParts {
  /** The From header as submitted ("Name <address>" or an address). */
  from: string;
  to: string[];
  cc: string[];
  replyTo?: string;
  subject?: string;
  text?: string;
  html?: string;
  messageId: string;
  /** MailComposer's `baseBoundary`. */
  boundary: string;
  date: Date;
}

/** MailComposer checks no more than this for long lines (mime-funcs hasLongerLines) and encodes such text. */
const LONG_TEXT_CHARS = 128 * 1024;
const PRINTABLE_ADDRESS = /^[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+$/;

/**
 * What mime-funcs does not count as plain text: controls other than TAB, CR and LF, and everything above 0x7f. The
 * same set twice: as a regular expression for the scan of a whole body (3–4 times faster than a loop), and per UTF-16
 * unit for counting (faster than collecting regex matches). The byte-for-byte tests cover both (controls, DEL).
 */
const NOT_PLAIN = /[^\t\n\r\x20-\x7f]/;
function notPlain(c: number): boolean {
  return c <= 0x08 || c === 0x0b || c === 0x0c || (c >= 0x0e && c <= 0x1f) || c >= 0x80;
}

/** `Q` when latin letters outnumber the rest, else `B`: MimeNode's choice (_getTextEncoding) for a header value or a body. */
function wordEncoding(value: string): 'Q' | 'B' {
  let nonLatin = 0;
  let latin = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) latin++;
    else if (notPlain(c)) nonLatin++;
  }
  return nonLatin < latin ? 'Q' : 'B';
}

/** True when MimeNode sends the text as it is: plain text (mime-funcs isPlainText), no line over 76 characters. */
function sevenBit(text: string): boolean {
  if (NOT_PLAIN.test(text)) return false;
  // Lines end at LF or CR; only a stretch between two LFs longer than 76 needs looking at for CRs inside it.
  for (let start = 0; ; ) {
    const lf = text.indexOf('\n', start);
    const end = lf < 0 ? text.length : lf;
    if (end - start > 76 && !shortBetweenCrs(text, start, end)) return false;
    if (lf < 0) return true;
    start = lf + 1;
  }
}

/** True when no run of more than 76 characters in text[start, end) is free of CR. */
function shortBetweenCrs(text: string, start: number, end: number): boolean {
  let run = 0;
  for (let i = start; i < end; i++) {
    if (text.charCodeAt(i) === 0x0d) run = 0;
    else if (++run > 76) return false;
  }
  return true;
}

/** An address as MimeNode writes it (domain lower-cased), or null when it needs more than that. */
function plainAddress(address: string): string | null {
  if (!PRINTABLE_ADDRESS.test(address)) return null;
  const at = address.lastIndexOf('@');
  return address.slice(0, at + 1) + address.slice(at + 1).toLowerCase();
}

/** The From header value, or null when MailComposer must write it. */
function fromValue(from: string): string | null {
  const parsed = addressparser(from);
  if (parsed.length !== 1 || !('address' in parsed[0]) || !parsed[0].address) return null;
  const address = plainAddress(parsed[0].address);
  if (!address) return null;
  const name = parsed[0].name;
  if (!name) return address;
  if (/^[\w ]*$/.test(name)) return `${name} <${address}>`;
  if (/^[\x20-\x7e]*$/.test(name)) return `"${name.replace(/([\\"])/g, '\\$1')}" <${address}>`;
  return `${mimeFuncs.encodeWord(name, wordEncoding(name), 52)} <${address}>`;
}

/** A text part: its transfer encoding and the encoded content. */
interface BodyPart {
  type: string;
  encoding: '7bit' | 'quoted-printable';
  body: string;
}

/**
 * One body part, or null when it needs base64 (MailComposer's encoder then writes it) or is empty (MailComposer then
 * writes a part without a body).
 */
function bodyPart(subtype: 'plain' | 'html', content: string): BodyPart | null {
  if (!content) return null;
  const type = `text/${subtype}; charset=utf-8`;
  if (content.length <= LONG_TEXT_CHARS && sevenBit(content)) return { type, encoding: '7bit', body: content };
  if (wordEncoding(content) !== 'Q') return null;
  return { type, encoding: 'quoted-printable', body: qp.wrap(qp.encode(Buffer.from(content)), 76) };
}

const fold = (line: string): string => mimeFuncs.foldLines(line, 76);
/** mime-funcs' encodeWords with `encodeAll`, as MimeNode calls it (the type definitions omit the fourth argument). */
const encodeWords = mimeFuncs.encodeWords.bind(mimeFuncs) as (value: string, encoding: 'Q' | 'B', maxLength: number, encodeAll: boolean) => string;

/** The message MailComposer would build for these parts, or null when it must build it. */
export function composePlain(p: PlainParts): Buffer | null {
  const from = fromValue(p.from);
  const to = p.to.map(plainAddress);
  const cc = p.cc.map(plainAddress);
  const replyTo = p.replyTo === undefined ? undefined : plainAddress(p.replyTo);
  if (from === null || to.includes(null) || cc.includes(null) || replyTo === null) return null;
  const parts: BodyPart[] = [];
  for (const [subtype, content] of [
    ['plain', p.text],
    ['html', p.html],
  ] as const) {
    if (content === undefined) continue;
    const part = bodyPart(subtype, content);
    if (!part) return null;
    parts.push(part);
  }
  if (!parts.length) return null;
  const head = [fold(`From: ${from}`)];
  if (to.length) head.push(fold(`To: ${to.join(', ')}`));
  if (cc.length) head.push(fold(`Cc: ${cc.join(', ')}`));
  if (replyTo) head.push(fold(`Reply-To: ${replyTo}`));
  if (p.subject?.trim()) head.push(fold(`Subject: ${encodeWords(p.subject, wordEncoding(p.subject), 52, true)}`));
  head.push(`Message-ID: ${p.messageId}`, `Date: ${p.date.toUTCString().replace(/GMT/, '+0000')}`);
  let out: string;
  if (parts.length === 1) {
    // MimeNode's order for a single-part root: its own Content-Transfer-Encoding, MIME-Version, Content-Type last.
    const [{ type, encoding, body }] = parts;
    head.push(`Content-Transfer-Encoding: ${encoding}`, 'MIME-Version: 1.0', `Content-Type: ${type}`);
    out = `${head.join('\r\n')}\r\n\r\n${body}`;
  } else {
    const boundary = `--_NmP-${p.boundary}-Part_1`;
    head.push('MIME-Version: 1.0', fold(`Content-Type: multipart/alternative; boundary="${boundary}"`));
    out = `${head.join('\r\n')}\r\n\r\n`;
    parts.forEach(({ type, encoding, body }, i) => {
      out += `${i ? '\r\n' : ''}--${boundary}\r\nContent-Type: ${type}\r\nContent-Transfer-Encoding: ${encoding}\r\n\r\n${body}`;
    });
    out += `\r\n--${boundary}--\r\n`;
  }
  if (!out.endsWith('\n')) out += '\r\n';
  return Buffer.from(out);
}
