import { randomUUID } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { assertNoControls, domainOf, normalizeAddress } from '../lib/address.js';
import { KurirError } from '../lib/errors.js';
import { composePlain, type PlainParts } from './compose-plain.js';
import { addressesIn } from './headers.js';

/** The structured message accepted by `POST /v1/messages`. */
export interface StructuredMessage {
  from: string;
  to: string[];
  cc?: string[];
  bcc?: string[];
  replyTo?: string;
  subject?: string;
  text?: string;
  html?: string;
  headers?: Record<string, string>;
  attachments?: Array<{ filename: string; content: string; contentType?: string }>;
}

/**
 * Text and HTML parts larger than this are base64-encoded. nodemailer's quoted-printable encoder takes
 * about 2.5 s and 380 MB of heap for 10 MB of HTML on the event loop; base64 takes under 0.2 s and little
 * memory, at the cost of a third more bytes. Verification mail stays far below and keeps quoted-printable.
 */
export const BASE64_TEXT_ABOVE_CHARS = 256 * 1024;

/** Custom headers a client may set; everything else is the gateway's to write. */
const ALLOWED_HEADERS = /^(x-[a-z0-9-]+|list-unsubscribe|list-unsubscribe-post|list-id|in-reply-to|references|auto-submitted|feedback-id)$/i;

/** Control characters a header value may not carry besides CR, LF and NUL: the rest of C0 except tab, and DEL. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const OTHER_CONTROLS = /[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/**
 * Refuses (HEADER_INJECTION, naming the field) a header value with a control character other than tab. The composer
 * writes such a subject or header as it is, and intake would refuse the message (prepareMessage) under the header's
 * name instead of the field's.
 */
function assertHeaderText(value: string, field: string): void {
  assertNoControls(value, field);
  if (OTHER_CONTROLS.test(value)) throw new KurirError('HEADER_INJECTION', `${field}: control characters other than tab are not allowed`, { field });
}

/** RFC 2045 token: US-ASCII printable characters but SPACE and tspecials. */
const TOKEN = "[!#$%&'*+\\-.^_`{|}~0-9A-Za-z]+";
/** `type/subtype` with optional `; attribute=value` parameters (value a token or a quoted string), as RFC 2045 5.1 writes it. */
const MEDIA_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})(?:\\s*;\\s*${TOKEN}=(?:${TOKEN}|"(?:[^"\\\\]|\\\\.)*"))*$`);
/** The message/* types an attachment may have: a whole message, which the composer writes as it is (8bit). */
const MESSAGE_TYPES = new Set(['rfc822', 'global']);

/**
 * Refuses an attachment content type that is not a MIME type, or one the composer cannot write as a single part:
 * multipart/* (it would be base64-encoded as a leaf without its parts: invalid MIME, delivered as such until 2 Dec 2026)
 * and message/* other than a whole message (message/partial, message/external-body).
 */
function checkContentType(value: string, field: string): void {
  const m = MEDIA_TYPE.exec(value.trim());
  if (!m) throw new KurirError('VALIDATION', `${field}: must be a MIME type, type/subtype (e.g. application/pdf), with optional ; parameters`, { field });
  const [type, subtype] = [m[1].toLowerCase(), m[2].toLowerCase()];
  if (type === 'multipart') {
    throw new KurirError('VALIDATION', `${field}: ${type}/${subtype} is not allowed: an attachment is a single part`, { field });
  }
  if (type === 'message' && !MESSAGE_TYPES.has(subtype)) {
    throw new KurirError('VALIDATION', `${field}: ${type}/${subtype} is not allowed (of message/*, only message/rfc822 and message/global)`, { field });
  }
}

/** Validates one "Name <address>" field and returns the bare, normalized address. */
export function parseMailbox(value: string, field: string): string {
  assertNoControls(value, field);
  const addrs = addressesIn(value);
  if (addrs.length !== 1) throw new KurirError('BAD_ADDRESS', `${field}: expected exactly one e-mail address`, { field });
  return normalizeAddress(addrs[0], field);
}

function checkList(list: string[] | undefined, field: string): string[] {
  return (list ?? []).map((a, i) => normalizeAddress(a, `${field}[${i}]`));
}

/** Which request field each recipient came from (`to[0]`, `cc[1]`, `bcc[0]`; the first, for one listed twice), by lower-case address. */
function fieldsOf(lists: Record<'to' | 'cc' | 'bcc', string[]>): Map<string, string> {
  const fields = new Map<string, string>();
  for (const [field, list] of Object.entries(lists)) {
    list.forEach((address, i) => {
      const key = address.toLowerCase();
      if (!fields.has(key)) fields.set(key, `${field}[${i}]`);
    });
  }
  return fields;
}

/**
 * Turns a structured message into RFC 5322 bytes: the usual text/HTML message directly ({@link composePlain}, the
 * same bytes), anything else with nodemailer's composer. Returns the message, the envelope (header From, every
 * To/Cc/Bcc recipient) and which field named each recipient. Bcc never appears in the header.
 */
export async function composeMessage(
  msg: StructuredMessage,
): Promise<{ raw: Buffer; from: string; recipients: string[]; recipientFields: ReadonlyMap<string, string> }> {
  const from = parseMailbox(msg.from, 'from');
  const to = checkList(msg.to, 'to');
  const cc = checkList(msg.cc, 'cc');
  const bcc = checkList(msg.bcc, 'bcc');
  const replyTo = msg.replyTo !== undefined ? parseMailbox(msg.replyTo, 'replyTo') : undefined;
  if (msg.subject !== undefined) assertHeaderText(msg.subject, 'subject');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(msg.headers ?? {})) {
    const field = `headers.${name}`;
    if (!ALLOWED_HEADERS.test(name)) {
      throw new KurirError(
        'VALIDATION',
        `${field}: header not allowed (X-*, List-Unsubscribe, List-Unsubscribe-Post, List-Id, In-Reply-To, References, Auto-Submitted, Feedback-ID)`,
        { field },
      );
    }
    assertNoControls(name, field);
    assertHeaderText(value, field);
    headers[name] = value;
  }
  const attachments = (msg.attachments ?? []).map((a, i) => {
    assertNoControls(a.filename, `attachments[${i}].filename`);
    if (a.contentType !== undefined) {
      assertNoControls(a.contentType, `attachments[${i}].contentType`);
      checkContentType(a.contentType, `attachments[${i}].contentType`);
    }
    if (!/^[A-Za-z0-9+/=\s]*$/.test(a.content)) {
      throw new KurirError('VALIDATION', `attachments[${i}].content: must be base64`, { field: `attachments[${i}].content` });
    }
    return { filename: a.filename, content: Buffer.from(a.content, 'base64'), contentType: a.contentType };
  });
  if (msg.text === undefined && msg.html === undefined) {
    throw new KurirError('VALIDATION', 'text or html: at least one body is required', { field: 'text' });
  }
  // nodemailer draws five random values for a Message-ID and one per MIME node for its boundaries, each a
  // synchronous crypto call (~2 % of the event loop under load); one UUID from Node's cached entropy serves both.
  const token = randomUUID();
  const messageId = `<${token}@${domainOf(from)}>`;
  const baseBoundary = token.replaceAll('-', '');
  const date = new Date();
  const recipients = [...new Set([...to, ...cc, ...bcc])];
  const textEncoding = Math.max(msg.text?.length ?? 0, msg.html?.length ?? 0) > BASE64_TEXT_ABOVE_CHARS ? 'base64' : undefined;
  const parts: PlainParts = { from: msg.from, to, cc, replyTo, subject: msg.subject, text: msg.text, html: msg.html, messageId, boundary: baseBoundary, date };
  const plain = !attachments.length && !Object.keys(headers).length && !textEncoding ? composePlain(parts) : null;
  const raw = plain ?? (await buildWithMailComposer({ ...parts, headers, attachments, textEncoding }));
  return { raw, from, recipients, recipientFields: fieldsOf({ to, cc, bcc }) };
}

/** What composeMessage gives nodemailer's MailComposer: composePlain's parts and what only MailComposer writes. */
export interface ComposerInput extends PlainParts {
  headers?: Record<string, string>;
  attachments?: Array<{ filename: string; content: Buffer; contentType?: string }>;
  textEncoding?: 'base64';
}

/** An address as a nodemailer address object, which MailComposer writes as it is (domain punycoded). */
const asMailbox = (address: string): { name: string; address: string } => ({ name: '', address });

/** Builds the message with MailComposer, as composeMessage configures it (no file or URL access). */
export function buildWithMailComposer(c: ComposerInput): Promise<Buffer> {
  const composer = new MailComposer({
    messageId: c.messageId,
    baseBoundary: c.boundary,
    date: c.date,
    from: c.from,
    // As objects: given as strings, nodemailer's addressparser drops the quotes of a quoted local part ("a@b"@x.test).
    to: c.to.map(asMailbox),
    cc: c.cc.length ? c.cc.map(asMailbox) : undefined,
    replyTo: c.replyTo,
    subject: c.subject,
    text: c.text,
    html: c.html,
    headers: c.headers ?? {},
    attachments: c.attachments ?? [],
    disableFileAccess: true,
    disableUrlAccess: true,
    textEncoding: c.textEncoding,
  } as ConstructorParameters<typeof MailComposer>[0]);
  return new Promise<Buffer>((resolve, reject) =>
    composer.compile().build((err, out) => (err ? reject(new KurirError('BAD_MESSAGE', err.message, { field: 'message' })) : resolve(out))),
  );
}
