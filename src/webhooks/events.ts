/**
 * What a webhook says and how it is signed, and the producer that turns committed timeline events into
 * webhook jobs (the EventSink of the MessageStore, so delivery and bounce/complaint ingest share it).
 *
 * Signature: `Kurir-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 * The receiver recomputes it over the raw body, compares in constant time and rejects old timestamps
 * (docs/webhooks.md).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../config/credentials-schema.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { WebhookQueue } from '../queue/webhook-queue.js';
import type { AppendedEvent, EventSink } from '../store/message-store-types.js';
import { isDuplicate, isSuperseded, type MessageRecord, type TimelineEvent } from '../store/types.js';
import type { WebhookStore } from '../store/webhook-store.js';

export const SIGNATURE_HEADER = 'Kurir-Signature';
export const EVENT_ID_HEADER = 'Kurir-Event-Id';
/** Receivers should reject signatures older than this. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** One API key's webhook from config. */
export interface WebhookTarget {
  owner: string;
  url: string;
  secret: string;
  events: ReadonlySet<WebhookEventType>;
}

/** The JSON body of a webhook. */
export interface WebhookPayload {
  /** `<messageId>.<event index>`: the same for every retry of one event, so receivers can de-duplicate. */
  id: string;
  type: WebhookEventType;
  /** Kurir's message id (the one POST /v1/messages answered). */
  messageId: string;
  /** Set when the event concerns exactly one recipient. */
  recipient?: string;
  recipients: string[];
  at: string;
  reply?: string;
  category?: string;
  /** The message's RFC 5322 Message-ID header. */
  headerMessageId: string;
  tags: string[];
  metadata: Record<string, string>;
  /** Further event fields (host, nextAttemptAt, feedbackType, …), times in ISO 8601. */
  [extra: string]: unknown;
}

const WEBHOOK_TYPES: ReadonlySet<string> = new Set(WEBHOOK_EVENT_TYPES);

/** Whether `type` names an event a webhook endpoint can subscribe to. */
export function isWebhookEventType(type: string): type is WebhookEventType {
  return WEBHOOK_TYPES.has(type);
}

/** Webhooks of the configured API keys, by key name (the `owner` of the messages sent with it). */
export function webhookTargets(config: Pick<Config, 'apiKeys'>): Map<string, WebhookTarget> {
  const out = new Map<string, WebhookTarget>();
  for (const k of config.apiKeys) {
    if (!k.webhook || out.has(k.name)) continue;
    out.set(k.name, { owner: k.name, url: k.webhook.url, secret: k.webhook.secret, events: new Set(k.webhook.events ?? WEBHOOK_EVENT_TYPES) });
  }
  return out;
}

/** The webhook of a message owner, or undefined: config keys first, then runtime keys. */
export type WebhookTargetOf = (owner: string) => WebhookTarget | undefined;

/**
 * Resolves owners to webhooks: the configured keys', then (when given) those of runtime API keys
 * (`/v1/credentials`), looked up on every call so a change applies to the next event.
 */
export function webhookTargetResolver(
  config: Pick<Config, 'apiKeys'>,
  runtime?: (owner: string) => { url: string; secret: string; events: string[] | null } | undefined,
): WebhookTargetOf {
  const configured = webhookTargets(config);
  return (owner) => {
    const fromConfig = configured.get(owner);
    if (fromConfig || !runtime) return fromConfig;
    const w = runtime(owner);
    if (!w) return undefined;
    const events = (w.events ?? WEBHOOK_EVENT_TYPES).filter(isWebhookEventType) as WebhookEventType[];
    return { owner, url: w.url, secret: w.secret, events: new Set(events) };
  };
}

/** The event id a webhook carries (also the Kurir-Event-Id header). */
export function webhookEventId(messageId: string, eventIndex: number): string {
  return `${messageId}.${eventIndex}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Builds the payload of one timeline event. */
export function buildPayload(record: MessageRecord, event: TimelineEvent, eventIndex: number): WebhookPayload {
  const e = event as TimelineEvent & Record<string, unknown>;
  const recipients = Array.isArray(e.recipients) ? (e.recipients as string[]) : [];
  const payload: WebhookPayload = {
    id: webhookEventId(record.id, eventIndex),
    type: event.type as WebhookEventType,
    messageId: record.id,
    ...(recipients.length === 1 ? { recipient: recipients[0] } : {}),
    recipients,
    at: iso(event.at),
    headerMessageId: record.messageId,
    tags: record.tags ?? [],
    metadata: record.metadata ?? {},
  };
  // Whatever else the event carries (reply, category, host, nextAttemptAt, …), times as ISO 8601.
  for (const [k, v] of Object.entries(e)) {
    if (k in payload || k === 'type' || k === 'at' || v === undefined) continue;
    payload[k] = typeof v === 'number' && k.endsWith('At') ? iso(v) : v;
  }
  return payload;
}

/** The Kurir-Signature header value for a body sent at `unixSeconds`. */
export function signatureHeader(secret: string, unixSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/**
 * Verifies a Kurir-Signature header (what the snippet in docs/webhooks.md does): a v1 MAC over `<t>.<raw body>` that
 * matches in constant time, with t no older than `toleranceSeconds`.
 */
export function verifySignature(secret: string, header: string, rawBody: string, nowSeconds: number, toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS): boolean {
  const parts = new Map(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds || !/^[0-9a-f]{64}$/.test(v1)) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}

export interface WebhookProducerDeps {
  config: Config;
  queue: WebhookQueue;
  store: WebhookStore;
  metrics: Metrics;
  logger: Logger;
  /** Who has a webhook (default: the configured keys only). */
  targetOf?: WebhookTargetOf;
}

/**
 * Whether `event` goes to `target`'s webhook (any webhook's, without a target). A superseded outcome (a run that
 * had lost its lease) changed no state, and a duplicate delivery was told already: telling the booking system would
 * mislead it.
 */
function sentTo(target: WebhookTarget | undefined, event: TimelineEvent): boolean {
  return isWebhookEventType(event.type) && !isSuperseded(event) && !isDuplicate(event) && (!target || target.events.has(event.type));
}

/**
 * The MessageStore's EventSink: queues one webhook job per event the owner's webhook wants (also while it is
 * paused: the worker holds them). A queueing failure is logged and counted as failed and rejects: the timeline write
 * already succeeded, and the events wait in the webhook outbox for the relay (src/webhooks/outbox-relay.ts).
 */
export class WebhookProducer implements EventSink {
  private readonly targetOf: WebhookTargetOf;

  constructor(private readonly deps: WebhookProducerDeps) {
    this.targetOf = deps.targetOf ?? webhookTargetResolver(deps.config);
  }

  /**
   * Whether the record's owner has a webhook that takes one of `events` (not superseded, not a duplicate delivery).
   * Without the record: whether any webhook could take one.
   */
  wants(record: MessageRecord | undefined, events: readonly TimelineEvent[]): boolean {
    const target = record ? this.targetOf(record.owner) : undefined;
    if (record && !target) return false;
    return events.some((e) => sentTo(target, e));
  }

  /** {@link handOn} without the count: rejects when queueing failed (the events stay in the outbox, as the class says). */
  async onEvents(record: MessageRecord, events: AppendedEvent[]): Promise<void> {
    await this.handOn(record, events);
  }

  /** Queues the webhooks of `events`; answers how many were queued (0 when none is wanted). */
  async handOn(record: MessageRecord, events: readonly AppendedEvent[]): Promise<number> {
    const target = this.targetOf(record.owner);
    if (!target) return 0;
    const wanted = events.filter((a) => sentTo(target, a.event));
    if (!wanted.length) return 0;
    const { queue, metrics, logger } = this.deps;
    try {
      // Queued even while the key's webhook is paused: the worker holds them until it resumes.
      await queue.enqueue(
        record.id,
        target.owner,
        wanted.map((w) => w.index),
      );
      return wanted.length;
    } catch (err) {
      metrics.webhooks.inc({ result: 'failed' }, wanted.length);
      logger.error(
        { err, id: record.id, owner: target.owner, events: wanted.map((w) => w.event.type) },
        'webhook could not be queued; the outbox relay retries',
      );
      throw err;
    }
  }
}
