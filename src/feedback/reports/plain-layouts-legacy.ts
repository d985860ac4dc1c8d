/**
 * Plain-text bounce layouts of older MTAs that are still met: qmail (and its clones), Sendmail without
 * enhanced status codes, Courier, Lotus / HCL Domino, Novell / Micro Focus GroupWise, MDaemon (and its
 * SecurityGateway), and Exchange 2000/2003 "Undeliverable:" reports that carry no delivery-status part.
 * Layouts that give no SMTP reply (Domino, GroupWise, qmail's local delivery) say the failure is permanent
 * in their own words; their entries get status 5.0.0 and are classified by that wording.
 * Each reader returns null when its layout is not there. Pure functions over text; nothing here throws.
 */
import type { DsnAction, DsnRecipient, PlainBounce } from './bounce-types.js';
import { ADDR, MAX_RECIPIENTS, entry, lines, linesAfter } from './bounce-text.js';
import { addressesIn } from './mime.js';

/** The status given to an entry whose layout states the outcome but no code. */
const fallback = (action: DsnAction): string => (action === 'delayed' ? '4.0.0' : '5.0.0');
const ADDRESS_LINE = new RegExp(`^<(${ADDR}?)>:[ \\t]*(.*)$`);

/** `<addr>:`-headed blocks (qmail, Courier): the address line, then its non-empty lines up to a blank one. */
function addressBlocks(text: string, stop: RegExp): Array<{ address: string; body: string[] }> {
  const out: Array<{ address: string; body: string[] }> = [];
  let cur: { address: string; body: string[] } | null = null;
  for (const l of lines(text)) {
    if (stop.test(l)) break;
    const m = ADDRESS_LINE.exec(l.trim());
    if (m) {
      if (out.length >= MAX_RECIPIENTS) break;
      cur = { address: m[1], body: m[2] ? [m[2]] : [] };
      out.push(cur);
    } else if (l.trim() === '') {
      cur = null;
    } else if (cur) {
      cur.body.push(l.trim());
    }
  }
  return out;
}

/**
 * qmail: "Hi. This is the qmail-send program at host." then `<addr>:` blocks — `192.0.2.25 does not like
 * recipient.`, `Remote host said: 550 …`, `Giving up on 192.0.2.25.` — or, for local delivery, only
 * qmail's own text with its status in parentheses ("Sorry, no mailbox here by that name. (#5.1.1)").
 */
export function parseQmail(text: string, action: DsnAction): PlainBounce | null {
  if (!/Hi\. This is the qmail(?:-send)? program|I'm afraid I wasn't able to deliver your message to the following addresses/i.test(text)) return null;
  const recipients: DsnRecipient[] = [];
  for (const { address, body } of addressBlocks(text, /^-{2,}\s*Below (?:this|the next) line/i)) {
    const said = body.findIndex((l) => /^Remote host said:/i.test(l));
    const own = (said >= 0 ? body.slice(said) : body).filter(
      (l) => !/^(?:Giving up on|I'm not going to try again)/i.test(l) && !/does not like recipient\.$/i.test(l),
    );
    const diag = own.join(' ').replace(/^Remote host said:\s*/i, '');
    const mta = body
      .map((l) => /^(?:Giving up on|Connected to) ([^\s]{1,255}?)\.?(?:\s|$)/i.exec(l)?.[1] ?? /^(\S{1,255}) does not like recipient/i.exec(l)?.[1])
      .find(Boolean);
    recipients.push(entry(address, diag, action, mta, fallback(action)));
  }
  return recipients.length ? { format: 'qmail', recipients } : null;
}

/**
 * Courier: "UNDELIVERABLE MAIL" (or "DELAYS IN DELIVERING YOUR MESSAGE") then `<addr>:` blocks with the
 * remote host (`mx.example.net [192.0.2.25]:`) and the dialogue (`>>> RCPT TO:<addr>`, `<<< 550 …`).
 */
export function parseCourier(text: string, action: DsnAction): PlainBounce | null {
  if (!/running the Courier mail server|^[ \t]*(?:UNDELIVERABLE MAIL|DELAYS IN DELIVERING YOUR MESSAGE)[ \t]*\r?$/im.test(text)) return null;
  const start = text.search(
    /Your message to the following recipients cannot be delivered|^[ \t]*(?:UNDELIVERABLE MAIL|DELAYS IN DELIVERING YOUR MESSAGE)[ \t]*\r?$/im,
  );
  const recipients: DsnRecipient[] = [];
  for (const { address, body } of addressBlocks(text.slice(Math.max(0, start)), /^-{20,}\s*$/)) {
    const replies = body.filter((l) => l.startsWith('<<<')).map((l) => l.slice(3).trim());
    const other = body.filter((l) => !l.startsWith('>>>') && !l.startsWith('<<<'));
    const mta = other.map((l) => /^(\S{1,255}) \[[^\]\s]{1,64}\]:?$/.exec(l)?.[1]).find(Boolean);
    const diag = replies.length ? replies.join(' ') : other.filter((l) => !/^\S{1,255} \[[^\]\s]{1,64}\]:?$/.test(l)).join(' ');
    recipients.push(entry(address, diag, action, mta, fallback(action)));
  }
  return recipients.length ? { format: 'courier', recipients } : null;
}

/**
 * Sendmail: "----- The following addresses had permanent fatal errors -----" (or "transient non-fatal"),
 * the `<addr>` lines with an optional `(reason: 550 …)`, then "----- Transcript of session follows -----"
 * with the dialogue (`... while talking to mx.example.net.:`, `<<< 550 …`). Older versions give no
 * enhanced status codes at all.
 */
export function parseSendmail(text: string, action: DsnAction): PlainBounce | null {
  const head = /-{2,40}[ \t]{0,10}The following addresses had (?:permanent fatal|transient non-fatal) errors[ \t]{0,10}-{2,40}[ \t]*\r?\n/i.exec(text);
  if (!head) return null;
  const after = text.slice(head.index + head[0].length, head.index + head[0].length + 50_000);
  const named: Array<{ address: string; reason?: string }> = [];
  for (const l of lines(after, 500)) {
    const t = l.trim();
    if (!t) break;
    const a = new RegExp(`^<?(${ADDR}?)>?(?:\\s|$)`).exec(t);
    const reason = /^\(reason:\s*(.{1,1000})\)$/i.exec(t);
    if (a) named.push({ address: a[1] });
    else if (reason && named.length) named[named.length - 1].reason ??= reason[1];
    if (named.length >= MAX_RECIPIENTS) break;
  }
  const at = after.search(/-{2,40}[ \t]{0,10}Transcript of session follows[ \t]{0,10}-{2,40}/i);
  const transcript =
    at >= 0
      ? lines(after.slice(at, at + 20_000), 300)
          .slice(1)
          .map((l) => l.trim())
      : [];
  const mta = /while talking to ([^\s:]{1,255}?)\.?:/i.exec(transcript.join('\n'))?.[1];
  const isReply = (l: string): boolean => /^(?:<<<\s*)?[45]\d\d[ -]/.test(l);
  const recipients = named.map(({ address, reason }) => {
    const own = transcript.find((l) => isReply(l) && l.toLowerCase().includes(address.toLowerCase()));
    const any = transcript.find((l) => l.startsWith('<<<') && isReply(l)) ?? transcript.find(isReply);
    return entry(address, (reason ?? own ?? any ?? '').replace(/^<<<\s*/, ''), action, mta, fallback(action));
  });
  return recipients.length ? { format: 'sendmail', recipients } : null;
}

/** A transcript line without MDaemon's `Tue 2024-03-12 12:00:01.123: ` prefix. */
const untimed = (l: string): string => l.trim().replace(/^(?:\S{1,10} ){0,2}\d{1,2}:\d\d:\d\d(?:\.\d{1,6})?:\s?/, '');

/**
 * MDaemon (and SecurityGateway): "The attached message had PERMANENT fatal delivery errors" and
 * "YOUR MESSAGE WAS NOT DELIVERED TO ONE OR MORE RECIPIENTS", then "--- Session Transcript ---" with
 * timestamped lines (`*  To: addr`, `--> RCPT To:<addr>`, `<-- 550 …`); or, for local delivery,
 * `addr - no such user here.`; SecurityGateway adds `Failed address: addr`.
 */
export function parseMdaemon(text: string, action: DsnAction): PlainBounce | null {
  if (
    !/MDaemon Delivery Status Notification|had (?:PERMANENT fatal|TRANSIENT[^\n]{0,30}) delivery errors|YOUR MESSAGE WAS NOT DELIVERED TO ONE OR MORE RECIPIENTS/i.test(
      text,
    )
  )
    return null;
  const failed = new RegExp(`^[ \\t]*Failed address:[ \\t]*<?(${ADDR}?)>?[ \\t]*\\r?$`, 'im').exec(text)?.[1];
  const local = new RegExp(`^[ \\t]*<?(${ADDR}?)>? - ([^\\r\\n]{3,500})\\r?$`, 'm').exec(text);
  const t0 = text.search(/--- Session Transcript ---/i);
  if (t0 < 0) return local ? { format: 'mdaemon', recipients: [entry(local[1], local[2], action, undefined, fallback(action))] } : null;
  let to: string | undefined;
  let rcpt: string | undefined;
  let mta: string | undefined;
  let reply: { address?: string; text: string[] } | null = null;
  let last = '';
  for (const raw of lines(text.slice(t0, t0 + 50_000), 2000).slice(1)) {
    if (/--- End Transcript ---/i.test(raw)) break;
    const l = untimed(raw);
    if (!l) continue;
    const toLine = /^\*\s+To:\s*(.{1,400})$/i.exec(l);
    const rcptLine = /^-->\s*RCPT To:\s*<?([^>\s]{1,320})/i.exec(l);
    const replyLine = /^<--\s*([45]\d\d[ -].{0,1000})$/.exec(l);
    if (toLine) to ??= addressesIn(toLine[1])[0];
    else if (rcptLine) rcpt = rcptLine[1];
    else if (replyLine && !reply) reply = { address: rcpt, text: [replyLine[1]] };
    else if (replyLine && reply && /^[45]\d\d-/.test(reply.text[reply.text.length - 1])) reply.text.push(replyLine[1]);
    mta ??= /^(?:Connected to|Attempting SMTP connection to) \[([^\]:\s]{1,255})/i.exec(l)?.[1];
    last = l;
  }
  const address = reply?.address ?? failed ?? to ?? local?.[1];
  const diag = reply ? reply.text.join(' ') : (local?.[2] ?? last.replace(/^\*\s+/, ''));
  if (!diag) return null;
  return { format: 'mdaemon', recipients: [entry(address, diag, action, mta, fallback(action))] };
}

/**
 * Lotus / HCL Domino: "Your message … was not delivered to: addr because: User x (addr) not listed in
 * Domino Directory" (subject "DELIVERY FAILURE: …" or "DELIVERY_FAILURE: …"); one block per recipient.
 */
export function parseDomino(text: string, action: DsnAction): PlainBounce | null {
  if (!/was not delivered to:/i.test(text) || !/^[ \t]*because:[ \t]*\r?$/im.test(text)) return null;
  const recipients: DsnRecipient[] = [];
  const re = /was not delivered to:[ \t]*\r?\n/gi;
  // Each block's "because:" is the first one after its marker, found in one forward pass: searching the
  // 8000 characters after every marker again made a text of nothing but markers quadratic in that window.
  const becauseRe = /^[ \t]*because:[ \t]*\r?\n/gim;
  let because: RegExpExecArray | null = null;
  for (let m = re.exec(text); m && recipients.length < MAX_RECIPIENTS; m = re.exec(text)) {
    const from = re.lastIndex;
    if (!because || because.index < from) {
      becauseRe.lastIndex = from;
      because = becauseRe.exec(text);
      if (!because) break;
    }
    const rest = text.slice(from, from + 8000);
    const after = because.index + because[0].length - from;
    const reason = after <= rest.length ? linesAfter(rest.slice(after), /^/, 4) : undefined;
    if (!reason) continue;
    recipients.push(entry(addressesIn(linesAfter(rest, /^/, 3) ?? '')[0], reason.replace(/\n/g, ' '), action, undefined, fallback(action)));
  }
  return recipients.length ? { format: 'domino', recipients } : null;
}

/**
 * GroupWise (GWIA): "The message that you sent was undeliverable to the following:" then one indented
 * line per recipient, `addr (reason)` — the reason often without any code ("User not on post office").
 */
export function parseGroupwise(text: string, action: DsnAction): PlainBounce | null {
  const start = /The message that you sent was undeliverable to the following:?[ \t]*\r?\n/i.exec(text);
  if (!start) return null;
  const recipients: DsnRecipient[] = [];
  for (const l of lines(text.slice(start.index + start[0].length, start.index + start[0].length + 20_000), 400)) {
    if (!l.trim()) {
      if (recipients.length) break;
      continue;
    }
    if (!/^[ \t]/.test(l) || recipients.length >= MAX_RECIPIENTS) break;
    const m = /^\s*(\S{1,320})\s+\((.{1,1000})\)\s*$/.exec(l);
    recipients.push(entry(addressesIn(m ? m[1] : l)[0], m ? m[2] : 'undeliverable', action, undefined, fallback(action)));
  }
  return recipients.length ? { format: 'groupwise', recipients } : null;
}

/**
 * Exchange 2000/2003 (and Outlook's "Undeliverable:" relays of it): "Your message did not reach some or
 * all of the intended recipients." and "The following recipient(s) cannot be reached:", then per
 * recipient `addr on <date>` with more-indented lines: the explanation and `<host #5.1.1 smtp;550 …>`.
 */
export function parseExchangeLegacy(text: string, action: DsnAction): PlainBounce | null {
  const head = /The following recipient\(s\) (?:cannot|could not) be reached:[ \t]*\r?\n/i.exec(text);
  if (!head) return null;
  const groups: Array<{ address?: string; details: string[] }> = [];
  let indent = -1;
  for (const l of lines(text.slice(head.index + head[0].length, head.index + head[0].length + 30_000), 1000)) {
    if (!l.trim()) continue;
    const depth = l.length - l.trimStart().length;
    if (depth === 0) break;
    if (indent < 0) indent = depth;
    if (depth <= indent) {
      if (groups.length >= MAX_RECIPIENTS) break;
      groups.push({ address: addressesIn(l)[0], details: [] });
    } else {
      groups[groups.length - 1]?.details.push(l.trim());
    }
  }
  const recipients = groups.map(({ address, details }) => {
    const joined = details.join(' ');
    const tag = /<([^\s<>#]{1,255})\s+#([245]\.\d{1,3}\.\d{1,3})(?:\s+smtp;\s*([^>]{1,1000}))?>/i.exec(joined);
    const prose = (tag ? joined.replace(tag[0], '') : joined).trim();
    const diag = tag?.[3]?.trim() ?? (tag ? `${prose} (#${tag[2]})` : prose);
    return entry(address, diag, action, tag?.[1], tag?.[2] ?? fallback(action));
  });
  return recipients.length ? { format: 'exchange', recipients } : null;
}
