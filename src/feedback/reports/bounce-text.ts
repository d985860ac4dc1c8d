/**
 * Shared pieces of the plain-text bounce readers (src/feedback/reports/plain-layouts*.ts): bounded line
 * splitting, the lines after a marker, where the returned copy of the message starts, and turning a
 * diagnostic text into a recipient entry. Nothing here throws, and
 * every pattern is bounded so matching stays linear.
 */
import type { DsnAction, DsnRecipient } from './bounce-types.js';
import { findReply } from './mime.js';

/** Recipients kept from one bounce (the same cap `parseDeliveryStatus` uses). */
export const MAX_RECIPIENTS = 100;
/** Lines of plain-text bounces are cut to this length before any pattern sees them. */
const MAX_LINE = 2000;
/** An address in a line: no `@` in the local part and bounded parts, so matching stays linear. */
export const ADDR = '[^\\s<>@]{1,64}@[^\\s<>]{1,255}';

/**
 * Turns a diagnostic text into a recipient entry. `fallbackStatus` is for layouts that say themselves that
 * the failure is permanent but give neither an SMTP reply nor an enhanced status (Domino's "not listed in
 * Domino Directory", GroupWise's "user not found"): the entry is then classified as the failure it is, by
 * its wording, rather than as "no SMTP reply at all".
 */
export function entry(address: string | undefined, diagnostic: string, action: DsnAction, remoteMta?: string, fallbackStatus?: string): DsnRecipient {
  const reply = findReply(diagnostic);
  const r: DsnRecipient = { action };
  if (address) r.address = address;
  let text = reply.text.replace(/\s+/g, ' ').trim();
  if (text.endsWith(')') && !text.includes('(')) text = text.slice(0, -1).trim();
  if (text) r.diagnostic = text.slice(0, 1000);
  if (reply.code !== undefined) r.code = reply.code;
  const status = reply.enhanced ?? (reply.code !== undefined ? `${String(reply.code)[0]}.0.0` : fallbackStatus);
  if (status) r.status = status;
  if (remoteMta) r.remoteMta = remoteMta;
  return r;
}

/** Separator lines before a returned copy of the message (Exim, Postfix, qmail, Yahoo, Sendmail, Gmail, Outlook). */
const RETURNED_SEPARATOR =
  /^-{2,}\s*(?:This is a copy of|Original message|Below (?:this|the next) line|Enclosed are the original|(?:Unsent|Returned) (?:message|mail) follows|Message headers? follows)/i;
/** Lines that introduce it without dashes (Exchange, GroupWise, Courier). */
const RETURNED_INTRO = /^(?:Original message headers:|(?:Possibly truncated )?original message follows|The original message follows)/i;
/** The first header of a copy quoted with no separator at all (Domino, Exchange 2003). */
const QUOTED_HEADER = /^(?:Return-Path|Received):/i;

/**
 * Where the returned copy of the original message starts in a plain-text bounce (its separator line, or its
 * first header when it has none), or -1. What comes before is the bounce's own explanation; what comes after
 * is our own message, whose text must not be read as the bounce's words.
 */
export function returnedMessageAt(text: string): number {
  for (let at = 0; at < text.length; ) {
    const end = text.indexOf('\n', at);
    const line = text.slice(at, Math.min(end < 0 ? text.length : end, at + MAX_LINE));
    const trimmed = line.trim();
    if (RETURNED_SEPARATOR.test(trimmed) || RETURNED_INTRO.test(trimmed) || QUOTED_HEADER.test(line)) return at;
    if (end < 0) break;
    at = end + 1;
  }
  return -1;
}

/** Splits text into lines (at most `max`), each cut to MAX_LINE characters. */
export function lines(text: string, max = 5000): string[] {
  return text.split('\n', max).map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l).slice(0, MAX_LINE));
}

/** The non-empty lines right after a marker, up to the first blank line (at most `max`), joined by newlines. */
export function linesAfter(text: string, marker: RegExp, max: number): string | undefined {
  const m = marker.exec(text);
  if (!m) return undefined;
  const out: string[] = [];
  for (const l of lines(text.slice(m.index + m[0].length, m.index + m[0].length + 8000), 50)) {
    if (l.trim() === '') {
      if (out.length) break;
      continue;
    }
    out.push(l.trim());
    if (out.length >= max) break;
  }
  return out.length ? out.join('\n') : undefined;
}
