/**
 * The subject a message's record keeps for `GET /v1/messages/:id`, the message search and the console: the Subject
 * header as a person reads it. Only the summary: the message's bytes stay as they were submitted.
 */
import libmime from 'libmime';

/** Characters (code points) of the subject a record keeps. */
export const SUBJECT_SUMMARY_CHARS = 200;

/**
 * How much of a long header value is decoded: well over what SUBJECT_SUMMARY_CHARS characters take encoded (200
 * four-byte characters are 2,400 characters of Q-encoding), and a bound on the work for a megabyte-long Subject.
 */
const DECODE_WINDOW = 8192;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The first `max` characters of a latin1 header value, cut at a space (never inside an encoded word) or else before a UTF-8 sequence. */
function leadingPart(value: string, max: number): string {
  if (value.length <= max) return value;
  const space = value.lastIndexOf(' ', max);
  if (space > max / 2) return value.slice(0, space);
  let end = max;
  while (end > 0 && (value.charCodeAt(end) & 0xc0) === 0x80) end--;
  return value.slice(0, end);
}

/** The first `max` code points of `text` (a surrogate pair is never cut in half). */
function firstCodePoints(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = 0;
  for (let n = 0; n < max && end < text.length; n++) {
    const c = text.charCodeAt(end);
    end += c >= 0xd800 && c <= 0xdbff && end + 1 < text.length ? 2 : 1;
  }
  return text.slice(0, end);
}

/**
 * The summary of a Subject header value as parseHeaders reads it (unfolded, one latin1 character per byte): its
 * bytes read as UTF-8 (as latin1 when they are not valid UTF-8), RFC 2047 encoded words decoded, control characters
 * (which a decoded word may carry) as spaces, cut to {@link SUBJECT_SUMMARY_CHARS} code points.
 */
export function subjectSummary(value: string): string {
  let text = leadingPart(value, DECODE_WINDOW);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is every character above ASCII
  if (/[^\x00-\x7f]/.test(text)) {
    try {
      text = utf8.decode(Buffer.from(text, 'latin1'));
    } catch {
      // Not UTF-8: latin1, as read.
    }
  }
  if (text.includes('=?')) text = libmime.decodeWords(text);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
  return firstCodePoints(text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim(), SUBJECT_SUMMARY_CHARS);
}

/** A complete RFC 2047 encoded word. */
const ENCODED_WORD = /=\?[^?\s]+\?[bq]\?[^?\s]*\?=/i;
/** An encoded word cut off at the end of a value: a record's subject was cut after 200 characters until 2 Dec 2026. */
const CUT_WORD = /\s*=\?[^?\s]+\?[bq]\?[^?\s]*$/i;
/** How long a record's subject was cut before 2 Dec 2026: only a value this long can end in a cut-off word. */
const OLD_CUT = 200;

/**
 * The subject shown for a stored record (`GET /v1/messages/:id`, the message search, the console). Records stored
 * before 2 Dec 2026 kept the Subject header undecoded (one latin1 character per byte, cut after 200 characters): one
 * that still holds an encoded word is decoded here as {@link subjectSummary} now does at intake, an encoded word the
 * old cut left unfinished dropped for `…`. Any other value is shown as stored: newer records are decoded already,
 * and a value with a character above U+00FF was not stored the old way.
 */
export function shownSubject(stored: string | undefined): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is every character above latin1
  if (stored === undefined || !ENCODED_WORD.test(stored) || /[^\x00-\xff]/.test(stored)) return stored;
  const cut = stored.length === OLD_CUT ? CUT_WORD.exec(stored) : null;
  const summary = subjectSummary(cut ? stored.slice(0, cut.index) : stored);
  return cut ? `${summary}…` : summary;
}
