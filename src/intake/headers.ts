import { randomBytes } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { PRIORITIES, type Priority } from '../config/schema.js';
import { KurirError } from '../lib/errors.js';
import { parseFromMailbox } from './from-mailbox.js';
import { type HeaderLine, headerValue, parseHeaders, splitMessage, toCrlf, withoutFields } from './header-block.js';
import { shortenLongLines } from './long-lines.js';
import { REFERENCE_HEADER } from './reference.js';
import { ttlSeconds } from './submission.js';
import { subjectSummary } from './subject-summary.js';

export interface PreparedMessage {
  /** The message with CRLF line ends, body lines of at most 998 octets, and Date / Message-ID present. */
  raw: Buffer;
  headers: HeaderLine[];
  fromAddresses: string[];
  messageId: string;
  /** The Subject decoded and cut for the message's record (./subject-summary.ts), not as it is in `raw`. */
  subject?: string;
  /** Kurir's control headers the message carried ({@link CONTROL_HEADERS}), read by intake, removed from `raw` and `headers`. */
  control: HeaderLine[];
}

/** The bare addresses in an address header value. */
export function addressesIn(value: string): string[] {
  return addressparser(value, { flatten: true })
    .map((a) => a.address)
    .filter((a): a is string => Boolean(a));
}

/** Headers that name blind recipients: never passed on (Postfix's default, RFC 5322 §3.6.3). Lower case. */
const BLIND_COPY_HEADERS: ReadonlySet<string> = new Set(['bcc', 'resent-bcc']);

/**
 * Kurir's own instructions in a message, lower case: read by the transports (priority, TTL) and intake (the booking
 * reference), and the envelope headers of the HTTP API a client may have copied into the message. They are for Kurir,
 * not the recipient, and are removed before signing. Headers Kurir writes for receivers (X-Kurir-Probe, placement's
 * token; Feedback-ID) are not among them.
 */
export const CONTROL_HEADERS: ReadonlySet<string> = new Set([
  'x-kurir-priority',
  'x-kurir-ttl',
  REFERENCE_HEADER.toLowerCase(),
  'x-kurir-to',
  'x-kurir-from',
  'x-kurir-override-suppression',
]);

/** What prepareMessage removes from the header block. */
const REMOVED_HEADERS: ReadonlySet<string> = new Set([...BLIND_COPY_HEADERS, ...CONTROL_HEADERS]);

/** What a header value may not hold: C0 controls other than TAB (CR and LF only as folding), and DEL. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const HEADER_CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * Refuses (BAD_MESSAGE, naming the header) a header value with a control character, and a NUL anywhere in the body
 * (RFC 5322 §2.3, §3.5). One indexOf over the body: this runs on every accepted message.
 */
function refuseControls(headers: HeaderLine[], body: Buffer): void {
  for (const h of headers) {
    const m = HEADER_CONTROL.exec(h.value);
    if (m) {
      const code = `0x${m[0].charCodeAt(0).toString(16).padStart(2, '0')}`;
      throw new KurirError('BAD_MESSAGE', `${h.name}: a header value may not hold control characters other than tab (${code} at character ${m.index + 1})`, {
        field: h.name,
      });
    }
  }
  const nul = body.indexOf(0);
  if (nul !== -1) throw new KurirError('BAD_MESSAGE', `The message body may not hold a NUL byte (byte ${nul + 1} of the body)`, { field: 'message' });
}

/**
 * Normalizes a submitted message: CRLF line ends, exactly one From holding exactly one mailbox, no Bcc or Resent-Bcc
 * (removed: the envelope says who gets the message, and every recipient would see them), none of Kurir's control
 * headers (removed: {@link CONTROL_HEADERS}, returned in `control` for intake to read), no control characters in
 * header values and no NUL in the body (refused), no body line over 998 octets (its MIME part re-encoded, or refused
 * where that cannot be done: ./long-lines.ts), a Date and a Message-ID (added when missing, with the gateway's host
 * name), and returns what intake needs to know about it.
 */
export function prepareMessage(input: Buffer, opts: { hostname: string; now: number }): PreparedMessage {
  let raw = toCrlf(input);
  const split = splitMessage(raw);
  let { header, body } = split;
  if (!header.trim()) throw new KurirError('BAD_MESSAGE', 'The message has no header', { field: 'message' });
  let headers = parseHeaders(header);
  const control = headers.filter((h) => CONTROL_HEADERS.has(h.name.toLowerCase()));
  let rewritten = false;
  if (headers.some((h) => REMOVED_HEADERS.has(h.name.toLowerCase()))) {
    header = withoutFields(header, REMOVED_HEADERS);
    headers = headers.filter((h) => !REMOVED_HEADERS.has(h.name.toLowerCase()));
    rewritten = true;
  }
  refuseControls(headers, body);
  const froms = headers.filter((h) => h.name.toLowerCase() === 'from');
  if (froms.length !== 1) {
    throw new KurirError('BAD_MESSAGE', froms.length ? 'The message has more than one From header' : 'The message has no From header', { field: 'from' });
  }
  // Strictly one mailbox: the DKIM domain is read from it (./from-mailbox.ts).
  const fromAddresses = [parseFromMailbox(froms[0].value)];
  // A body line over 998 octets would be folded or cut by a relay, breaking the DKIM body hash (./long-lines.ts).
  const short = shortenLongLines(header, body, split.header.split('\r\n').length + 2);
  if (short) {
    ({ header, body } = short);
    headers = parseHeaders(header);
    rewritten = true;
  }
  const added: string[] = [];
  if (!headerValue(headers, 'date')) {
    added.push(`Date: ${new Date(opts.now).toUTCString().replace('GMT', '+0000')}`);
  }
  let messageId = headerValue(headers, 'message-id')?.trim();
  if (!messageId) {
    messageId = `<${randomBytes(12).toString('hex')}@${opts.hostname}>`;
    added.push(`Message-ID: ${messageId}`);
  }
  for (const line of added) headers.push({ name: line.slice(0, line.indexOf(':')), value: line.slice(line.indexOf(':') + 2) });
  if (added.length || rewritten) raw = Buffer.concat([Buffer.from(`${[header, ...added].join('\r\n')}\r\n\r\n`, 'latin1'), body]);
  const subject = headerValue(headers, 'subject');
  return { raw, headers, fromAddresses, messageId, subject: subject === undefined ? undefined : subjectSummary(subject), control };
}

/** The header lines of a message as the client sent it (CRLF or bare LF line ends), parsed once for {@link priorityOf} and {@link ttlOf}. */
export function leadingHeaders(raw: Buffer): HeaderLine[] {
  let end = raw.indexOf('\r\n\r\n');
  if (end === -1) end = raw.indexOf('\n\n');
  return parseHeaders(toCrlf(end === -1 ? raw : raw.subarray(0, end)).toString('latin1'));
}

/**
 * The priority asked for by an `X-Kurir-Priority: verification|normal|bulk` header (case-insensitive),
 * `normal` without one. prepareMessage removes the header before signing.
 * @throws KurirError VALIDATION for another value, BAD_MESSAGE for a malformed header block.
 */
export function priorityOf(message: Buffer | HeaderLine[]): Priority {
  const value = headerValue(Buffer.isBuffer(message) ? leadingHeaders(message) : message, 'X-Kurir-Priority');
  if (value === undefined) return 'normal';
  const wanted = value.trim().toLowerCase() as Priority;
  if (!PRIORITIES.includes(wanted)) {
    throw new KurirError('VALIDATION', `X-Kurir-Priority: must be one of ${PRIORITIES.join(', ')}`, { field: 'X-Kurir-Priority' });
  }
  return wanted;
}

/**
 * The lifetime asked for by an `X-Kurir-Ttl: <seconds>` header (whole seconds, 1 to `maxSeconds`, the API's
 * `delivery.maxTtlSeconds`); undefined without one (the priority's default then applies). prepareMessage removes
 * the header before signing.
 * @throws KurirError VALIDATION (field `X-Kurir-Ttl`) for another value, BAD_MESSAGE for a malformed header block.
 */
export function ttlOf(message: Buffer | HeaderLine[], maxSeconds: number): number | undefined {
  const value = headerValue(Buffer.isBuffer(message) ? leadingHeaders(message) : message, 'X-Kurir-Ttl');
  return value === undefined ? undefined : ttlSeconds(value, 'X-Kurir-Ttl', maxSeconds);
}

/**
 * What the `X-Kurir-Priority` and `X-Kurir-Ttl` headers of a raw message ask for (the header block parsed once), as
 * the fields of a Submission. Throws as {@link priorityOf} and {@link ttlOf} do.
 */
export function kurirHeaderOptions(raw: Buffer, maxTtlSeconds: number): { priority: Priority; ttlSeconds?: number } {
  const headers = leadingHeaders(raw);
  return { priority: priorityOf(headers), ttlSeconds: ttlOf(headers, maxTtlSeconds) };
}
