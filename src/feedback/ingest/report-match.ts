/**
 * Which message, and which of its recipients, a report is about — using only what can be verified
 * (docs/feedback-trust.md): the signed VERP the report was delivered to, the signed VERP in the original's
 * headers, or — for a report from a registered feedback-loop source (src/feedback/ingest/trust.ts) —
 * X-Kurir-Id or Message-ID. Only recipients of the matched message are ever returned.
 */
import type { Config } from '../../config/schema.js';
import { parseVerp } from '../../lib/verp.js';
import type { MessageStore } from '../../store/message-store.js';
import type { MessageRecord } from '../../store/types.js';
import type { DsnRecipient } from '../reports/bounce-types.js';
import type { OriginalRefs } from '../reports/mime.js';
import type { SourceVerdict } from './trust.js';

/** What matching reads: the message store, the bounce domain and the VERP secret. */
export interface MatchDeps {
  config: Pick<Config, 'bounce'>;
  messages: Pick<MessageStore, 'getRecord' | 'findByHeaderMessageId'>;
  verpSecret: string;
}

export type Resolution =
  | { id: string; record: MessageRecord }
  | { ignored: 'unknown-message' | 'forged-verp' | 'unverified-complaint' | 'unverified-bounce'; detail: string };

export interface FindOptions {
  /** The ARF report's Original-Mail-From: the original's envelope sender, our VERP when it is ours. */
  mailFrom?: string;
  /**
   * Checks the report's source, for a report whose original carries no signed VERP; absent when the
   * transport verified the source already (ESP notifications: SNS signature, Mailgun HMAC).
   */
  source?: () => Promise<SourceVerdict>;
  /** The reason an unverifiable report is ignored with. */
  unverified?: 'unverified-complaint' | 'unverified-bounce';
}

/** Finds the message a report is about, using only what can be verified (see the module comment). */
export async function findMessage(deps: MatchDeps, verpIds: string[], original: OriginalRefs, opts: FindOptions = {}): Promise<Resolution> {
  const { messages, config, verpSecret } = deps;
  const tried = new Set<string>();
  const lookup = async (id: string | null | undefined): Promise<Resolution | null> => {
    if (!id || tried.has(id)) return null;
    tried.add(id);
    const record = await messages.getRecord(id);
    return record ? { id, record } : null;
  };
  // The envelope's VERP is signed: when there is one, it alone names the message.
  if (verpIds.length) {
    for (const id of verpIds) {
      const found = await lookup(id);
      if (found) return found;
    }
    return { ignored: 'unknown-message', detail: 'the VERP address names a message that is not (or no longer) stored' };
  }
  // The original's headers: its Return-Path / Original-Mail-From, our VERP, verified.
  const candidates = [...(opts.mailFrom ? [opts.mailFrom] : []), ...original.verpCandidates];
  let forged = 0;
  let signed = 0;
  for (const c of candidates) {
    const id = parseVerp(c, config.bounce.domain, verpSecret);
    if (!id) {
      if (c.toLowerCase().endsWith(`@${config.bounce.domain.toLowerCase()}`)) forged++;
      continue;
    }
    signed++;
    const found = await lookup(id);
    if (found) return found;
  }
  if (signed) return { ignored: 'unknown-message', detail: 'the signed VERP in the original names a message that is not (or no longer) stored' };
  if (forged) return { ignored: 'forged-verp', detail: `${forged} VERP address(es) in the original did not verify` };
  // No signed VERP: X-Kurir-Id and Message-ID can be copied by anyone, so only a registered source may use them.
  if (opts.source) {
    const verdict = await opts.source();
    if (!verdict.trusted) return { ignored: opts.unverified ?? 'unverified-complaint', detail: `no signed VERP in the original, and ${verdict.detail}` };
  }
  if (original.kurirId && /^[0-9a-z]{10,40}$/.test(original.kurirId)) {
    const found = await lookup(original.kurirId);
    if (found) return found;
  }
  if (original.messageId) {
    const found = await lookup(await messages.findByHeaderMessageId(original.messageId));
    if (found) return found;
  }
  return { ignored: 'unknown-message', detail: 'no VERP, X-Kurir-Id or known Message-ID' };
}

/** The message's own spelling of an address, or undefined when it is not one of its recipients. */
export function recipientOf(record: MessageRecord, address: string | undefined): string | undefined {
  if (!address) return undefined;
  const a = address.toLowerCase();
  return record.recipients.find((r) => r.toLowerCase() === a);
}

/**
 * Which recipient of the message each DSN entry is about: entries naming a recipient (Final- or
 * Original-Recipient) directly; when none does, a forwarded or aliased Final-Recipient, or an entry naming
 * no address, is about the message's only recipient (the VERP names the message), and with several
 * recipients an address the report text mentions decides.
 */
export function resolveDsnRecipients(record: MessageRecord, entries: DsnRecipient[], mentioned: string[]): Map<string, DsnRecipient> {
  const out = new Map<string, DsnRecipient>();
  const put = (address: string, entry: DsnRecipient): void => {
    // A failure outranks a delay for the same recipient.
    const prev = out.get(address);
    if (!prev || (entry.action === 'failed' && prev.action !== 'failed')) out.set(address, entry);
  };
  for (const e of entries) {
    const direct = recipientOf(record, e.address) ?? recipientOf(record, e.originalRecipient);
    if (direct) put(direct, e);
  }
  if (out.size) return out;
  for (const e of entries) {
    if (record.recipients.length === 1) put(record.recipients[0], e);
    else if (!e.address && !e.originalRecipient) {
      const hits = record.recipients.filter((r) => mentioned.includes(r.toLowerCase()));
      if (hits.length === 1) put(hits[0], e);
    }
  }
  return out;
}

/**
 * The complaining recipients of a message. A report that names its recipient — Original-Rcpt-To or
 * Removal-Recipient, else the original's envelope-recipient headers (X-HmXmrOriginalRecipient,
 * X-Original-To, Delivered-To) — is held to it: when none of the named addresses is a recipient of the
 * message, nobody is. Only a fully redacted report falls back to the original's To, then to the message's
 * only recipient.
 */
export function resolveComplainers(record: MessageRecord, named: string[], envelopeTo: string[], to: string[]): { complainers: string[] } | { none: string } {
  const pick = (list: string[]): string[] => [...new Set(list.map((a) => recipientOf(record, a)).filter((a): a is string => !!a))];
  for (const [list, what] of [
    [named, 'Original-Rcpt-To / Removal-Recipient'],
    [envelopeTo, "the original's envelope-recipient headers"],
  ] as const) {
    if (!list.length) continue;
    const complainers = pick(list);
    return complainers.length
      ? { complainers }
      : { none: `the complaint names ${list.length} recipient(s) in ${what}, none of them a recipient of the message` };
  }
  let complainers = pick(to);
  if (!complainers.length && record.recipients.length === 1) complainers = [record.recipients[0]];
  return complainers.length ? { complainers } : { none: 'complaint names no recipient of the message (redacted)' };
}
