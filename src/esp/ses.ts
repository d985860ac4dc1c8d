/**
 * Amazon SES bounce and complaint notifications, delivered by SNS to `POST /v1/feedback/ses` (smarthost
 * mode: Kurir relays through SES and learns of failures from SES, not from DSNs at its own bounce MX).
 *
 * Order of checks: SNS envelope well-formed → TopicArn allowed (`feedback.ses.topicArns`) → signature
 * (src/esp/sns-signature.ts) → Timestamp within `maxAgeSeconds` → MessageId not seen before (SNS
 * delivers at least once; a redelivery is acknowledged, not applied twice; one that arrives while the
 * first is being applied is answered 503; src/esp/apply-once.ts). Then:
 * - SubscriptionConfirmation: confirmed by GET-ing SubscribeURL when `autoConfirm` is on and the URL is
 *   https on an allowed host; otherwise logged for the admin to confirm;
 * - Notification: SES's JSON (`notificationType` or, from configuration-set event publishing, `eventType`)
 *   mapped onto a ProviderReport and applied by FeedbackIngest.ingestParsed: Permanent → hard,
 *   Transient/Undetermined → soft, Complaint → complaint. The category comes from the reply rules over
 *   `diagnosticCode`/`status`; when they say no more than `other`, from SES's bounceSubType.
 * The message is found by the VERP in `mail.source` (our MAIL FROM), else X-Kurir-Id, else Message-ID.
 */
import type { Logger } from '../lib/logger.js';
import { normalizeHeaderMessageId } from '../lib/message-id.js';
import type { EspRejectReason, EspResult, FailureItem, IgnoreReason, ProviderReport, ReportContext } from '../feedback/ingest/ingest-types.js';
import type { OriginalRefs } from '../feedback/reports/mime.js';
import { parseReply, SENDER_SIDE_CATEGORIES, type BounceCategory, type Classification, type ReplyClassifier } from '../feedback/classify/rules.js';
import { applyOnce } from './apply-once.js';
import { checkSnsUrl, parseSnsMessage, verifySnsMessage, type CertFetcher, type HttpGet, type SnsMessage } from './sns-signature.js';
import type { EspFeedbackDeps } from './mailgun.js';

export interface SesFeedbackDeps extends EspFeedbackDeps {
  fetchCert: CertFetcher;
  /** For SubscribeURL (autoConfirm). */
  httpGet: HttpGet;
}

/** Categories for SES bounce subtypes, used when the reply rules find nothing more specific than `other`. */
const SUBTYPE_CATEGORY: Record<string, BounceCategory> = {
  NoEmail: 'invalid-recipient',
  Suppressed: 'invalid-recipient',
  OnAccountSuppressionList: 'invalid-recipient',
  MailboxFull: 'mailbox-full',
  MessageTooLarge: 'protocol',
  ContentRejected: 'spam-block',
  AttachmentRejected: 'spam-block',
};

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown, max = 2000): string | undefined => (typeof v === 'string' && v.trim() ? v.trim().slice(0, max) : undefined);
const list = (v: unknown, max = 100): Json[] =>
  Array.isArray(v)
    ? v
        .slice(0, max)
        .map(obj)
        .filter((x): x is Json => !!x)
    : [];
/** `"Name" <a@b>` or `a@b` → `a@b`. */
const bareAddress = (v: unknown): string | undefined => {
  const s = str(v, 500);
  return s ? (/<([^<>\s]+@[^<>\s]+)>/.exec(s)?.[1] ?? s) : undefined;
};

/** Classifies one SES bounced recipient: the rules over its diagnostic, the SES subtype when they say `other`, the SES type for hard/soft. */
export function classifySesRecipient(
  classify: ReplyClassifier,
  bounceType: string,
  subType: string,
  r: { status?: string; diagnosticCode?: string },
): { classification: Classification; reply: string; status?: string } {
  const diag = r.diagnosticCode;
  const status = r.status && /^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status) ? r.status : undefined;
  const parsed = diag ? parseReply(diag) : null;
  const enhanced = status && !(status.endsWith('.0.0') && parsed?.enhanced) ? status : (parsed?.enhanced ?? null);
  const permanent = bounceType === 'Permanent';
  // SES always had a reply or a verdict: without a code, the bounce type stands in for one (never "no reply").
  const code = parsed?.code ?? (enhanced ? Number(enhanced[0]) * 100 + 50 : permanent ? 550 : 450);
  const reply = diag ?? (status ? `Status: ${status}` : `SES ${bounceType} bounce (${subType})`);
  let c = classify({ code, enhanced, text: reply });
  const fallback = c.category === 'other' ? (SUBTYPE_CATEGORY[subType] ?? (permanent && subType === 'General' ? 'invalid-recipient' : undefined)) : undefined;
  if (fallback) c = { category: fallback, type: c.type, senderSide: SENDER_SIDE_CATEGORIES.has(fallback), ruleId: `ses:${subType}` };
  return { classification: { ...c, type: permanent ? 'hard' : 'soft' }, reply, ...(status ? { status } : {}) };
}

/** The references to the original message in SES's `mail` object. */
function originalOf(mail: Json | undefined): OriginalRefs {
  const headers = list(mail?.headers, 200);
  const header = (name: string): string | undefined => str(headers.find((h) => typeof h.name === 'string' && h.name.toLowerCase() === name)?.value, 1000);
  const verp = [bareAddress(mail?.source), bareAddress(header('return-path'))].filter((a): a is string => !!a);
  const messageId = normalizeHeaderMessageId(str(obj(mail?.commonHeaders)?.messageId, 1000) ?? header('message-id'));
  const kurirId = header('x-kurir-id')?.toLowerCase();
  return { verpCandidates: [...new Set(verp)], to: [], ...(messageId ? { messageId } : {}), ...(kurirId ? { kurirId } : {}) };
}

/** Maps SES's notification JSON (the SNS Message) onto a ProviderReport, or says why it is not one. */
export function parseSesNotification(message: string, classify: ReplyClassifier): { report: ProviderReport } | { ignored: IgnoreReason; detail: string } {
  let n: Json | undefined;
  try {
    n = obj(JSON.parse(message));
  } catch {
    n = undefined;
  }
  if (!n) return { ignored: 'not-a-report', detail: 'SNS Message is not a JSON object' };
  const type = str(n.notificationType, 60) ?? str(n.eventType, 60);
  const original = originalOf(obj(n.mail));
  if (type === 'Bounce') {
    const bounce = obj(n.bounce);
    const bounceType = str(bounce?.bounceType, 40) ?? 'Undetermined';
    const subType = str(bounce?.bounceSubType, 60) ?? 'General';
    const remoteMta = str(bounce?.remoteMtaIp, 100);
    const failures: FailureItem[] = [];
    for (const r of list(bounce?.bouncedRecipients)) {
      const address = bareAddress(r.emailAddress);
      if (!address) continue;
      const c = classifySesRecipient(classify, bounceType, subType, { status: str(r.status, 20), diagnosticCode: str(r.diagnosticCode) });
      failures.push({ address, action: str(r.action, 20)?.toLowerCase() === 'delayed' ? 'delayed' : 'failed', ...c, ...(remoteMta ? { remoteMta } : {}) });
    }
    if (!failures.length) return { ignored: 'truncated', detail: 'SES bounce without bouncedRecipients' };
    return { report: { provider: 'ses', kind: 'bounce', original, failures } };
  }
  if (type === 'Complaint') {
    const complaint = obj(n.complaint);
    const feedbackType = str(complaint?.complaintFeedbackType, 40)?.toLowerCase() ?? 'abuse';
    if (feedbackType === 'not-spam') return { ignored: 'not-a-complaint', detail: 'SES complaint with complaintFeedbackType not-spam' };
    const recipients = list(complaint?.complainedRecipients)
      .map((r) => bareAddress(r.emailAddress))
      .filter((a): a is string => !!a);
    const userAgent = str(complaint?.userAgent, 200);
    return { report: { provider: 'ses', kind: 'complaint', original, recipients, feedbackType, ...(userAgent ? { userAgent } : {}) } };
  }
  return { ignored: 'no-failure', detail: `SES notification type ${type ?? '(none)'}` };
}

/** Verifies and applies SNS deliveries of SES notifications. */
export class SesFeedback {
  private readonly certHost: RegExp;
  private readonly topics: ReadonlySet<string>;
  private readonly log: Logger;

  constructor(private readonly deps: SesFeedbackDeps) {
    this.certHost = new RegExp(deps.config.feedback.ses.certHostPattern, 'i');
    this.topics = new Set(deps.config.feedback.ses.topicArns);
    this.log = deps.logger.child({ component: 'esp-ses' });
  }

  /** Off (404) unless a topic is configured. */
  get enabled(): boolean {
    return this.topics.size > 0;
  }

  /** Handles one SNS POST: `headerType` is `x-amz-sns-message-type`, `raw` the body text (JSON). */
  async handle(headerType: string | undefined, raw: string, ctx: ReportContext = {}): Promise<EspResult> {
    const { config } = this.deps;
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return this.reject('malformed', 'body is not JSON', ctx);
    }
    const parsed = parseSnsMessage(body);
    if ('error' in parsed) return this.reject('malformed', parsed.error, ctx);
    const m = parsed.message;
    if (headerType !== m.Type) return this.reject('malformed', `x-amz-sns-message-type ${String(headerType).slice(0, 40)} does not match Type ${m.Type}`, ctx);
    if (!/^[A-Za-z0-9-]{1,128}$/.test(m.MessageId)) return this.reject('malformed', 'MessageId: unexpected characters', ctx);
    if (!this.topics.has(m.TopicArn)) return this.reject('unknown-topic', `TopicArn ${m.TopicArn.slice(0, 200)} is not in feedback.ses.topicArns`, ctx);

    const now = this.deps.clock.now();
    const verdict = await verifySnsMessage(m, { fetchCert: this.deps.fetchCert, certHost: this.certHost, now });
    if (!verdict.ok) return this.reject(verdict.reason, verdict.detail, ctx);
    const at = Date.parse(m.Timestamp);
    const maxAgeMs = config.feedback.ses.maxAgeSeconds * 1000;
    if (!Number.isFinite(at) || now - at > maxAgeMs || at - now > 300_000)
      return this.reject('stale', `Timestamp ${m.Timestamp.slice(0, 40)} is outside the accepted window`, ctx);

    // At-least-once delivery: each MessageId is applied once (the marker outlives the accepted age), and is
    // marked as handled only once it was.
    const once = await applyOnce(
      { redis: this.deps.redis, key: this.deps.keys.espSeen('ses', m.MessageId), seenSeconds: Math.ceil(maxAgeMs / 1000) + 300, now, logger: this.log },
      () => (m.Type === 'Notification' ? this.notification(m, ctx) : this.subscription(m)),
    );
    if (once.state === 'applied') return once.result;
    if (once.state === 'in-progress') return this.reject('in-progress', `MessageId ${m.MessageId} is being handled by another request`, ctx);
    this.log.info({ snsMessageId: m.MessageId, type: m.Type }, 'SNS message already handled (redelivery)');
    return { result: 'duplicate' };
  }

  private async notification(m: SnsMessage, ctx: ReportContext): Promise<EspResult> {
    const parsed = parseSesNotification(m.Message, this.deps.classify);
    if ('ignored' in parsed) return { result: 'ignored', outcome: this.deps.ingest.ignore(ctx, parsed.ignored, parsed.detail) };
    const outcome = await this.deps.ingest.ingestParsed(parsed.report, ctx);
    return { result: outcome.result, outcome };
  }

  private async subscription(m: SnsMessage): Promise<EspResult> {
    const url = m.SubscribeURL as string;
    const fields = { type: m.Type, topic: m.TopicArn, subscribeUrl: url };
    if (m.Type === 'UnsubscribeConfirmation') {
      this.log.warn(fields, 'SNS: the topic subscription was removed; open SubscribeURL to subscribe again');
      return { result: 'logged', detail: 'unsubscribe confirmation logged' };
    }
    if (!this.deps.config.feedback.ses.autoConfirm) {
      this.log.warn(fields, 'SNS: subscription awaits confirmation: open SubscribeURL (or set feedback.ses.autoConfirm)');
      return { result: 'logged', detail: 'subscription confirmation logged for the admin' };
    }
    const problem = checkSnsUrl(url, this.certHost);
    if (problem) {
      this.log.warn({ ...fields, problem }, 'SNS: SubscribeURL not confirmed automatically; confirm it by hand if it is genuine');
      return { result: 'logged', detail: `SubscribeURL not confirmed: ${problem}` };
    }
    const res = await this.deps.httpGet(url).catch((err: unknown) => ({ status: 0, body: String((err as Error)?.message ?? err) }));
    if (res.status < 200 || res.status >= 300) {
      this.log.warn({ ...fields, status: res.status, answer: res.body.slice(0, 200) }, 'SNS: confirming the subscription failed; confirm it by hand');
      return { result: 'logged', detail: `confirmation GET answered ${res.status}` };
    }
    this.log.info({ type: m.Type, topic: m.TopicArn }, 'SNS: subscription confirmed');
    return { result: 'confirmed', detail: 'subscription confirmed' };
  }

  private reject(reason: EspRejectReason, detail: string, ctx: ReportContext): EspResult {
    this.deps.metrics.feedbackIgnored.inc({ reason });
    this.log.warn({ remote: ctx.remoteAddress, reason, detail }, 'SES notification refused');
    return { result: 'rejected', reason, detail };
  }
}
