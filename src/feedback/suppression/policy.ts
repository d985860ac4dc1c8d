/**
 * The one place that decides whether a failure or a complaint suppresses a recipient, used by both the
 * synchronous path (a 5xx at delivery, src/delivery/stages/outcome.ts) and the asynchronous one (DSNs and ARF
 * reports at the bounce MX, and ESP notifications from SES or Mailgun — all through
 * src/feedback/ingest/ingest.ts):
 *
 * - sender-side categories (policy, spam-block, … — `senderSide` from config/bounce-rules.yaml) never
 *   suppress: they mean Kurir's own reputation or setup is broken, and are counted for alerting instead;
 * - a hard failure suppresses at once (reason = its category);
 * - a soft failure suppresses only after `feedback.softBounceThreshold` soft failures of different
 *   messages within `feedback.softBounceWindowDays`. A later delivery to the address cancels the
 *   synchronous ones (a 250 after a 552 shows the mailbox works again) but not those reported by DSNs:
 *   a receiving MX answers 250 and bounces afterwards, so its 250 proves nothing about the mailbox (the
 *   same holds for soft bounces an ESP reports);
 * - a complaint (ARF abuse/fraud/virus/other, or an ESP's complaint) suppresses with reason `complaint`.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../lib/logger.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { Keys } from '../../store/keys.js';
import type { SuppressionStore } from '../../store/suppression-store.js';
import type { Classification } from '../classify/rules.js';

export type { Classification };

/** Where a failure or complaint was learnt: delivery (smtp), the bounce MX (dsn, arf), or an ESP's notification (ses, mailgun). */
export type SuppressionSource = 'smtp' | 'dsn' | 'arf' | 'ses' | 'mailgun';

// Drops the synchronous (`smtp:`-prefixed) soft failures of each address. KEYS: soft-bounce sets.
const RESET_SYNC_SCRIPT = `
for _, k in ipairs(KEYS) do
  for _, m in ipairs(redis.call('ZRANGE', k, 0, -1)) do
    if string.sub(m, 1, 5) == 'smtp:' then redis.call('ZREM', k, m) end
  end
end
return 0`;

export type SuppressionDecision =
  /**
   * `added`: the entry is new (counted in the metric). `ours`: this message's failure or complaint is what put the
   * address on the list, now or in an earlier try of the same write whose answer was lost, so the caller records a
   * `suppressed` event (a retry after a Redis error must not lose it).
   */
  | { action: 'suppressed'; reason: string; source: SuppressionSource; added: boolean; ours: boolean }
  | { action: 'sender-side' }
  | { action: 'soft-counted'; count: number; threshold: number }
  | { action: 'none' };

export interface SuppressionPolicyDeps {
  redis: Redis;
  keys: Keys;
  suppressions: SuppressionStore;
  metrics: Metrics;
  logger: Logger;
  config: Pick<Config['feedback'], 'softBounceThreshold' | 'softBounceWindowDays'>;
}

export interface FailureInput {
  address: string;
  classification: Classification;
  source: Exclude<SuppressionSource, 'arf'>;
  /** Kurir id of the message that failed (one soft count per message). */
  messageId: string;
  at: number;
}

/**
 * Turns failures and complaints into suppression decisions: adds suppression-list entries and keeps the per-address soft-failure
 * counts in Redis that the soft-bounce threshold is checked against.
 */
export class SuppressionPolicy {
  constructor(private readonly deps: SuppressionPolicyDeps) {}

  /** Applies the rule for one recipient's permanent failure (a 5xx at delivery or a DSN with Action: failed). */
  async onFailure(f: FailureInput): Promise<SuppressionDecision> {
    const { classification: c } = f;
    if (c.senderSide) {
      this.deps.logger.warn(
        { id: f.messageId, category: c.category, rule: c.ruleId, source: f.source },
        'sender-side failure: recipient not suppressed (check reputation, authentication and setup)',
      );
      return { action: 'sender-side' };
    }
    if (c.type === 'hard') return this.suppress(f.address, c.category, f.source, f.messageId, f.at);
    const count = await this.countSoft(f.address, `${f.source}:${f.messageId}`, f.at);
    const threshold = this.deps.config.softBounceThreshold;
    if (count < threshold) return { action: 'soft-counted', count, threshold };
    await this.deps.redis.del(this.deps.keys.softBounces(f.address));
    return this.suppress(f.address, c.category, f.source, f.messageId, f.at);
  }

  /** Suppresses a recipient who complained (ARF). */
  async onComplaint(c: { address: string; messageId: string; at: number; source?: 'arf' | 'ses' | 'mailgun' }): Promise<SuppressionDecision> {
    return this.suppress(c.address, 'complaint', c.source ?? 'arf', c.messageId, c.at);
  }

  /** A delivery to these addresses cancels their synchronous soft failures. */
  async onDelivered(addresses: string[]): Promise<void> {
    if (!addresses.length) return;
    // EVALSHA once defined on the client: the script text is not sent with every delivery.
    const r = this.deps.redis as Redis & { kurirResetSoftBounces?: (n: number, ...keys: string[]) => Promise<number> };
    if (!r.kurirResetSoftBounces) r.defineCommand('kurirResetSoftBounces', { lua: RESET_SYNC_SCRIPT });
    await r.kurirResetSoftBounces!(addresses.length, ...addresses.map((a) => this.deps.keys.softBounces(a)));
  }

  /** Adds the entry unless the address is already suppressed (the first reason, time and message are kept). */
  private async suppress(address: string, reason: string, source: SuppressionSource, messageId: string, at: number): Promise<SuppressionDecision> {
    const [existing] = await this.deps.suppressions.check([address]);
    if (existing) {
      const ours = existing.messageId === messageId && existing.source === source;
      return { action: 'suppressed', reason: existing.reason, source, added: false, ours };
    }
    const added = await this.deps.suppressions.add({ address: address.toLowerCase(), reason, source, at, messageId });
    if (added) this.deps.metrics.suppressionsAdded.inc({ reason });
    this.deps.logger.info({ id: messageId, reason, source, added }, 'recipient suppressed');
    return { action: 'suppressed', reason, source, added, ours: added };
  }

  /** Records one soft failure (`<source>:<message id>`: once per message) and answers how many fall within the window. */
  private async countSoft(address: string, member: string, at: number): Promise<number> {
    const key = this.deps.keys.softBounces(address);
    const windowMs = Math.ceil(this.deps.config.softBounceWindowDays * 86_400_000);
    const res = await this.deps.redis
      .multi()
      .zremrangebyscore(key, '-inf', `(${at - windowMs}`)
      .zadd(key, at, member)
      .zcard(key)
      .pexpire(key, windowMs)
      .exec();
    return Number(res?.[2]?.[1] ?? 0);
  }
}
