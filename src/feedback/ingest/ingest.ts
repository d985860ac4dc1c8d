/**
 * One flow: matching lives in report-match.ts, trust in trust.ts, and what ingest takes and answers in
 * ingest-types.ts.
 *
 * Applies a bounce or complaint report received at the bounce MX: parse (src/feedback/reports/report.ts),
 * find the message, find the recipient(s) among the message's own recipients, classify
 * (config/bounce-rules.yaml), then record timeline events, recipient states, metrics and suppressions
 * (src/feedback/suppression/policy.ts).
 *
 * Trust (docs/feedback-trust.md): a report is about a message only when that can be verified — the signed
 * VERP it was delivered to (checked at RCPT), or the signed VERP in the original's headers (Return-Path,
 * Original-Mail-From); a report with neither is used only when it comes from a registered feedback-loop
 * source (src/feedback/ingest/trust.ts), and then X-Kurir-Id or Message-ID name the message. Anything else is
 * counted (`unverified-complaint`, `unverified-bounce`, `forged-verp`) and changes nothing.
 *
 * Reports an ESP already parsed (SES via SNS, Mailgun: src/esp/ses.ts, src/esp/mailgun.ts) enter through
 * `ingestParsed` and take the same matching and application path, classified by their adapter.
 *
 * Only recipients of the matched message can be affected, so a report can never suppress an arbitrary
 * address. A report that cannot be used is an outcome (`ignored` with a reason), counted and logged, never
 * an exception; only infrastructure failures (Redis) throw, so the sender retries later.
 */
import type { Config } from '../../config/schema.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { Metrics } from '../../metrics/metrics.js';
import { OTHER_PROVIDER, type ProviderMap } from '../../metrics/provider.js';
import type { IncidentRecorder } from '../../store/incident-store.js';
import type { MessageStore } from '../../store/message-store.js';
import type { RecipientUpdate } from '../../store/message-store-types.js';
import type { MessageRecord, RecipientState, TimelineEvent } from '../../store/types.js';
import type { DsnRecipient } from '../reports/dsn.js';
import { findReply } from '../reports/mime.js';
import { findMessage, recipientOf, resolveComplainers, resolveDsnRecipients } from './report-match.js';
import { parseReport, type ArfReport, type DsnReport } from '../reports/report.js';
import type { ReportParser } from './parse-pool.js';
import type { Classification, ReplyClassifier } from '../classify/rules.js';
import type { SuppressionPolicy, SuppressionSource } from '../suppression/policy.js';
import type { SourceVerifier } from './trust.js';
import { reportedProviders } from './report-provider.js';
import type { FailureItem, IgnoreReason, IngestBusy, IngestInput, IngestOutcome, ProviderReport, ReportContext } from './ingest-types.js';

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
  /** Registered feedback-loop sources (src/feedback/ingest/trust.ts); without it no report lacking a signed VERP is used. */
  verifySource?: SourceVerifier;
  /** The per-provider rolling window of GET /v1/incidents: asynchronous bounces count there too. */
  incidents?: IncidentRecorder;
  /** What parses a report (a ParsePool's `parse`, off the event loop); `parseReport` in this thread when absent. */
  parse?: ReportParser;
}

/** Classifies one DSN recipient entry with the reply rules. */
export function classifyDsnRecipient(classify: ReplyClassifier, r: DsnRecipient): Classification {
  const diagEnhanced = r.diagnostic ? findReply(r.diagnostic).enhanced : undefined;
  // A generic Status (5.0.0) says less than the enhanced code in the remote server's own reply.
  const enhanced = r.status && !(r.status.endsWith('.0.0') && diagEnhanced) ? r.status : (diagEnhanced ?? r.status ?? null);
  const code = r.code ?? (enhanced ? Number(enhanced[0]) * 100 + 50 : null);
  const text = r.diagnostic ?? (enhanced ? `Status: ${enhanced}` : `Action: ${r.action}`);
  return classify({ code, enhanced, text });
}

/**
 * Applies bounce and complaint reports (from the bounce MX or already parsed by an ESP adapter) to the one message and recipients
 * they can be verified to concern: timeline events, recipient states, metrics, incident window and suppression policy.
 */
export class FeedbackIngest {
  constructor(private readonly deps: IngestDeps) {}

  /**
   * Parses and applies one report; `busy` when the parse threads are full. Throws when the stores fail or the
   * source check cannot finish (the caller answers 451).
   */
  async ingest(input: IngestInput): Promise<IngestOutcome | IngestBusy> {
    const parse = this.deps.parse ?? parseReport;
    const report = await parse(input.raw, { maxBytes: this.deps.config.feedback.maxMessageBytes });
    if (report.kind === 'busy') {
      this.deps.metrics.feedbackDeferred.inc();
      this.deps.logger.info({ sid: input.sessionId, remote: input.remoteAddress, detail: report.detail }, 'feedback: report deferred (parse threads busy)');
      return { result: 'busy', detail: report.detail };
    }
    if (report.kind === 'unusable') return this.ignore(input, report.reason, report.detail);
    const { verifySource } = this.deps;
    const found = await findMessage(this.deps, input.verpIds, report.original, {
      ...(report.kind === 'arf' && report.originalMailFrom ? { mailFrom: report.originalMailFrom } : {}),
      source: async () => {
        if (!verifySource) return { trusted: false, detail: 'no feedback-loop sources are registered' };
        const verdict = await verifySource(input.raw, input.remoteAddress);
        if (verdict.trusted || !input.truncated) return verdict;
        return { trusted: false, detail: `${verdict.detail}; only its first feedback.maxMessageBytes were kept, which no DKIM body hash matches` };
      },
      unverified: report.kind === 'arf' ? 'unverified-complaint' : 'unverified-bounce',
    });
    if ('ignored' in found) return this.ignore(input, found.ignored, found.detail);
    return report.kind === 'dsn' ? this.applyDsn(input, found.record, report) : this.applyArf(input, found.record, report);
  }

  /**
   * Applies a report an ESP already parsed and classified (SES, Mailgun): the same matching (VERP
   * verified, then X-Kurir-Id, then Message-ID — the notification's signature verified its source),
   * recipient check, timeline, metrics and suppression policy as a report at the bounce MX. Throws only
   * when the stores fail.
   */
  async ingestParsed(report: ProviderReport, ctx: ReportContext = {}): Promise<IngestOutcome> {
    const found = await findMessage(this.deps, [], report.original);
    if ('ignored' in found) return this.ignore(ctx, found.ignored, found.detail);
    const { record } = found;
    if (report.kind === 'complaint') {
      const who = resolveComplainers(record, report.recipients, [], []);
      if ('none' in who) return this.ignore(ctx, 'unknown-recipient', who.none, record.id);
      return this.applyComplaint(ctx, record, who.complainers, report.feedbackType, report.userAgent, report.provider);
    }
    const relevant = report.failures.filter((f) => f.action === 'failed' || f.action === 'delayed');
    if (!relevant.length) return this.ignore(ctx, 'no-failure', `${report.provider} reports no failure`, record.id);
    const items = new Map<string, FailureItem>();
    for (const f of relevant) {
      const address = recipientOf(record, f.address);
      if (!address) continue;
      const prev = items.get(address);
      if (!prev || (f.action === 'failed' && prev.action !== 'failed')) items.set(address, { ...f, address });
    }
    if (!items.size) return this.ignore(ctx, 'unknown-recipient', `none of ${relevant.length} reported recipient(s) is a recipient of the message`, record.id);
    return this.applyFailures(ctx, record, [...items.values()], report.provider, report.provider);
  }

  /** Counts and logs a report that changes nothing (also used by the ESP adapters for notifications they skip). */
  ignore(input: ReportContext, reason: IgnoreReason, detail: string, messageId?: string): IngestOutcome {
    this.deps.metrics.feedbackIgnored.inc({ reason });
    this.deps.logger.info({ sid: input.sessionId, remote: input.remoteAddress, id: messageId, reason, detail }, 'feedback: report ignored');
    return { result: 'ignored', reason, detail, ...(messageId ? { messageId } : {}) };
  }

  private async applyDsn(input: IngestInput, record: MessageRecord, report: DsnReport): Promise<IngestOutcome> {
    const relevant = report.recipients.filter((r) => r.action === 'failed' || r.action === 'delayed');
    if (!relevant.length)
      return this.ignore(input, 'no-failure', `DSN reports only ${[...new Set(report.recipients.map((r) => r.action))].join(', ')}`, record.id);
    const entries = resolveDsnRecipients(record, relevant, report.mentioned);
    if (!entries.size)
      return this.ignore(input, 'unknown-recipient', `none of ${relevant.length} reported recipient(s) is a recipient of the message`, record.id);
    const items: FailureItem[] = [...entries].map(([address, entry]) => ({
      address,
      action: entry.action === 'delayed' ? 'delayed' : 'failed',
      classification: classifyDsnRecipient(this.deps.classify, entry),
      reply: entry.diagnostic ?? (entry.status ? `Status: ${entry.status}` : `Action: ${entry.action}`),
      ...(entry.status ? { status: entry.status } : {}),
      ...(entry.remoteMta ? { remoteMta: entry.remoteMta } : {}),
    }));
    return this.applyFailures(input, record, items, 'dsn', report.format);
  }

  /** The provider labels of reported recipients, as their deliveries were counted (./report-provider.ts). */
  private providersOf(id: string, addresses: string[]): Promise<Map<string, string>> {
    const { messages, providers, config } = this.deps;
    return reportedProviders({ messages, providers, smarthost: config.delivery.smarthost !== null }, id, addresses);
  }

  /** Records classified failures of a message's recipients: timeline, recipient states, metrics, suppression policy. */
  private async applyFailures(
    ctx: ReportContext,
    record: MessageRecord,
    items: FailureItem[],
    source: 'dsn' | 'ses' | 'mailgun',
    format: string,
  ): Promise<IngestOutcome> {
    const { deps } = this;
    const now = deps.clock.now();
    const states = await deps.messages.getRecipients(
      record.id,
      items.map((i) => i.address),
    );
    const providers = await this.providersOf(
      record.id,
      items.filter((i) => i.action !== 'delayed').map((i) => i.address),
    );
    const updates: RecipientUpdate[] = [];
    const events: TimelineEvent[] = [];
    const outcome = {
      result: 'applied' as const,
      kind: 'bounce' as const,
      messageId: record.id,
      bounced: [] as string[],
      delayed: [] as string[],
      complained: [],
      suppressed: [] as string[],
      senderSide: [] as string[],
    };
    for (const { address, action, classification: c, reply, status, remoteMta } of items) {
      const details = { ...(status ? { status } : {}), ...(remoteMta ? { remoteMta } : {}), format };
      if (action === 'delayed') {
        events.push({ type: 'delayed', at: now, recipients: [address], reply, category: c.category, ...details });
        outcome.delayed.push(address);
        continue;
      }
      const cause = c.cause ? { cause: c.cause } : {};
      events.push({ type: 'bounced', at: now, recipients: [address], reply, category: c.category, ...cause, async: true, bounceType: c.type, ...details });
      outcome.bounced.push(address);
      const prev: RecipientState | undefined = states[address];
      const state: RecipientState = { status: 'bounced', attempts: prev?.attempts ?? 0, updatedAt: now, reply, category: c.category };
      if (prev?.remoteHost) state.remoteHost = prev.remoteHost;
      updates.push({ address, state });
      const provider = providers.get(address) ?? OTHER_PROVIDER;
      deps.metrics.bounces.inc({ provider, category: c.category, type: c.type });
      if (c.cause) deps.metrics.deliveryAuthFailures.inc({ provider, cause: c.cause });
      await deps.incidents
        ?.record(provider, now, [{ status: 'bounced', category: c.category, ...cause, reply, count: 1 }])
        .catch((err: unknown) => deps.logger.warn({ err, id: record.id, provider }, 'incident window not updated'));
      const decision = await deps.policy.onFailure({ address, classification: c, source, messageId: record.id, at: now });
      if (decision.action === 'suppressed' && decision.ours) {
        events.push({ type: 'suppressed', at: now, recipients: [address], reason: decision.reason, source: decision.source });
        outcome.suppressed.push(address);
      } else if (decision.action === 'sender-side') {
        outcome.senderSide.push(address);
      }
    }
    await deps.messages.update(record.id, updates, events);
    deps.logger.info(
      {
        sid: ctx.sessionId,
        id: record.id,
        source,
        format,
        bounced: outcome.bounced.length,
        delayed: outcome.delayed.length,
        suppressed: outcome.suppressed.length,
        senderSide: outcome.senderSide.length,
      },
      source === 'dsn' ? 'feedback: DSN applied' : 'feedback: ESP bounce applied',
    );
    return outcome;
  }

  private async applyArf(input: IngestInput, record: MessageRecord, report: ArfReport): Promise<IngestOutcome> {
    const who = resolveComplainers(record, report.recipients, report.original.envelopeTo ?? [], report.original.to);
    if ('none' in who) return this.ignore(input, 'unknown-recipient', who.none, record.id);
    return this.applyComplaint(input, record, who.complainers, report.feedbackType, report.userAgent, 'arf');
  }

  /** Records a complaint by recipients of a message: timeline, metrics, suppression (reason `complaint`). */
  private async applyComplaint(
    ctx: ReportContext,
    record: MessageRecord,
    complainers: string[],
    feedbackType: string,
    userAgent: string | undefined,
    source: Extract<SuppressionSource, 'arf' | 'ses' | 'mailgun'>,
  ): Promise<IngestOutcome> {
    const { deps } = this;
    const now = deps.clock.now();
    const events: TimelineEvent[] = [{ type: 'complained', at: now, recipients: complainers, feedbackType, ...(userAgent ? { userAgent } : {}) }];
    const suppressed: string[] = [];
    const providers = await this.providersOf(record.id, complainers);
    for (const address of complainers) {
      deps.metrics.complaints.inc({ provider: providers.get(address) ?? OTHER_PROVIDER });
      const decision = await deps.policy.onComplaint({ address, messageId: record.id, at: now, source });
      if (decision.action === 'suppressed' && decision.ours) suppressed.push(address);
    }
    if (suppressed.length) events.push({ type: 'suppressed', at: now, recipients: suppressed, reason: 'complaint', source });
    await deps.messages.update(record.id, [], events);
    deps.logger.info(
      { sid: ctx.sessionId, id: record.id, source, feedbackType, agent: userAgent, complainers: complainers.length },
      'feedback: complaint applied',
    );
    return { result: 'applied', kind: 'complaint', messageId: record.id, bounced: [], delayed: [], complained: complainers, suppressed, senderSide: [] };
  }
}
