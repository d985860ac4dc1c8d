/**
 * The common non-standard plain-text bounces: Postfix, Exim, Exchange/Outlook, Gmail, Yahoo, and a generic
 * "mailer-daemon with an SMTP reply" shape (sendmail among them). Pure functions over text; nothing here throws.
 */
import { addressesIn, findReply } from './mime.js';
import type { DsnAction, DsnFormat, DsnRecipient } from './dsn.js';

/** What a plain-text bounce parser found. */
export interface PlainBounce {
  format: DsnFormat;
  recipients: DsnRecipient[];
}

/** Recipients kept from one bounce (the same cap `parseDeliveryStatus` uses). */
const MAX_RECIPIENTS = 100;
/** Lines of plain-text bounces are cut to this length before any pattern sees them. */
const MAX_LINE = 2000;
/** An address in a line: no `@` in the local part and bounded parts, so matching stays linear. */
const ADDR = '[^\\s<>@]{1,64}@[^\\s<>]{1,255}';

const WARNING =
  /THIS IS A WARNING ONLY|has not yet been delivered|Delivery incomplete|temporary problem delivering|Delivery Status Notification \(Delay\)|Delayed Mail|delivery has been delayed|warning message only|will (?:continue to )?retry/i;

/** Turns a diagnostic text into a recipient entry. */
function entry(address: string | undefined, diagnostic: string, action: DsnAction, remoteMta?: string): DsnRecipient {
  const reply = findReply(diagnostic);
  const r: DsnRecipient = { action };
  if (address) r.address = address;
  let text = reply.text.replace(/\s+/g, ' ').trim();
  if (text.endsWith(')') && !text.includes('(')) text = text.slice(0, -1).trim();
  if (text) r.diagnostic = text.slice(0, 1000);
  if (reply.code !== undefined) r.code = reply.code;
  const status = reply.enhanced ?? (reply.code !== undefined ? `${String(reply.code)[0]}.0.0` : undefined);
  if (status) r.status = status;
  if (remoteMta) r.remoteMta = remoteMta;
  return r;
}

/** Splits text into lines (at most `max`). */
function lines(text: string, max = 5000): string[] {
  return text.split('\n', max).map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l).slice(0, MAX_LINE));
}

/** The non-empty lines right after a marker, up to the first blank line (at most `max`). */
function linesAfter(text: string, marker: RegExp, max: number): string | undefined {
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

/**
 * Postfix: "This is the mail system at host …" followed by `<addr>: host mx[ip] said: 550 … (in reply to
 * RCPT TO command)` entries, possibly wrapped over indented lines.
 */
function parsePostfix(text: string, action: DsnAction): PlainBounce | null {
  if (!/This is the mail system at host|The mail system\b|I'm sorry to have to inform you that your message could not/i.test(text)) return null;
  const recipients: DsnRecipient[] = [];
  let cur: { address: string; body: string[] } | null = null;
  const flush = (): void => {
    if (!cur) return;
    const body = cur.body.join(' ').replace(/\s+/g, ' ').trim();
    const host = /\bhost ([^\s[\]]{1,255})(?:\[([^\]\s]{0,64})\])? said:\s*/i.exec(body);
    const diag = host ? body.slice(host.index + host[0].length) : body;
    recipients.push(entry(cur.address, diag.replace(/\s*\(in reply to [^)]*\)\s*$/i, ''), action, host?.[1]));
    cur = null;
  };
  for (const l of lines(text)) {
    const m = new RegExp(`^<(${ADDR}?)>(?: ?\\(expanded from <[^<>]{0,320}>\\))?:[ \\t]*(.*)$`).exec(l);
    if (m) {
      flush();
      cur = { address: m[1], body: [m[2]] };
      if (recipients.length >= MAX_RECIPIENTS) break;
    } else if (cur && /^[ \t]+\S/.test(l)) {
      cur.body.push(l.trim());
    } else if (cur) {
      flush();
    }
  }
  flush();
  return recipients.length ? { format: 'postfix', recipients } : null;
}

/**
 * Exim: "This message was created automatically by mail delivery software." with a block of
 * `  addr` lines, each followed by more-indented detail lines (`host …`, `SMTP error from remote mail
 * server after RCPT TO:<addr>:`, `550 …`).
 */
function parseExim(text: string, action: DsnAction): PlainBounce | null {
  if (!/This message was created automatically by mail delivery software/i.test(text)) return null;
  const start = /(?:following address(?:\(es\))? failed|address(?:es)? to which the message has not yet been delivered (?:is|are))\s*:\s*\n/i.exec(text);
  if (!start) return null;
  const block = text.slice(start.index + start[0].length);
  const recipients: DsnRecipient[] = [];
  let cur: { address: string; body: string[] } | null = null;
  const flush = (): void => {
    if (!cur) return;
    const body = cur.body.join('\n');
    const host = /\bhost ([^\s[\]]{1,255})/i.exec(body);
    const after = /SMTP error from remote (?:mail server|mailer) after [^\n]*?:\s*\n?/i.exec(body);
    const diag = after ? body.slice(after.index + after[0].length) : body.replace(/^\s*host [^\n]*\n?/i, '');
    recipients.push(entry(cur.address, diag, action, host?.[1]));
    cur = null;
  };
  for (const l of lines(block)) {
    if (/^-{2,}/.test(l.trim())) break;
    const addr = new RegExp(`^ {1,3}<?(${ADDR}?)>?(?:\\s|$)`).exec(l);
    if (addr && !/^ {4}/.test(l)) {
      flush();
      cur = { address: addr[1].replace(/:$/, ''), body: [] };
      const rest = l.slice(addr[0].length).trim();
      if (rest) cur.body.push(rest);
      if (recipients.length >= MAX_RECIPIENTS) break;
    } else if (cur && /^ {4,}\S|^\t\S/.test(l)) {
      cur.body.push(l.trim());
    } else if (cur && l.trim() === '') {
      continue;
    } else if (cur) {
      break;
    }
  }
  flush();
  return recipients.length ? { format: 'exim', recipients } : null;
}

/**
 * Exchange / Outlook / Office 365: "Delivery has failed to these recipients or groups:" (or "Your message
 * to addr couldn't be delivered.") with the remote reply in "Diagnostic information for administrators" as
 * `#550 5.1.1 … ##` or `Remote Server returned '550 5.1.1 …'`.
 */
function parseExchange(text: string, action: DsnAction): PlainBounce | null {
  const failedTo = /Delivery has failed to these recipients or groups:?/i.exec(text);
  const yourMessage = new RegExp(`Your message to (${ADDR}?) couldn't be delivered`, 'i').exec(text);
  if (!failedTo && !yourMessage) return null;
  const diagStart = text.search(/Diagnostic information for administrators/i);
  const named: string[] = [];
  if (failedTo) {
    const section = text.slice(failedTo.index + failedTo[0].length, diagStart > failedTo.index ? diagStart : undefined);
    // The recipients are listed first, up to the first blank line after them.
    for (const l of lines(section, 400)) {
      if (l.trim() === '' && named.length) break;
      for (const a of addressesIn(l)) if (!named.includes(a)) named.push(a);
    }
  }
  if (yourMessage && !named.includes(yourMessage[1].toLowerCase())) named.push(yourMessage[1].toLowerCase());
  const diagText = diagStart >= 0 ? text.slice(diagStart, diagStart + 20_000) : text.slice(0, 20_000);
  const generating = /Generating server:\s*(\S+)/i.exec(diagText)?.[1];
  const globalReply =
    /Remote Server returned '([^']{1,1000})'/i.exec(diagText)?.[1] ??
    /#([245]\d\d[ -][^#\n]{0,500})##/.exec(diagText)?.[1]?.trim() ??
    /\b([245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}[^\n]*)/.exec(diagText)?.[1];
  const recipients: DsnRecipient[] = [];
  const diagLines = lines(diagText, 2000);
  for (const address of named.slice(0, MAX_RECIPIENTS)) {
    // A per-recipient reply: the address on one line, `#550 …` or `Remote Server returned` on the next ones.
    let own: string | undefined;
    const at = diagLines.findIndex((l) => l.trim().toLowerCase().startsWith(address));
    if (at >= 0) {
      for (const l of diagLines.slice(at + 1, at + 4)) {
        const m = /^\s*#([245]\d\d[ -][^#]{0,500})/.exec(l) ?? /Remote Server returned '([^']{1,1000})'/i.exec(l);
        if (m) {
          own = m[1].trim();
          break;
        }
      }
    }
    const diag = own ?? globalReply;
    if (!diag) continue;
    recipients.push(entry(address, diag, action, generating));
  }
  return recipients.length ? { format: 'exchange', recipients } : null;
}

/**
 * Gmail: "** Address not found **" / "** Message not delivered **" / "** Delivery incomplete **", "Your
 * message wasn't delivered to addr because …", and "The response from the remote server was:" (or
 * "The response was:") followed by the reply; older ones: "Delivery to the following recipient failed
 * permanently:" and "Technical details of permanent failure:".
 */
function parseGmail(text: string, action: DsnAction): PlainBounce | null {
  const marker =
    /\*\*\s*(?:Address not found|Message not delivered|Delivery incomplete|Message blocked|Message rejected)\s*\*\*/i.test(text) ||
    /The response (?:from the remote server )?was:/i.test(text) ||
    /Delivery to the following recipients? failed(?: permanently)?:/i.test(text);
  if (!marker) return null;
  const address = (
    new RegExp(`(?:wasn't|was not|couldn't be|could not be|hasn't been|has not been) delivered to (${ADDR})`, 'i').exec(text)?.[1] ??
    new RegExp(`problem delivering your message to (${ADDR})`, 'i').exec(text)?.[1] ??
    addressesIn(linesAfter(text, /Delivery to the following recipients? failed(?: permanently)?:/i, 1) ?? '')[0]
  )?.replace(/[.,;:]+$/, '');
  const resp =
    linesAfter(text, /The response (?:from the remote server )?was:/i, 6) ?? linesAfter(text, /Technical details of (?:permanent|temporary) failure:/i, 6);
  if (!address && !resp) return null;
  const diag = resp ?? /\*\* ?([^*\n]{1,200}) ?\*\*/.exec(text)?.[1] ?? '';
  const body = diag.replace(/^\s*The recipient server did not accept our requests to connect\.[^\n]*/i, '');
  return { format: 'gmail', recipients: [entry(address, body || diag, action)] };
}

/**
 * Yahoo: "Sorry, we were unable to deliver your message to the following address." followed by
 * `<addr>:` and the reply on the next lines (`Remote host said: 550 …` or `554: delivery error: dd …`).
 */
function parseYahoo(text: string, action: DsnAction): PlainBounce | null {
  const start = /Sorry, we were unable to deliver your message to the following address(?:es)?\.?/i.exec(text);
  if (!start) return null;
  const recipients: DsnRecipient[] = [];
  let cur: { address: string; body: string[] } | null = null;
  const flush = (): void => {
    if (!cur) return;
    const body = cur.body.join(' ').replace(/^Remote host said:\s*/i, '');
    const mta = / - ([^\s.]{1,63}(?:\.[^\s.]{1,63}){1,10})\s*$/.exec(body.slice(-400))?.[1];
    recipients.push(entry(cur.address, body, action, mta));
    cur = null;
  };
  for (const l of lines(text.slice(start.index + start[0].length))) {
    if (/^-{2,}\s*Below this line is a copy of the message/i.test(l.trim())) break;
    const m = new RegExp(`^[ \\t]*<(${ADDR}?)>:?[ \\t]*(.*)$`).exec(l);
    if (m) {
      flush();
      cur = { address: m[1], body: m[2] ? [m[2]] : [] };
      if (recipients.length >= MAX_RECIPIENTS) break;
    } else if (cur && l.trim() !== '') {
      cur.body.push(l.trim());
    } else if (cur && cur.body.length) {
      flush();
    }
  }
  flush();
  return recipients.length ? { format: 'yahoo', recipients } : null;
}

/** A mailer-daemon-ish message with an SMTP reply but no recognisable layout: one entry without an address. */
function parseGeneric(text: string, action: DsnAction): PlainBounce | null {
  const m = /(?:^|[\s'"#(:])([245]\d\d[ -]#?[245]\.\d{1,3}\.\d{1,3}\b[^\n]*)/m.exec(text.slice(0, 200_000));
  if (!m) return null;
  // sendmail: "----- The following addresses had permanent fatal errors -----" then `<addr>` lines.
  const fatal = new RegExp(`addresses had (?:permanent fatal|transient non-fatal) errors -{1,20}[ \\t]*\\r?\\n[ \\t]*<(${ADDR}?)>`, 'i').exec(text);
  return { format: 'generic', recipients: [entry(fatal?.[1], m[1], action)] };
}

/** Whether a message looks like a bounce from its From and Subject. */
export function looksLikeBounce(from: string, subject: string): boolean {
  return (
    /^(?:mailer-daemon|postmaster|mail-daemon|mdaemon)@/i.test(from.trim()) ||
    /undeliver|delivery (?:status notification|failure|failed|has failed|incomplete|delayed)|returned mail|failure notice|mail delivery (?:failed|system|subsystem)|non[- ]?delivery|could not be delivered|not delivered|delivery problem/i.test(subject)
  );
}

/**
 * Parses a plain-text bounce (the message's text, subject and From): tries each known layout in turn and,
 * for a message that looks like a bounce, a generic SMTP reply. Returns null when nothing matches.
 */
export function parsePlainBounce(text: string, subject: string, from: string): PlainBounce | null {
  const t = text.slice(0, 1_000_000);
  const action: DsnAction = WARNING.test(t) || WARNING.test(subject) ? 'delayed' : 'failed';
  for (const parse of [parsePostfix, parseExim, parseExchange, parseGmail, parseYahoo]) {
    const r = parse(t, action);
    if (r) return r;
  }
  return looksLikeBounce(from, subject) ? parseGeneric(t, action) : null;
}
