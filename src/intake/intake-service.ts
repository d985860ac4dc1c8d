/*
 * The whole intake policy shared by SMTP and HTTP (scope, validation, suppression, limits, idempotency) reads top
 * to bottom here, and its last step, signing, scoring, the durable write and the take-back on failure, in
 * sign-and-store.ts: the two files are what a reviewer of "a 202/250 means durable" needs to see.
 */
import type { Config } from '../config/schema.js';
import type { DkimSigner } from '../dkim/signer.js';
import { domainOf, normalizeAddress } from '../lib/address.js';
import type { Clock } from '../lib/clock.js';
import { KurirError, toKurirError } from '../lib/errors.js';
import { newMessageId } from '../lib/ids.js';
import type { Metrics } from '../metrics/metrics.js';
import type { DeliveryQueue } from '../queue/delivery-queue.js';
import type { IdempotencyStore } from '../store/idempotency-store.js';
import type { PreSendScorer } from '../scoring/pre-send-scorer.js';
import type { MessageStore } from '../store/message-store.js';
import type { IntakeLimiter } from '../shaping/intake-limiter.js';
import type { SuppressionStore } from '../store/suppression-store.js';
import { mayUseDomain, mayUsePriority, type Credential } from './credentials.js';
import { feedbackIdFor, setFeedbackId } from './feedback-id.js';
import { prepareMessage } from './headers.js';
import { referenceOf } from './reference.js';
import { resendHint, type ResendHint } from './resend-hint.js';
import { signAndStore } from './sign-and-store.js';
import { SUPPRESSION_CHECK_FRESH_MS, ttlSeconds, type Accepted, type Submission } from './submission.js';

export interface IntakeDeps {
  config: Config;
  clock: Clock;
  signer: DkimSigner;
  messages: MessageStore;
  suppressions: SuppressionStore;
  idempotency: IdempotencyStore;
  queue: DeliveryQueue;
  metrics: Metrics;
  /** Cluster-wide intake limits (per credential, per recipient, daily caps); none when absent. */
  limits?: IntakeLimiter;
  /** With redis.durability fsync: refuses (UNAVAILABLE) while Redis does not fsync every write. */
  durability?: { assertOk(): void };
  /** Runtime-managed sender domains (src/domains/domain-directory.ts), next to the configured ones. */
  domains?: { status(domain: string): { state: string; signing: boolean; reason?: string } | undefined };
  /** Pre-send scoring with rspamd (scoring.rspamd); none when it is off. */
  scorer?: PreSendScorer;
}

/**
 * How refusals name the sender addresses, in the client's terms: over SMTP the From header and the MAIL FROM
 * command; over HTTP the `from` field (JSON) or the `from` query / X-Kurir-From envelope of a raw message.
 */
const LABELS = {
  smtp: { from: 'From header', mailFrom: 'MAIL FROM' },
  http: { from: 'from', mailFrom: 'from (envelope sender)' },
} as const;

/**
 * The intake policy shared by SMTP and HTTP: scope, validation, suppression, idempotency, DKIM signing,
 * then a durable write and the queue. `accept` resolves only once the message is in Redis and queued.
 */
export class IntakeService {
  private readonly configuredDomains: Set<string>;
  private readonly counted = new WeakSet<KurirError>();

  constructor(private readonly deps: IntakeDeps) {
    this.configuredDomains = new Set(deps.config.domains.map((d) => d.name.toLowerCase()));
  }

  /**
   * Counts a refused submission once, whichever layer refused it (transport auth and parsing, or this
   * policy), so `kurir_intake_messages_refused_total` sees every refusal a client got.
   */
  countRefusal(iface: 'smtp' | 'http', err: KurirError): void {
    if (this.counted.has(err)) return;
    this.counted.add(err);
    this.deps.metrics.intakeRefused.inc({ interface: iface, reason: err.code });
  }

  /**
   * Whether `domain` is a configured sender domain this credential may use. Throws SENDER_NOT_ALLOWED if not;
   * the reply text names `label`, what the client calls the address ("MAIL FROM", "From header", `from`).
   */
  checkSenderDomain(cred: Credential, address: string, field: string, label = field): void {
    const domain = domainOf(address);
    const runtime = this.configuredDomains.has(domain) ? undefined : this.deps.domains?.status(domain);
    if ((!this.configuredDomains.has(domain) && !runtime) || !mayUseDomain(cred, domain)) {
      throw new KurirError('SENDER_NOT_ALLOWED', `${label}: sender domain ${domain} is not allowed for ${cred.name}`, { field });
    }
    if (runtime && !runtime.signing) {
      throw new KurirError('NO_DKIM_KEY', `${label}: sender domain ${domain} cannot be used yet (${runtime.state}): ${runtime.reason ?? 'no signing key'}`, {
        field,
      });
    }
  }

  /**
   * Refuses recipients on the suppression list (422 / 550 5.1.1), naming the first one's address and reason, and as the
   * error's field where it came from (`fields`, Submission.recipientFields; `to` without).
   */
  async checkSuppressed(recipients: string[], fields?: ReadonlyMap<string, string>): Promise<void> {
    const hits = await this.deps.suppressions.check(recipients).catch((err: unknown) => {
      throw toKurirError(err);
    });
    if (hits.length) {
      const first = hits[0];
      throw new KurirError('SUPPRESSED', `${first.address} is suppressed (${first.reason})`, {
        field: fields?.get(first.address.toLowerCase()) ?? 'to',
        details: { suppressed: hits.map((h) => ({ address: h.address, reason: h.reason, since: new Date(h.at).toISOString() })) },
      });
    }
  }

  /**
   * For SMTP RCPT TO: {@link checkSuppressed} and the per-recipient budget (RECIPIENT_RATE_LIMITED, 450 4.2.1)
   * read at once (one wait for Redis instead of two); a suppression is reported before a used-up budget, and only
   * a refusal that is answered is counted. Consumes nothing.
   *
   * @returns when the check began (clock ms), for {@link Submission.suppressionCheckedAt}
   */
  async checkRecipients(recipients: string[]): Promise<number> {
    const startedAt = this.deps.clock.now();
    const [suppressed, limited] = await Promise.allSettled([
      this.checkSuppressed(recipients),
      this.deps.limits?.peekRecipients(recipients) ?? Promise.resolve(null),
    ]);
    if (suppressed.status === 'rejected') throw suppressed.reason;
    if (limited.status === 'rejected') throw limited.reason;
    // Thrown (and counted in kurir_shaping_refusals_total) only when no suppression answered first.
    limited.value?.();
    return startedAt;
  }

  /** Whether a new message to `address` would pass its suppression and per-recipient limit now; consumes nothing. */
  resendHint(address: string): Promise<ResendHint> {
    return resendHint({ suppressions: this.deps.suppressions, limits: this.deps.limits, clock: this.deps.clock }, address);
  }

  /** Refuses (RATE_LIMITED, 451 4.7.1) a credential whose message budget is used up; consumes nothing. */
  async checkCredentialLimits(cred: Credential): Promise<void> {
    await this.deps.limits?.checkCredential(cred);
  }

  /** Validates, signs, stores and queues a submission. Throws KurirError for every refusal. */
  async accept(sub: Submission): Promise<Accepted> {
    const started = performance.now();
    const { clock, metrics } = this.deps;
    try {
      const result = await this.acceptInner(sub, clock.now());
      // An Idempotency-Key replay answers the first acceptance again: it was counted then.
      if (!result.duplicate) {
        metrics.intakeAccepted.inc({ interface: sub.iface, priority: sub.priority ?? 'normal' });
        metrics.intakeBytes.inc({ interface: sub.iface }, sub.raw.length);
      }
      metrics.intakeDuration.observe({ interface: sub.iface }, (performance.now() - started) / 1000);
      return result;
    } catch (err) {
      const kerr = toKurirError(err);
      this.countRefusal(sub.iface, kerr);
      throw kerr;
    }
  }

  private async acceptInner(sub: Submission, now: number): Promise<Accepted> {
    const { config, signer, idempotency } = this.deps;
    this.deps.durability?.assertOk();
    if (!sub.recipients.length) throw new KurirError('VALIDATION', 'to: at least one recipient is required', { field: 'to' });
    const recipients = [...new Set(sub.recipients.map((r, i) => normalizeAddress(r, `to[${i}]`)))];
    if (recipients.length > config.smtp.maxRecipients) {
      throw new KurirError('TOO_MANY_RECIPIENTS', `to: at most ${config.smtp.maxRecipients} recipients per message`, { field: 'to' });
    }
    // A replay of a request that was stored returns its first answer before any policy that may have
    // changed since (suppression, limits) is applied again.
    const replay = await this.replay(sub);
    if (replay) return replay;
    let prepared = prepareMessage(sub.raw, { hostname: config.hostname, now });
    const ref = referenceOf(config.intake.referenceKey, sub.metadata, prepared.control);
    const label = LABELS[sub.iface];
    const from = normalizeAddress(prepared.fromAddresses[0], label.from);
    this.checkSenderDomain(sub.credential, from, 'from', label.from);
    const mailFrom = sub.mailFrom ? normalizeAddress(sub.mailFrom, label.mailFrom) : from;
    this.checkSenderDomain(sub.credential, mailFrom, 'from', label.mailFrom);
    const fromDomain = domainOf(from);
    if (!signer.hasKey(fromDomain)) {
      throw new KurirError('NO_DKIM_KEY', `${label.from}: sender domain ${fromDomain} has no DKIM key configured`, { field: 'from' });
    }
    const checkedJustNow = sub.suppressionCheckedAt !== undefined && now - sub.suppressionCheckedAt <= SUPPRESSION_CHECK_FRESH_MS;
    if (sub.overrideSuppression && !sub.credential.admin) {
      throw new KurirError('FORBIDDEN', 'only admin keys may override the suppression list', { field: 'X-Kurir-Override-Suppression' });
    }
    if (!sub.overrideSuppression && !checkedJustNow) await this.checkSuppressed(recipients, sub.recipientFields);

    const priority = sub.priority ?? 'normal';
    if (!mayUsePriority(sub.credential, priority)) {
      throw new KurirError('FORBIDDEN', `priority: ${sub.credential.name} may not submit at priority ${priority}`, { field: 'priority' });
    }
    // Before signing, so the DKIM signature covers it (Feedback-ID is in SIGNED_HEADERS).
    const feedbackId = feedbackIdFor(config.domains, fromDomain, priority);
    if (feedbackId) prepared = { ...prepared, raw: setFeedbackId(prepared.raw, feedbackId) };
    const ttl = ttlSeconds(sub.ttlSeconds ?? config.delivery.ttl[priority], 'ttl', config.delivery.maxTtlSeconds);

    let id = newMessageId(now);
    let claimed = false;
    if (sub.idempotency) {
      const existing = await idempotency.claim(sub.credential.name, sub.idempotency.key, { hash: sub.idempotency.requestHash, id, at: now });
      claimed = !existing;
      if (existing) {
        if (existing.hash !== sub.idempotency.requestHash) {
          throw new KurirError('IDEMPOTENCY_CONFLICT', 'Idempotency-Key was used with a different request in the last 24 h', { field: 'Idempotency-Key' });
        }
        // Same request again: reuse its id. If the first attempt stored it, creation below is a no-op.
        id = existing.id;
        const stored = await this.replay(sub);
        if (stored) return stored;
      }
    }
    // Frees this request's key when it is certain nothing was stored, so a corrected retry is not a 409.
    const release = async (): Promise<void> => {
      if (claimed && sub.idempotency) await idempotency.release(sub.credential.name, sub.idempotency.key, id).catch(() => undefined);
    };
    // Limits last among the refusals, so only a message that is then stored and queued keeps its points.
    const reservation = this.deps.limits
      ? await this.deps.limits.reserve({ credential: sub.credential, recipients, priority, fromDomain }).catch(async (err: unknown) => {
          await release();
          throw err;
        })
      : null;
    try {
      const result = await signAndStore(this.deps, sub, { id, now, recipients, priority, ttl, mailFrom, fromDomain, prepared, release, ...ref });
      if (result.duplicate) await reservation?.refund();
      return result;
    } catch (err) {
      await reservation?.refund();
      throw err;
    }
  }

  /**
   * The first answer to an Idempotency-Key request that was stored, or null. The jobs are enqueued again
   * (a no-op when they exist; a job of a finished message does nothing) in case the first attempt stored
   * the message but failed before or while queueing it.
   */
  private async replay(sub: Submission): Promise<Accepted | null> {
    if (!sub.idempotency) return null;
    const claim = await this.deps.idempotency.get(sub.credential.name, sub.idempotency.key);
    if (!claim || claim.hash !== sub.idempotency.requestHash) return null;
    const record = await this.deps.messages.getRecord(claim.id);
    if (!record) return null;
    await this.deps.queue.enqueue(record.id, record.priority, [...new Set(record.recipients.map(domainOf))]);
    return { id: record.id, duplicate: true };
  }
}
