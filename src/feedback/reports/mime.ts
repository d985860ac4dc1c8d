/**
 * Small, total helpers for the text inside bounce and complaint reports: RFC 822-style field blocks (as in
 * message/delivery-status and message/feedback-report bodies), addresses, SMTP replies in free text, and the
 * references to the original message (Message-ID, VERP return path) that let a report be matched to it.
 * Nothing here throws on any input, and every scan is linear and bounded.
 */
import { normalizeHeaderMessageId } from '../../lib/message-id.js';

/** One `Name: value` field; the name lower-cased, the value unfolded and trimmed. */
export interface FieldLine {
  name: string;
  value: string;
}

/** References to the original message found in a report (all optional: reports are often partial). */
export interface OriginalRefs {
  /** Message-ID of the original, without angle brackets, lower-cased. */
  messageId?: string;
  /** An `X-Kurir-Id` header of the original, when one was present. */
  kurirId?: string;
  /** VERP-shaped addresses (`b+<id>.<token>@…`) seen in the original's headers or the report text: unverified. */
  verpCandidates: string[];
  /** Addresses from the original's To header (a hint for fully redacted complaints). */
  to: string[];
  /**
   * Addresses from the headers the receiving side adds for the envelope recipient: X-HmXmrOriginalRecipient
   * (Microsoft), X-Original-To, Delivered-To. A complaint that gives them names its recipient with them.
   */
  envelopeTo?: string[];
  subject?: string;
}

/** At most this many addresses or candidates are collected from one report. */
const MAX_COLLECTED = 50;
/** Field values longer than this are cut (a folded header can be arbitrarily long). */
const MAX_VALUE = 4000;

/**
 * Splits text into groups of fields separated by blank lines, unfolding continuation lines. Lines that are
 * neither fields nor continuations are skipped.
 */
export function parseFieldGroups(text: string): FieldLine[][] {
  const groups: FieldLine[][] = [];
  let current: FieldLine[] = [];
  for (const line of text.split('\n')) {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (l.trim() === '') {
      if (current.length) groups.push(current);
      current = [];
      continue;
    }
    if (l[0] === ' ' || l[0] === '\t') {
      const last = current.at(-1);
      if (last && last.value.length < MAX_VALUE) last.value = `${last.value} ${l.trim()}`.trim();
      continue;
    }
    const colon = l.indexOf(':');
    if (colon <= 0) continue;
    const name = l.slice(0, colon).trim();
    if (!/^[!-9;-~]{1,76}$/.test(name)) continue;
    current.push({
      name: name.toLowerCase(),
      value: l
        .slice(colon + 1)
        .trim()
        .slice(0, MAX_VALUE),
    });
  }
  if (current.length) groups.push(current);
  return groups;
}

/** The header block of a message (text up to the first blank line), parsed into fields. */
export function headerFields(message: string): FieldLine[] {
  const m = /\r?\n\r?\n/.exec(message);
  const block = m ? message.slice(0, m.index) : message;
  return parseFieldGroups(block).flat();
}

/** The first value of a field, or undefined. */
export function field(fields: FieldLine[], name: string): string | undefined {
  return fields.find((f) => f.name === name)?.value;
}

/** Every value of a field. */
export function fieldValues(fields: FieldLine[], name: string): string[] {
  return fields.filter((f) => f.name === name).map((f) => f.value);
}

/** Strips an RFC 3464 type prefix such as `rfc822;`, `dns;` or `smtp;`. */
export function stripTypePrefix(value: string): string {
  return value.replace(/^\s*[a-z][a-z0-9.+-]{0,30}\s*;\s*/i, '').trim();
}

const ADDRESS_IN_ANGLES = /<([^<>\s"]{1,64}@[^<>\s"]{1,255})>/;
const BARE_ADDRESS = /([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,10})/;
const BARE_ADDRESS_ALL = new RegExp(BARE_ADDRESS.source, 'g');

/** The address in a field value such as `rfc822; user@example.org`, `<user@x>` or `Name <user@x>`; or undefined. */
export function addressOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const v = stripTypePrefix(value.slice(0, 1000));
  const found = ADDRESS_IN_ANGLES.exec(v)?.[1] ?? BARE_ADDRESS.exec(v)?.[1];
  if (!found) return undefined;
  const clean = found.replace(/^[.'"]+|[.'"]+$/g, '');
  return clean.includes('@') && !clean.startsWith('@') && !clean.endsWith('@') ? clean : undefined;
}

/** Every distinct address mentioned in a text (lower-cased, at most MAX_COLLECTED). */
export function addressesIn(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.slice(0, 1_000_000).matchAll(BARE_ADDRESS_ALL)) {
    out.add(m[1].replace(/^[.'"]+|[.'"]+$/g, '').toLowerCase());
    if (out.size >= MAX_COLLECTED) break;
  }
  return [...out];
}

/** An SMTP reply found in free text. */
export interface FoundReply {
  code?: number;
  enhanced?: string;
  text: string;
}

const ENHANCED = /\b([245]\.\d{1,3}\.\d{1,3})\b/;
const REPLY_CODE = /(?:^|[\s'"#(:])([245]\d\d)(?:[ \t-]+#?|\s*:\s+|$)/;

/** The first SMTP reply code and enhanced status code in a diagnostic text, with the text itself (flattened). */
export function findReply(text: string): FoundReply {
  const flat = text.replace(/\s+/g, ' ').trim().slice(0, 1000);
  const code = REPLY_CODE.exec(flat);
  const fromCode = code ? flat.slice(code.index + code[0].indexOf(code[1])) : flat;
  const enhanced = ENHANCED.exec(fromCode) ?? ENHANCED.exec(flat);
  return { code: code ? Number(code[1]) : undefined, enhanced: enhanced?.[1], text: code ? fromCode : flat };
}

/** Message-ID without angle brackets or spaces, lower-cased (as the store's index keys it); undefined when empty. */
export const normalizeMessageId = normalizeHeaderMessageId;

const VERP_SHAPE = /b\+[0-9a-z]{1,64}\.[0-9a-z]{1,64}@[a-z0-9.-]{1,255}/gi;

/** VERP-shaped addresses in a text, lower-cased and de-duplicated. */
export function verpCandidatesIn(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.slice(0, 1_000_000).matchAll(VERP_SHAPE)) {
    out.add(m[0].replace(/\.+$/, '').toLowerCase());
    if (out.size >= MAX_COLLECTED) break;
  }
  return [...out];
}

/**
 * References to the original message from the header blocks of attached originals (text/rfc822-headers,
 * message/rfc822) and, as a fallback, from an original quoted inside the report's text (plain-text bounces).
 */
export function originalRefs(headerBlocks: string[], reportText: string): OriginalRefs {
  const refs: OriginalRefs = { verpCandidates: [], to: [] };
  const verp = new Set<string>();
  const to = new Set<string>();
  const envelopeTo = new Set<string>();
  for (const block of headerBlocks) {
    const fields = headerFields(block);
    refs.messageId ??= normalizeMessageId(field(fields, 'message-id'));
    refs.kurirId ??= field(fields, 'x-kurir-id')?.trim().toLowerCase() || undefined;
    refs.subject ??= field(fields, 'subject');
    for (const v of fieldValues(fields, 'to')) for (const a of addressesIn(v)) to.add(a);
    for (const name of ['x-hmxmroriginalrecipient', 'x-original-to', 'delivered-to']) {
      for (const v of fieldValues(fields, name)) for (const a of addressesIn(v)) envelopeTo.add(a);
    }
    const headerText = fields.map((f) => `${f.name}: ${f.value}`).join('\n');
    for (const c of verpCandidatesIn(headerText)) verp.add(c);
  }
  // Plain-text bounces quote the original (or its headers) inline.
  const text = reportText.slice(0, 1_000_000);
  if (!refs.messageId) refs.messageId = normalizeMessageId(/^[ \t>]*Message-ID:[ \t]*(<[^<>\s]+>)/im.exec(text)?.[1]);
  if (!refs.kurirId) refs.kurirId = /^[ \t>]*X-Kurir-Id:[ \t]*([0-9a-z]+)/im.exec(text)?.[1]?.toLowerCase();
  for (const c of verpCandidatesIn(text)) verp.add(c);
  refs.verpCandidates = [...verp].slice(0, MAX_COLLECTED);
  refs.to = [...to].slice(0, MAX_COLLECTED);
  refs.envelopeTo = [...envelopeTo].slice(0, MAX_COLLECTED);
  return refs;
}
