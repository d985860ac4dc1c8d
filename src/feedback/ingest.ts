/**
 * Applies a bounce or complaint report received at the bounce MX: parse (src/feedback/report.ts), find the
 * message (the VERP envelope recipient when there is one; otherwise — reports to the fbl@ address — the
 * VERP, X-Kurir-Id or Message-ID of the original's headers), find the recipient(s) among the message's own recipients, classify (config/bounce-rules.yaml),
 * then record timeline events, recipient states, metrics and suppressions (src/feedback/suppression.ts).
 *
 * Only recipients of the matched message can be affected, so a report can never suppress an arbitrary
 * address. A report that cannot be used is an outcome (`ignored` with a reason), counted and logged, never
 * an exception; only infrastructure failures (Redis) throw, so the sender retries later.
 */
import type { Config } from '../config/schema.js';
import { domainOf } from '../lib/address.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { parseVerp } from '../lib/verp.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ProviderMap } from '../metrics/provider.js';
import type { MessageStore, RecipientUpdate } from '../store/message-store.js';
import type { MessageRecord, RecipientState, TimelineEvent } from '../store/types.js';
import type { DsnRecipient } from './dsn.js';
import { findReply } from './mime.js';
import { parseReport, type ArfReport, type DsnReport, type UnusableReason } from './report.js';
import type { Classification, ReplyClassifier, SuppressionPolicy } from './suppression.js';

export const INGEST_IGNORE_REASONS = ['unknown-message', 'forged-verp', 'unknown-recipient', 'no-failure'] as const;
/** Why a report changed nothing: the parser's reasons plus matching failures (a bounded metric label set). */
export type IgnoreReason = UnusableReason | (typeof INGEST_IGNORE_REASONS)[number];

export interface IngestDeps {
  config: Config;
  messages: MessageStore;
  policy: SuppressionPolicy;
  classify: ReplyClassifier;
  metrics: Metrics;
  providers: ProviderMap;
  logger: Logger;
  clock: Clock;
  verpSecret: string;
}

export interface IngestInput {
  raw: Buffer;
  /** Kurir message ids of the envelope's VERP recipients (their tokens already verified at RCPT). */
  verpIds: string[];
  /** For the log. */
  sessionId?: string;
  remoteAddress?: string;
}

export type IngestOutcome =
  | {
      result: 'applied';
      kind: 'bounce' | 'complaint';
      messageId: string;
      bounced: string[];
      delayed: string[];
      complained: string[];
      suppressed: string[];
      /** Failures not held against the recipient (policy, spam-block, …). */
      senderSide: string[];
    }
  | { result: 'ignored'; reason: IgnoreReason; detail: string; messageId?: string };

/** Classifies one DSN recipient entry with the reply rules. */
export function classifyDsnRecipient(classify: ReplyClassifier, r: DsnRecipient): Classification {
  const diagEnhanced = r.diagnostic ? findReply(r.diagnostic).enhanced : undefined;
  // A generic Status (5.0.0) says less than the enhanced code in the remote server's own reply.
  const enhanced = r.status && !(r.status.endsWith('.0.0') && diagEnhanced) ? r.status : (diagEnhanced ?? r.status ?? null);
  const code = r.code ?? (enhanced ? Number(enhanced[0]) * 100 + 50 : null);
  const text = r.diagnostic ?? (enhanced ? `Status: ${enhanced}` : `Action: ${r.action}`);
  return classify({ code, enhanced, text });
}

type Resolution = { id: string; record: MessageRecord } | { ignored: 'unknown-message' | 'forged-verp'; detail: string };

/** Finds the message a report is about. */
async function findMessage(deps: IngestDeps, verpIds: string[], report: DsnReport | ArfReport): Promise<Resolution> {
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
  // The original's headers: its Return-Path (our VERP, verified), then X-Kurir-Id, then the Message-ID index.
  const candidates = [...(report.kind === 'arf' && report.originalMailFrom ? [report.originalMailFrom] : []), ...report.original.verpCandidates];
  let forged = 0;
  for (const c of candidates) {
    const id = parseVerp(c, config.bounce.domain, verpSecret);
    if (!id) {
      if (c.toLowerCase().endsWith(`@${config.bounce.domain.toLowerCase()}`)) forged++;
      continue;
    }
    const found = await lookup(id);
    if (found) return found;
  }
  if (report.original.kurirId && /^[0-9a-z]{10,40}$/.test(report.original.kurirId)) {
    const found = await lookup(report.original.kurirId);
    if (found) return found;
  }
  if (report.original.messageId) {
    const found = await lookup(await messages.findByHeaderMessageId(report.original.messageId));
    if (found) return found;
  }
  if (forged) return { ignored: 'forged-verp', detail: `${forged} VERP address(es) in the original did not verify` };
  return { ignored: 'unknown-message', detail: 'no VERP, X-Kurir-Id or known Message-ID' };
}

/** The message's own spelling of an address, or undefined when it is not one of its recipients. */
function recipientOf(record: MessageRecord, address: string | undefined): string | undefined {
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
function resolveDsnRecipients(record: MessageRecord, entries: DsnRecipient[], mentioned: string[]): Map<string, DsnRecipient> {
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

export class FeedbackIngest {
  constructor(private readonly deps: IngestDeps) {}

  /** Parses and applies one report. Throws only when the stores fail (the caller answers 451). */
  async ingest(input: IngestInput): Promise<IngestOutcome> {
    const report = await parseReport(input.raw, { maxBytes: this.deps.config.feedback.maxMessageBytes });
    if (report.kind === 'unusable') return this.ignore(input, report.reason, report.detail);
    const found = await findMessage(this.deps, input.verpIds, report);
    if ('ignored' in found) return this.ignore(input, found.ignored, found.detail);
    return report.kind === 'dsn' ? this.applyDsn(input, found.record, report) : this.applyArf(input, found.record, report);
  }

  private ignore(input: IngestInput, reason: IgnoreReason, detail: string, messageId?: string): IngestOutcome {
    this.deps.metrics.feedbackIgnored.inc({ reason });
    this.deps.logger.info({ sid: input.sessionId, remote: input.remoteAddress, id: messageId, reason, detail }, 'feedback: report ignored');
    return { result: 'ignored', reason, detail, ...(messageId ? { messageId } : {}) };
  }

  private async applyDsn(input: IngestInput, record: MessageRecord, report: DsnReport): Promise<IngestOutcome> {
    const { deps } = this;
    const now = deps.clock.now();
    const relevant = report.recipients.filter((r) => r.action === 'failed' || r.action === 'delayed');
    if (!relevant.length) return this.ignore(input, 'no-failure', `DSN reports only ${[...new Set(report.recipients.map((r) => r.action))].join(', ')}`, record.id);
    const entries = resolveDsnRecipients(record, relevant, report.mentioned);
    if (!entries.size) return this.ignore(input, 'unknown-recipient', `none of ${relevant.length} reported recipient(s) is a recipient of the message`, record.id);

    const states = await deps.messages.getRecipients(record.id, [...entries.keys()]);
    const updates: RecipientUpdate[] = [];
    const events: TimelineEvent[] = [];
    const outcome = { result: 'applied' as const, kind: 'bounce' as const, messageId: record.id, bounced: [] as string[], delayed: [] as string[], complained: [], suppressed: [] as string[], senderSide: [] as string[] };
    for (const [address, entry] of entries) {
      const c = classifyDsnRecipient(deps.classify, entry);
      const reply = entry.diagnostic ?? (entry.status ? `Status: ${entry.status}` : `Action: ${entry.action}`);
      const details = {
        ...(entry.status ? { status: entry.status } : {}),
        ...(entry.remoteMta ? { remoteMta: entry.remoteMta } : {}),
        format: report.format,
      };
      if (entry.action === 'delayed') {
        events.push({ type: 'delayed', at: now, recipients: [address], reply, category: c.category, ...details });
        outcome.delayed.push(address);
        continue;
      }
      events.push({ type: 'bounced', at: now, recipients: [address], reply, category: c.category, async: true, bounceType: c.type, ...details });
      outcome.bounced.push(address);
      const prev: RecipientState | undefined = states[address];
      const state: RecipientState = { status: 'bounced', attempts: prev?.attempts ?? 0, updatedAt: now, reply, category: c.category };
      if (prev?.remoteHost) state.remoteHost = prev.remoteHost;
      updates.push({ address, state });
      deps.metrics.bounces.inc({ provider: deps.providers.byDomain(domainOf(address)), category: c.category, type: c.type });
      const decision = await deps.policy.onFailure({ address, classification: c, source: 'dsn', messageId: record.id, at: now });
      if (decision.action === 'suppressed' && decision.added) {
        events.push({ type: 'suppressed', at: now, recipients: [address], reason: decision.reason, source: decision.source });
        outcome.suppressed.push(address);
      } else if (decision.action === 'sender-side') {
        outcome.senderSide.push(address);
      }
    }
    await deps.messages.update(record.id, updates, events);
    deps.logger.info(
      { sid: input.sessionId, id: record.id, format: report.format, bounced: outcome.bounced.length, delayed: outcome.delayed.length, suppressed: outcome.suppressed.length, senderSide: outcome.senderSide.length },
      'feedback: DSN applied',
    );
    return outcome;
  }

  private async applyArf(input: IngestInput, record: MessageRecord, report: ArfReport): Promise<IngestOutcome> {
    const { deps } = this;
    const now = deps.clock.now();
    // Original-Rcpt-To / Removal-Recipient, else the original's To (often redacted), else the only recipient.
    const pick = (list: string[]): string[] => [...new Set(list.map((a) => recipientOf(record, a)).filter((a): a is string => !!a))];
    let complainers = pick(report.recipients);
    if (!complainers.length) complainers = pick(report.original.to);
    if (!complainers.length && record.recipients.length === 1) complainers = [record.recipients[0]];
    if (!complainers.length) return this.ignore(input, 'unknown-recipient', 'complaint names no recipient of the message (redacted)', record.id);

    const events: TimelineEvent[] = [{ type: 'complained', at: now, recipients: complainers, feedbackType: report.feedbackType, ...(report.userAgent ? { userAgent: report.userAgent } : {}) }];
    const suppressed: string[] = [];
    for (const address of complainers) {
      deps.metrics.complaints.inc({ provider: deps.providers.byDomain(domainOf(address)) });
      const decision = await deps.policy.onComplaint({ address, messageId: record.id, at: now });
      if (decision.action === 'suppressed' && decision.added) suppressed.push(address);
    }
    if (suppressed.length) events.push({ type: 'suppressed', at: now, recipients: suppressed, reason: 'complaint', source: 'arf' });
    await deps.messages.update(record.id, [], events);
    deps.logger.info({ sid: input.sessionId, id: record.id, feedbackType: report.feedbackType, agent: report.userAgent, complainers: complainers.length }, 'feedback: complaint applied');
    return { result: 'applied', kind: 'complaint', messageId: record.id, bounced: [], delayed: [], complained: complainers, suppressed, senderSide: [] };
  }
}
