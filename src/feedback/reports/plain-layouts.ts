/**
 * Plain-text bounce layouts of the MTAs and mailbox providers met most today: Postfix, Exim,
 * Exchange / Outlook / Office 365, Gmail and Yahoo. Each reader returns null when its layout is not there.
 * src/feedback/reports/plain-bounce.ts tries them in turn (with the older layouts of
 * plain-layouts-legacy.ts). Pure functions over text; nothing here throws.
 */
import type { DsnAction, DsnRecipient, PlainBounce } from './bounce-types.js';
import { ADDR, MAX_RECIPIENTS, entry, lines, linesAfter } from './bounce-text.js';
import { addressesIn } from './mime.js';

/**
 * Postfix: "This is the mail system at host …" followed by `<addr>: host mx[ip] said: 550 … (in reply to
 * RCPT TO command)` entries, possibly wrapped over indented lines.
 */
export function parsePostfix(text: string, action: DsnAction): PlainBounce | null {
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
export function parseExim(text: string, action: DsnAction): PlainBounce | null {
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
      // a blank line inside the block: skipped
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
export function parseExchange(text: string, action: DsnAction): PlainBounce | null {
  const failedTo = /Delivery has failed to these recipients or groups:?/i.exec(text);
  const yourMessage = new RegExp(`Your message to (${ADDR}?) couldn't be delivered`, 'i').exec(text);
  if (!failedTo && !yourMessage) return null;
  const diagStart = text.search(/Diagnostic information for administrators/i);
  // A set, and no more than are kept: 400 lines of 50 addresses each made a list's lookups quadratic.
  const named = new Set<string>();
  if (failedTo) {
    const section = text.slice(failedTo.index + failedTo[0].length, diagStart > failedTo.index ? diagStart : undefined);
    // The recipients are listed first, up to the first blank line after them.
    for (const l of lines(section, 400)) {
      if ((l.trim() === '' && named.size) || named.size >= MAX_RECIPIENTS) break;
      for (const a of addressesIn(l)) if (named.size < MAX_RECIPIENTS) named.add(a);
    }
  }
  if (yourMessage) named.add(yourMessage[1].toLowerCase());
  const diagText = diagStart >= 0 ? text.slice(diagStart, diagStart + 20_000) : text.slice(0, 20_000);
  const generating = /Generating server:\s*(\S+)/i.exec(diagText)?.[1];
  const globalReply =
    /Remote Server returned '([^']{1,1000})'/i.exec(diagText)?.[1] ??
    /#([245]\d\d[ -][^#\n]{0,500})##/.exec(diagText)?.[1]?.trim() ??
    /\b([245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}[^\n]*)/.exec(diagText)?.[1];
  const recipients: DsnRecipient[] = [];
  const diagLines = lines(diagText, 2000);
  const lowered = diagLines.map((l) => l.trim().toLowerCase());
  for (const address of [...named].slice(0, MAX_RECIPIENTS)) {
    // A per-recipient reply: the address on one line, `#550 …` or `Remote Server returned` on the next ones.
    let own: string | undefined;
    const at = lowered.findIndex((l) => l.startsWith(address));
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
export function parseGmail(text: string, action: DsnAction): PlainBounce | null {
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
export function parseYahoo(text: string, action: DsnAction): PlainBounce | null {
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
    } else if (cur?.body.length) {
      flush();
    }
  }
  flush();
  return recipients.length ? { format: 'yahoo', recipients } : null;
}
