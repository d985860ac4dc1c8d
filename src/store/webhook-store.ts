import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** The state of one API key's webhook, as Redis holds it. */
export interface WebhookState {
  /** Failed attempts since the last success (any event of this key). */
  consecutiveFailures: number;
  disabled: boolean;
  disabledAt?: number;
  disabledReason?: string;
}

/** One HTTP attempt to deliver a webhook, kept for `GET /v1/webhooks/deliveries`. */
export interface WebhookAttempt {
  eventId: string;
  type: string;
  messageId: string;
  /** 1-based attempt of this event. */
  attempt: number;
  at: number;
  result: 'sent' | 'failed';
  statusCode?: number;
  error?: string;
  durationMs: number;
}

// Disables once: the first caller that crosses the threshold records when and why; later ones see 0.
const DISABLE_SCRIPT = `
if redis.call('HEXISTS', KEYS[1], 'disabledAt') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'disabledAt', ARGV[1], 'disabledReason', ARGV[2])
return 1`;

/** How long the attempt log of a key lives after its last attempt. */
const LOG_TTL_SECONDS = 30 * 86400;

/** Webhook delivery state per API key: failure streak, auto-disable flag and a capped attempt log. */
export class WebhookStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly historySize: number,
  ) {}

  /** The key's failure streak and disable flag; a key never attempted answers 0 failures, not disabled. */
  async state(owner: string): Promise<WebhookState> {
    const h = await this.redis.hgetall(this.keys.webhookState(owner));
    return {
      consecutiveFailures: Number(h.failures ?? 0),
      disabled: h.disabledAt !== undefined,
      disabledAt: h.disabledAt !== undefined ? Number(h.disabledAt) : undefined,
      disabledReason: h.disabledReason,
    };
  }

  /** Whether the key's webhook was disabled (one HEXISTS, cheaper than {@link state}). */
  async isDisabled(owner: string): Promise<boolean> {
    return (await this.redis.hexists(this.keys.webhookState(owner), 'disabledAt')) === 1;
  }

  /** Records one attempt in the capped log; on success resets the failure streak. Returns the streak. */
  async recordAttempt(owner: string, attempt: WebhookAttempt): Promise<number> {
    const log = this.keys.webhookDeliveries(owner);
    const state = this.keys.webhookState(owner);
    const tx = this.redis
      .multi()
      .lpush(log, JSON.stringify(attempt))
      .ltrim(log, 0, this.historySize - 1)
      .expire(log, LOG_TTL_SECONDS);
    if (attempt.result === 'sent') tx.hset(state, 'failures', 0);
    else tx.hincrby(state, 'failures', 1);
    const res = await tx.exec();
    return Number(res?.[3]?.[1] ?? 0);
  }

  /** Takes the probe of a paused webhook for `ms`: true for one caller per interval. */
  async takeProbe(owner: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.keys.webhookProbe(owner), '1', 'PX', Math.max(1, Math.ceil(ms)), 'NX')) === 'OK';
  }

  /** Disables a key's webhook; true only for the call that actually disabled it. */
  async disable(owner: string, at: number, reason: string): Promise<boolean> {
    return (await this.redis.eval(DISABLE_SCRIPT, 1, this.keys.webhookState(owner), String(at), reason)) === 1;
  }

  /** Re-enables a key's webhook and clears its failure streak; true when it was disabled. */
  async enable(owner: string): Promise<boolean> {
    const key = this.keys.webhookState(owner);
    const res = await this.redis.multi().hdel(key, 'disabledAt', 'disabledReason').hset(key, 'failures', 0).exec();
    return Number(res?.[0]?.[1] ?? 0) > 0;
  }

  /** The most recent attempts, newest first. */
  async attempts(owner: string, limit: number): Promise<WebhookAttempt[]> {
    const raw = await this.redis.lrange(this.keys.webhookDeliveries(owner), 0, Math.max(0, limit - 1));
    return raw.map((r) => JSON.parse(r) as WebhookAttempt);
  }
}
