/**
 * Non-standard plain-text bounces: tries the known layouts in turn — today's MTAs and providers
 * (src/feedback/reports/plain-layouts.ts: Postfix, Exim, Exchange / Office 365, Gmail, Yahoo), then older
 * ones (src/feedback/reports/plain-layouts-legacy.ts: qmail, Courier, Sendmail, MDaemon, Domino, GroupWise,
 * Exchange 2003) — and, for a message that looks like a bounce, a generic "mailer-daemon with an SMTP reply"
 * shape. Pure functions over text; nothing here throws.
 */
import type { DsnAction, PlainBounce } from './bounce-types.js';
import { entry, returnedMessageAt } from './bounce-text.js';
import { parseCourier, parseDomino, parseExchangeLegacy, parseGroupwise, parseMdaemon, parseQmail, parseSendmail } from './plain-layouts-legacy.js';
import { parseExchange, parseExim, parseGmail, parsePostfix, parseYahoo } from './plain-layouts.js';

export type { PlainBounce } from './bounce-types.js';

const WARNING =
  /THIS IS A WARNING ONLY|has not yet been delivered|Delivery incomplete|temporary problem delivering|Delivery Status Notification \(Delay\)|Delayed Mail|delivery has been delayed|warning message only|will (?:continue to )?retry|DELAYS IN DELIVERING YOUR MESSAGE|transient non-fatal errors|had TRANSIENT[^\n]{0,30} delivery errors/i;

/** Most specific first: a layout's own marker decides, the generic shape comes last. */
const LAYOUTS = [
  parsePostfix,
  parseExim,
  parseExchange,
  parseGmail,
  parseYahoo,
  parseQmail,
  parseCourier,
  parseSendmail,
  parseMdaemon,
  parseDomino,
  parseGroupwise,
  parseExchangeLegacy,
];

/** A mailer-daemon-ish message with an SMTP reply but no recognisable layout: one entry without an address. */
function parseGeneric(text: string, action: DsnAction): PlainBounce | null {
  const m = /(?:^|[\s'"#(:])([245]\d\d[ -]#?[245]\.\d{1,3}\.\d{1,3}\b[^\n]*)/m.exec(text.slice(0, 200_000));
  return m ? { format: 'generic', recipients: [entry(undefined, m[1], action)] } : null;
}

/** Whether a message looks like a bounce from its From and Subject. */
export function looksLikeBounce(from: string, subject: string): boolean {
  return (
    /^(?:mailer-daemon|postmaster|mail-daemon|mdaemon)@/i.test(from.trim()) ||
    /undeliver|delivery (?:status notification|failure|failed|has failed|incomplete|delayed)|delivery_failure|returned mail|failure notice|mail delivery (?:failed|system|subsystem|status)|non[- ]?delivery|could not be delivered|not delivered|delivery problem/i.test(
      subject,
    )
  );
}

/**
 * Parses a plain-text bounce (the message's text, subject and From): tries each known layout in turn and,
 * for a message that looks like a bounce, a generic SMTP reply. Returns null when nothing matches.
 */
export function parsePlainBounce(text: string, subject: string, from: string): PlainBounce | null {
  const t = text.slice(0, 1_000_000);
  // Only the bounce's own words say it is a warning: the returned copy of our message is the booking
  // system's text, which may well say "has not yet been delivered".
  const returned = returnedMessageAt(t);
  const own = returned >= 0 ? t.slice(0, returned) : t;
  const action: DsnAction = WARNING.test(own) || WARNING.test(subject) ? 'delayed' : 'failed';
  for (const parse of LAYOUTS) {
    const r = parse(t, action);
    if (r) return r;
  }
  return looksLikeBounce(from, subject) ? parseGeneric(t, action) : null;
}
