/**
 * Mailgun event webhooks (`failed`, `complained`) at `POST /v1/feedback/mailgun`, for smarthost mode
 * through Mailgun. The JSON body is `{ signature: { timestamp, token, signature }, "event-data": {…} }`.
 *
 * Authenticity: `signature` is HMAC-SHA256(signing key, timestamp + token) in hex, compared in constant
 * time; the timestamp must lie within `feedback.mailgun.maxSkewSeconds` (5 minutes) of the injected
 * clock; a token is accepted once (remembered in Redis for twice that window, `Keys.espSeen`, from when
 * the event was applied: src/esp/apply-once.ts).
 *
 * Mapping: `failed` + severity `permanent` → a failure classified by the reply rules over
 * `delivery-status` (code, enhanced code, message/description), `suppress-bounce` (Mailgun's own list)
 * falling back to invalid-recipient; severity `temporary` → `delayed` on the timeline (Mailgun retries);
 * `complained` → a complaint. The message is found by the VERP in `envelope.sender`, else the
 * `message-id` header. Other events (delivered, opened, …) are acknowledged and ignored.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { normalizeHeaderMessageId } from '../lib/message-id.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Keys } from '../store/keys.js';
import type { FeedbackIngest } from '../feedback/ingest/ingest.js';
import type { EspRejectReason, EspResult, IgnoreReason, ProviderReport, ReportContext } from '../feedback/ingest/ingest-types.js';
import { extractEnhanced, SENDER_SIDE_CATEGORIES, type ReplyClassifier } from '../feedback/classify/rules.js';
import { applyOnce } from './apply-once.js';

/** What every ESP notification handler needs (SES and Mailgun extend it). */
export interface EspFeedbackDeps {
  config: Config;
  ingest: Pick<FeedbackIngest, 'ingestParsed' | 'ignore'>;
  classify: ReplyClassifier;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  redis: Redis;
  keys: Keys;
}

export type MailgunFeedbackDeps = EspFeedbackDeps;

export interface MailgunSignature {
  timestamp: string;
  token: string;
  signature: string;
}

/** The expected signature: hex HMAC-SHA256 of timestamp + token. */
export function mailgunSignature(signingKey: string, timestamp: string, token: string): string {
  return createHmac('sha256', signingKey)
    .update(timestamp + token)
    .digest('hex');
}

/** Checks signature and timestamp (not the token's freshness, which needs Redis). */
export function checkMailgunSignature(
  sig: MailgunSignature,
  opts: { signingKey: string; now: number; maxSkewSeconds: number },
): { ok: true } | { ok: false; reason: 'bad-signature' | 'stale'; detail: string } {
  const expected = Buffer.from(mailgunSignature(opts.signingKey, sig.timestamp, sig.token), 'hex');
  const given = /^[0-9a-f]{64}$/i.test(sig.signature) ? Buffer.from(sig.signature, 'hex') : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad-signature', detail: 'signature does not verify' };
  const at = /^\d{1,12}$/.test(sig.timestamp) ? Number(sig.timestamp) * 1000 : NaN;
  if (!Number.isFinite(at) || Math.abs(opts.now - at) > opts.maxSkewSeconds * 1000) {
    return { ok: false, reason: 'stale', detail: `timestamp ${sig.timestamp.slice(0, 20)} is more than ${opts.maxSkewSeconds} s from now` };
  }
  return { ok: true };
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown, max = 2000): string | undefined => (typeof v === 'string' && v.trim() ? v.trim().slice(0, max) : undefined);

/** Maps Mailgun's `event-data` onto a ProviderReport, or says why it is not one. */
export function parseMailgunEvent(data: Json, classify: ReplyClassifier): { report: ProviderReport } | { ignored: IgnoreReason; detail: string } {
  const event = str(data.event, 40)?.toLowerCase();
  const recipient = str(data.recipient, 500);
  const sender = str(obj(data.envelope)?.sender, 500);
  const messageId = normalizeHeaderMessageId(str(obj(obj(data.message)?.headers)?.['message-id'], 1000));
  const original = { verpCandidates: sender ? [sender] : [], to: [], ...(messageId ? { messageId } : {}) };
  if (event === 'complained') {
    if (!recipient) return { ignored: 'truncated', detail: 'Mailgun complaint without recipient' };
    return { report: { provider: 'mailgun', kind: 'complaint', original, recipients: [recipient], feedbackType: 'abuse', userAgent: 'Mailgun' } };
  }
  if (event !== 'failed') return { ignored: 'no-failure', detail: `Mailgun event ${event ?? '(none)'}` };
  if (!recipient) return { ignored: 'truncated', detail: 'Mailgun failure without recipient' };
  const reason = str(data.reason, 60)?.toLowerCase() ?? '';
  if (reason === 'suppress-complaint') {
    return {
      report: { provider: 'mailgun', kind: 'complaint', original, recipients: [recipient], feedbackType: 'abuse', userAgent: 'Mailgun suppression list' },
    };
  }
  const permanent = str(data.severity, 20)?.toLowerCase() === 'permanent';
  const ds = obj(data['delivery-status']) ?? {};
  const rawCode = typeof ds.code === 'number' ? ds.code : Number(str(ds.code, 10));
  const smtpCode = Number.isInteger(rawCode) && rawCode >= 200 && rawCode <= 599 ? rawCode : null;
  const reply =
    [smtpCode !== null ? String(smtpCode) : undefined, str(ds.message), str(ds.description)].filter(Boolean).join(' ') ||
    `Mailgun ${permanent ? 'permanent' : 'temporary'} failure (${reason || 'no reason'})`;
  const given = str(ds['enhanced-code'], 20);
  const enhanced = given && /^[245]\.\d{1,3}\.\d{1,3}$/.test(given) ? given : extractEnhanced(reply);
  // Mailgun's own codes (605 "previously bounced", …) are not SMTP replies: the severity stands in for one.
  const code = smtpCode ?? (enhanced ? Number(enhanced[0]) * 100 + 50 : permanent ? 550 : 450);
  let c = classify({ code, enhanced, text: reply });
  if (c.category === 'other' && reason === 'suppress-bounce')
    c = { category: 'invalid-recipient', type: 'hard', senderSide: SENDER_SIDE_CATEGORIES.has('invalid-recipient'), ruleId: 'mailgun:suppress-bounce' };
  const remoteMta = str(ds['mx-host'], 200);
  return {
    report: {
      provider: 'mailgun',
      kind: 'bounce',
      original,
      failures: [
        {
          address: recipient,
          action: permanent ? 'failed' : 'delayed',
          classification: c,
          reply,
          ...(enhanced ? { status: enhanced } : {}),
          ...(remoteMta ? { remoteMta } : {}),
        },
      ],
    },
  };
}

/** Verifies and applies Mailgun webhook calls. */
export class MailgunFeedback {
  private readonly log: Logger;

  constructor(private readonly deps: MailgunFeedbackDeps) {
    this.log = deps.logger.child({ component: 'esp-mailgun' });
  }

  /** Off (404) unless a signing key is configured. */
  get enabled(): boolean {
    return this.deps.config.feedback.mailgun.signingKey !== null;
  }

  /** Handles one webhook POST body (JSON text). */
  async handle(raw: string, ctx: ReportContext = {}): Promise<EspResult> {
    const { signingKey, maxSkewSeconds } = this.deps.config.feedback.mailgun;
    if (!signingKey) return this.reject('malformed', 'Mailgun webhooks are not configured', ctx);
    let body: Json | undefined;
    try {
      body = obj(JSON.parse(raw));
    } catch {
      body = undefined;
    }
    const sigObj = obj(body?.signature);
    const sig = { timestamp: str(sigObj?.timestamp, 20), token: str(sigObj?.token, 300), signature: str(sigObj?.signature, 200) };
    const data = obj(body?.['event-data']);
    if (!sig.timestamp || !sig.token || !sig.signature || !data)
      return this.reject('malformed', 'expected { signature: { timestamp, token, signature }, "event-data": {…} }', ctx);
    if (!/^[A-Za-z0-9_-]{10,256}$/.test(sig.token)) return this.reject('malformed', 'signature.token: unexpected characters or length', ctx);

    const now = this.deps.clock.now();
    const check = checkMailgunSignature(sig as MailgunSignature, { signingKey, now, maxSkewSeconds });
    if (!check.ok) return this.reject(check.reason, check.detail, ctx);
    // A token verifies once: remembered past the end of the window in which its timestamp is accepted, from
    // the moment the event was applied (a request that died while applying it does not use it up).
    const once = await applyOnce(
      { redis: this.deps.redis, key: this.deps.keys.espSeen('mailgun', sig.token), seenSeconds: Math.ceil(maxSkewSeconds * 2) + 60, now, logger: this.log },
      async (): Promise<EspResult> => {
        const parsed = parseMailgunEvent(data, this.deps.classify);
        if ('ignored' in parsed) return { result: 'ignored', outcome: this.deps.ingest.ignore(ctx, parsed.ignored, parsed.detail) };
        const outcome = await this.deps.ingest.ingestParsed(parsed.report, ctx);
        return { result: outcome.result, outcome };
      },
    );
    if (once.state === 'applied') return once.result;
    if (once.state === 'in-progress') return this.reject('in-progress', 'signature token is being used by another request', ctx);
    return this.reject('replayed', 'signature token already used', ctx);
  }

  private reject(reason: EspRejectReason, detail: string, ctx: ReportContext): EspResult {
    this.deps.metrics.feedbackIgnored.inc({ reason });
    this.log.warn({ remote: ctx.remoteAddress, reason, detail }, 'Mailgun webhook refused');
    return { result: 'rejected', reason, detail };
  }
}
