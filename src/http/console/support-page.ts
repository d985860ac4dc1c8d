/**
 * The support screen: every message to one address (or one message by id, or every message with one
 * booking reference) with its status, the
 * receiver's last reply in plain words and the timeline; the address's suppression with a remove button;
 * the newest seed-mailbox placement result for the address's provider. Pure rendering over loaded data.
 */
import type { ResendHint } from '../../intake/resend-hint.js';
import { shownSubject } from '../../intake/subject-summary.js';
import type { PlacementResult } from '../../store/placement-store.js';
import type { Suppression } from '../../store/suppression-store.js';
import { isDuplicate, isSuperseded, type MessageView, type RecipientState, type TimelineEvent } from '../../store/types.js';
import { html, when, type Html } from './html.js';

/** What the support screen shows for one search. */
export interface SupportResult {
  query: string;
  /** What the query was taken for. */
  kind: 'address' | 'id' | 'reference';
  /** The recipient address the page is about (the searched one, or the first recipient of a message searched by id). */
  address: string | null;
  provider: string | null;
  messages: MessageView[];
  /** undefined: the suppression list is not available in this process. */
  suppression?: Suppression | null;
  placement: PlacementResult | null;
  /** Whether the booking system could send another message to the address now; null when unknown. */
  resend: ResendHint | null;
  /** When the page was made (ms), for "in about N minutes". */
  now: number;
  /** More messages matched than the page lists (the newest 50); absent: not known (false for the audit entry). */
  more?: boolean;
  /** Shards that did not answer the search: their messages are missing. */
  unavailableShards?: string[];
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

function windowInWords(seconds: number): string {
  if (seconds % 3600 === 0) return plural(seconds / 3600, 'hour', 'hours');
  if (seconds % 60 === 0) return plural(seconds / 60, 'minute', 'minutes');
  return plural(seconds, 'second', 'seconds');
}

/** The resend outlook in a sentence: may the booking system send another code now, and if not, when. */
export function resendInWords(h: ResendHint, now: number): { status: 'ok' | 'warning' | 'failed'; text: string } {
  if (h.reason === 'suppressed')
    return { status: 'failed', text: `No: ${h.address} is suppressed, so Kurir will refuse a new message to it until the suppression is removed.` };
  const l = h.limit;
  if (!l) return { status: 'ok', text: `Yes: no per-recipient limit applies, a new message to ${h.address} is accepted now.` };
  const budget = `${l.used} of the ${l.max} ${l.priorities.join('/')} messages allowed per ${windowInWords(l.windowSeconds)} to this address`;
  if (h.reason === 'recipient-limit' && h.nextAllowedAt !== null) {
    const minutes = Math.max(1, Math.ceil((h.nextAllowedAt - now) / 60_000));
    return {
      status: 'warning',
      text: `Not yet: ${budget} were sent in the current window. The next is allowed at ${when(h.nextAllowedAt)} (in about ${plural(minutes, 'minute', 'minutes')}); until then Kurir refuses it.`,
    };
  }
  return { status: 'ok', text: `Yes: a new message is accepted now (${budget} used in the current window).` };
}

/** The receiver's answer for one recipient, in a sentence support can read out on the phone. */
export function inWords(state: RecipientState | undefined, provider: string | null, lastHost?: string): string {
  const who = provider && provider !== 'other' ? provider : 'The receiving server';
  if (!state) return 'This address is not among the recipients of this message.';
  const reply = state.reply ? ` Its answer: “${state.reply}”.` : '';
  // Hosts are recorded as `name[ip]:port`; the name is what support reads out.
  const remote = (state.remoteHost ?? lastHost)?.replace(/\[.*$/, '');
  const host = remote ? ` (${remote})` : '';
  switch (state.status) {
    case 'delivered':
      return `${who}${host} accepted it at ${when(state.updatedAt)}.${reply}`;
    case 'bounced':
      return `${who}${host} refused it at ${when(state.updatedAt)}${state.category ? ` (${state.category})` : ''}.${reply}`;
    case 'deferred':
      return `${who}${host} has not accepted it yet: the last of ${state.attempts} attempt(s) was at ${when(state.updatedAt)}; the next is due ${when(state.nextAttemptAt)}.${reply}`;
    case 'expired':
      return `Kurir gave up at ${when(state.updatedAt)} after ${state.attempts} attempt(s).${reply}`;
    default:
      return `Waiting to be sent (since ${when(state.updatedAt)}).`;
  }
}

/** A recipient left out at intake (MessageRecord.leftOut): suppressed between its RCPT TO and the end of DATA. */
export function leftOutInWords(left: { address: string; reason: string }): string {
  return `Kurir left ${left.address} out of this message when accepting it: the address had been suppressed meanwhile (${left.reason}), so nothing was sent to it.`;
}

/** The placement sentence: what our seed mailbox at that provider saw last. */
export function placementInWords(p: PlacementResult | null, provider: string | null): string {
  if (!provider) return '';
  if (!p) return `No seed-mailbox test result for ${provider} yet.`;
  if (p.result === 'not-delivered') return `Our last seed test at ${provider} (${when(p.at)}) was not delivered to the seed (${p.error ?? 'not delivered'}).`;
  const where = p.result === 'inbox' ? 'in the inbox' : p.result === 'spam' ? 'in the spam folder' : p.result === 'missing' ? 'nowhere (missing)' : p.result;
  return `Our last seed test at ${provider} (${when(p.at)}) found the test message ${where}.`;
}

function eventLine(e: TimelineEvent): string {
  const late = isSuperseded(e) ? ' — a late outcome, after the recipient was settled (cancelled, or delivered by another run); it changed nothing' : '';
  const again = isDuplicate(e) ? ' — a second copy, sent by another run of the same delivery job; the first delivery stands and no webhook was sent' : '';
  return describe(e) + late + again;
}

function describe(e: TimelineEvent): string {
  switch (e.type) {
    case 'queued':
      return 'accepted by Kurir and queued';
    case 'attempt':
      return `delivery attempt to ${e.host}${e.sourceIp ? ` from ${e.sourceIp} (HELO ${e.helo})` : ''}: ${e.reply}`;
    case 'deferred':
      return `deferred (${e.category}${e.cause ? `, ${e.cause}` : ''}): ${e.reply}`;
    case 'delivered':
      return `delivered to ${e.host}: ${e.reply}`;
    case 'bounced':
      return `bounced (${e.category}${e.cause ? `, ${e.cause}` : ''})${e.async ? ' after delivery' : ''}: ${e.reply}`;
    case 'delayed':
      return `delay notice (${e.category}): ${e.reply}`;
    case 'complained':
      return `spam complaint (${e.feedbackType})`;
    case 'suppressed':
      // Source intake: recipients left out at the end of DATA because they were already suppressed (MessageRecord.leftOut).
      return e.source === 'intake' ? `left out of this message (already suppressed: ${e.reason})` : `address suppressed: ${e.reason}`;
    case 'expired':
      return `expired${e.reply ? `: ${e.reply}` : ''}`;
    case 'placement':
      return `seed placement at ${e.provider}: ${e.result}`;
    case 'scored':
      return `scored ${e.score} by rspamd (${e.action})`;
    case 'confirmed':
      return 'confirmed by the booking system (the applicant used the code)';
  }
}

function concerns(e: TimelineEvent, address: string | null): boolean {
  if (!address || !('recipients' in e)) return true;
  return e.recipients.some((r) => r.toLowerCase() === address.toLowerCase());
}

function messageCard(view: MessageView, address: string | null, provider: string | null): Html {
  const r = view.record;
  const state = address ? Object.entries(view.recipients).find(([a]) => a.toLowerCase() === address.toLowerCase())?.[1] : undefined;
  const events = view.events.filter((e) => concerns(e, address));
  const lastHost = events.flatMap((e) => ('host' in e && e.host ? [e.host] : [])).pop();
  const left = !state && address ? r.leftOut?.find((l) => l.address.toLowerCase() === address.toLowerCase()) : undefined;
  return html`<section class="card" aria-labelledby="m-${r.id}">
  <h2 id="m-${r.id}"><span class="status ${view.status}">${view.status}</span> ${shownSubject(r.subject) || '(no subject)'}</h2>
  ${address ? html`<p class="facts">${left ? leftOutInWords(left) : inWords(state, provider, lastHost)}</p>` : everyRecipient(view)}
  <dl class="meta"><dt>Id</dt><dd class="mono">${r.id}</dd><dt>From</dt><dd>${r.mailFrom}</dd><dt>Sent by</dt><dd>${r.owner}</dd>${r.reference ? html`<dt>Reference</dt><dd>${r.reference}</dd>` : ''}<dt>Submitted</dt><dd>${when(r.createdAt)}</dd></dl>
  <table><caption>Timeline</caption><thead><tr><th scope="col">When</th><th scope="col">What</th></tr></thead><tbody>
  ${events.map((e) => html`<tr><td data-label="When">${when(e.at)}</td><td data-label="What">${eventLine(e)}</td></tr>`)}
  </tbody></table>
</section>`;
}

/** Without one address (a search by id or reference of a message to several), one sentence per recipient. */
function everyRecipient(view: MessageView): Html[] {
  return Object.entries(view.recipients).map(([to, state]) => {
    const host = view.events.flatMap((e) => ('host' in e && e.host && concerns(e, to) ? [e.host] : [])).pop();
    return html`<p class="facts">${to}: ${inWords(state, null, host)}</p>`;
  });
}

const EMPTY: Record<SupportResult['kind'], string> = {
  address: 'No message to this address is on record',
  id: 'No message with this id is on record',
  reference: 'No message with this id or booking reference is on record',
};

/**
 * The confirmation page of a suppression removal: what is lost (a removal cannot be undone: adding the address
 * again does not bring back the original date, reason and source) and the button that removes it.
 */
export function removeSuppressionPage(s: Suppression, csrf: string): Html {
  return html`<p class="error">Remove <strong>${s.address}</strong> from the suppression list? It was suppressed ${when(s.at)}: ${s.reason} (by ${s.source}). Kurir will accept and send new messages to it again. This cannot be undone: adding the address again does not bring back this record.</p>
<form method="post" action="/console/suppressions/remove"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="address" value="${s.address}"><input type="hidden" name="confirm" value="yes">
<p class="row"><button type="submit" class="danger">Remove suppression of ${s.address} now</button> <a href="/console?q=${encodeURIComponent(s.address)}">Cancel, keep it suppressed</a></p></form>`;
}

/** The search form, the facts for the address and one card per message. */
export function supportPage(result: SupportResult | null, notice?: string): Html {
  const form = html`<form method="get" action="/console" role="search">
  <label for="q">Recipient address, message id or booking reference</label>
  <div class="row"><input id="q" name="q" type="search" autocomplete="off" required value="${result?.query ?? ''}"><button type="submit">Search</button></div>
</form>`;
  if (!result) return html`${form}`;
  const { address, provider } = result;
  const words = result.resend ? resendInWords(result.resend, result.now) : null;
  const resend = words
    ? html`<section class="card" aria-labelledby="resend"><h2 id="resend">May the booking system send another message?</h2>
  <p class="facts"><span class="status ${words.status}">${words.status === 'ok' ? 'yes' : words.status === 'warning' ? 'not yet' : 'no'}</span> ${words.text}</p></section>`
    : '';
  const supp =
    result.suppression === undefined || !address
      ? ''
      : result.suppression
        ? html`<div class="card"><h2>Suppressed</h2>
  <p><strong>${address}</strong> is on the suppression list since ${when(result.suppression.at)}: ${result.suppression.reason} (by ${result.suppression.source}). Kurir refuses new messages to it.</p>
  <p><a href="/console/suppressions/remove?address=${encodeURIComponent(address)}" class="danger">Remove suppression of ${address}…</a></p></div>`
        : html`<p class="notice">${address} is not suppressed: new messages to it are accepted.</p>`;
  return html`${form}
${notice ? html`<p class="notice" role="status">${notice}</p>` : ''}
${address ? html`<h2>About ${address}</h2>` : ''}
${supp}
${resend}
${provider ? html`<p class="facts">${placementInWords(result.placement, provider)}</p>` : ''}
<h2>${result.messages.length} message(s)${result.kind === 'reference' ? ` with the booking reference ${result.query}` : ''}</h2>
${result.unavailableShards?.length ? html`<p class="notice" role="status">Incomplete: Redis shard(s) ${result.unavailableShards.join(', ')} did not answer, so their messages are missing here. Search again once they are back.</p>` : ''}
${result.messages.length ? result.messages.map((m) => messageCard(m, address, provider)) : html`<p>${EMPTY[result.kind]} (records are kept for the message lifetime plus the retention days).</p>`}`;
}
