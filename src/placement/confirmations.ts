/**
 * Verification confirmations: the booking system reports that the applicant completed verification
 * (`POST /v1/messages/:id/confirm`, or by the `confirmToken` returned at submission). Counted per provider
 * and sender domain against the verification messages delivered there, so a provider whose mail goes to
 * spam shows up as a falling confirmation rate while the others stay normal.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import type { Credential } from '../intake/credentials.js';
import { hmacSha256 } from '../lib/hmac.js';
import type { Clock } from '../lib/clock.js';
import { KurirError, toKurirError } from '../lib/errors.js';
import { MESSAGE_ID_PATTERN } from '../lib/ids.js';
import type { Metrics } from '../metrics/metrics.js';
import { deliveryProvider, type ProviderMap } from '../metrics/provider.js';
import type { IncidentRecorder } from '../store/incident-store.js';
import type { Keys } from '../store/keys.js';
import type { ConfirmationStore, ConfirmedEvent } from '../store/confirmation-store.js';
import type { AppendedEvent, EventSink } from '../store/message-store-types.js';
import type { MessageRecord } from '../store/types.js';
import { PROBE_TAG } from './probe-message.js';

/** The HMAC key of confirm tokens: shared by every gateway through Redis, created by the first. */
export async function confirmSecret(redis: Redis, keys: Keys): Promise<string> {
  await redis.set(keys.confirmSecret(), randomBytes(32).toString('hex'), 'NX');
  return (await redis.get(keys.confirmSecret())) as string;
}

/**
 * Counts delivered verification recipients (probes excluded): the denominator of the confirmation rate, in
 * the metrics and in the incident window.
 */
export class VerificationDeliveries implements EventSink {
  constructor(private readonly deps: { metrics: Metrics; providers: ProviderMap; smarthost: boolean; incidents?: IncidentRecorder }) {}

  /**
   * Counts each recipient of a first `delivered` event of a verification message (not a probe), by provider and sender domain,
   * and records it in the incident window; a failure to record it there is ignored (the metric is counted).
   */
  async onEvents(record: MessageRecord, events: AppendedEvent[]): Promise<void> {
    if (record.priority !== 'verification' || record.tags?.includes(PROBE_TAG)) return;
    for (const { event } of events) {
      // A duplicate delivery was counted with the first.
      if (event.type !== 'delivered' || event.duplicate) continue;
      for (const r of event.recipients) {
        const provider = deliveryProvider(this.deps.providers, r, event.host, this.deps.smarthost);
        this.deps.metrics.verificationsDelivered.inc({ provider, domain: record.fromDomain });
        await this.deps.incidents?.recordVerification(provider, event.at, 'delivered').catch(() => undefined);
      }
    }
  }
}

/** Calls several sinks together; a failing one does not stop the others, and the first failure is passed on. */
export function combineSinks(...sinks: Array<EventSink | undefined>): EventSink | undefined {
  const list = sinks.filter((s): s is EventSink => s !== undefined);
  if (list.length <= 1) return list[0];
  return {
    onEvents: async (record, events) => {
      const results = await Promise.allSettled(list.map((s) => s.onEvents(record, events)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    wants: (record, events) => list.some((s) => s.wants?.(record, events) ?? false),
  };
}

export interface ConfirmationDeps {
  config: Config;
  store: ConfirmationStore;
  metrics: Metrics;
  providers: ProviderMap;
  clock: Clock;
  secret: string;
}

/** How the booking system named the message: by its id, or by its confirmToken. */
export type ConfirmVia = 'id' | 'token';

export interface Confirmed {
  id: string;
  confirmedAt: number;
  /** True when the message had been confirmed before (nothing was counted again). */
  duplicate: boolean;
  /**
   * Whether the confirmation counts in the confirmation rate: only for a delivered `verification` message that is
   * not a placement probe (the rate's denominator, {@link VerificationDeliveries}). Others are recorded, not counted.
   */
  counted: boolean;
}

/** Whether a confirmation of `record` belongs in the confirmation rate: delivered, `verification`, not a probe. */
export function countsAsConfirmation(record: MessageRecord, delivered: boolean): boolean {
  return delivered && record.priority === 'verification' && !record.tags?.includes(PROBE_TAG);
}

const TOKEN_MAC_CHARS = 22;

/**
 * Issues and checks confirmTokens and records verification confirmations (one or a batch), counting in the confirmation rate
 * only those of delivered, non-probe verification messages.
 */
export class Confirmations {
  constructor(private readonly deps: ConfirmationDeps) {}

  /** The confirmToken of a message: its id and a MAC, so a booking system may keep only this. */
  token(id: string): string {
    return `${id}.${this.mac(id)}`;
  }

  /** The message id of a valid token, or null. */
  idFromToken(token: string): string | null {
    const [id, mac, extra] = token.split('.');
    if (extra !== undefined || !id || !mac || !MESSAGE_ID_PATTERN.test(id)) return null;
    const want = Buffer.from(this.mac(id));
    const got = Buffer.from(mac);
    return got.length === want.length && timingSafeEqual(got, want) ? id : null;
  }

  private mac(id: string): string {
    return hmacSha256(this.deps.secret, `confirm:${id}`, 'base64url').slice(0, TOKEN_MAC_CHARS);
  }

  /**
   * Records that the applicant completed verification. Idempotent (a repeat answers the first time); counted in
   * the confirmation rate only for a delivered, non-probe `verification` message (`counted` says which);
   * 404 for an unknown message or another key's; 410 CONFIRM_TOO_LATE once the message's TTL plus
   * `placement.confirm.marginSeconds` has passed.
   */
  async confirm(id: string, credential: Credential, via: ConfirmVia): Promise<Confirmed> {
    const [answer] = await this.confirmAll([{ id, via }], credential);
    if (answer instanceof KurirError) throw answer;
    return answer;
  }

  /**
   * {@link confirm} for many messages at once (POST /v1/confirmations): each item answered on its own, in the
   * order given — a Confirmed, or the NOT_FOUND / CONFIRM_TOO_LATE error it would have thrown — with one
   * script reading and one script writing for the whole batch (per Redis holding its messages).
   * @throws KurirError UNAVAILABLE when Redis does not answer: the whole batch fails, nothing is half-reported.
   */
  async confirmAll(items: ReadonlyArray<{ id: string; via: ConfirmVia }>, credential: Credential): Promise<Array<Confirmed | KurirError>> {
    const { store, clock, config } = this.deps;
    const answers: Array<Confirmed | KurirError> = new Array(items.length);
    // Made only when needed: an Error captures a stack trace, a cost every confirmation would pay.
    const notFound = (i: number) => new KurirError('NOT_FOUND', `message ${items[i].id} not found`, { field: items[i].via === 'id' ? 'id' : 'token' });
    const wellFormed: number[] = [];
    items.forEach((it, i) => {
      if (MESSAGE_ID_PATTERN.test(it.id)) wellFormed.push(i);
      else answers[i] = notFound(i);
    });
    try {
      const facts = await store.factsOf(wellFormed.map((i) => items[i].id));
      const now = clock.now();
      // Kept as long as the message itself, so a repeat is recognised for as long as it can be asked about.
      const toRecord: Array<{ i: number; id: string; event: ConfirmedEvent; ttlSeconds: number; fromDomain: string; secondsAfterDelivery?: number }> = [];
      for (const [n, i] of wellFormed.entries()) {
        const f = facts[n];
        const { id, via } = items[i];
        if (!f || (!credential.admin && f.record.owner !== credential.name)) {
          answers[i] = notFound(i);
          continue;
        }
        const { record, delivered } = f;
        const counted = countsAsConfirmation(record, delivered !== undefined);
        if (f.confirmedAt !== null) {
          answers[i] = { id, confirmedAt: f.confirmedAt, duplicate: true, counted };
          continue;
        }
        const lastAccepted = record.expiresAt + config.placement.confirm.marginSeconds * 1000;
        if (now > lastAccepted) {
          const ended = new Date(record.expiresAt).toISOString();
          const message = `message ${id} can no longer be confirmed: its lifetime ended at ${ended} (+${config.placement.confirm.marginSeconds} s)`;
          answers[i] = new KurirError('CONFIRM_TOO_LATE', message, { field: via === 'id' ? 'id' : 'token' });
          continue;
        }
        const recipient = delivered?.recipients[0] ?? record.recipients[0];
        const provider = deliveryProvider(this.deps.providers, recipient, delivered?.host, config.delivery.smarthost !== null);
        const secondsAfterDelivery = delivered ? Math.max(0, (now - delivered.at) / 1000) : undefined;
        const event: ConfirmedEvent = {
          type: 'confirmed',
          at: now,
          recipients: [recipient],
          provider,
          via,
          ...(secondsAfterDelivery !== undefined ? { secondsAfterDelivery } : {}),
          ...(counted ? {} : { counted: false as const }),
        };
        const ttlSeconds = Math.max(60, Math.ceil((record.expiresAt - now) / 1000) + config.retention.days * 86400);
        toRecord.push({ i, id, event, ttlSeconds, fromDomain: record.fromDomain, ...(secondsAfterDelivery !== undefined ? { secondsAfterDelivery } : {}) });
      }
      // Script calls per 100 items: per item the confirmed key (NX) and the timeline event; the incident window and
      // these metrics count each call's first confirmations once it has stored them, so a failing call leaves the
      // others counted. The `confirmed` event is no webhook event type, so there is no EventSink to tell
      // (MessageStore.update would).
      const recorded = toRecord.length
        ? await store.recordAll(toRecord, (n) => {
            const r = toRecord[n];
            if (r.event.counted === false) return;
            this.deps.metrics.confirmations.inc({ provider: r.event.provider, domain: r.fromDomain });
            if (r.secondsAfterDelivery !== undefined) this.deps.metrics.timeToConfirm.observe({ provider: r.event.provider }, r.secondsAfterDelivery);
          })
        : [];
      for (const [n, r] of toRecord.entries()) {
        const outcome = recorded[n];
        const counted = r.event.counted !== false;
        answers[r.i] = outcome.first
          ? { id: r.id, confirmedAt: now, duplicate: false, counted }
          : { id: r.id, confirmedAt: outcome.confirmedAt, duplicate: true, counted };
      }
      return answers;
    } catch (err) {
      throw toKurirError(err);
    }
  }
}
