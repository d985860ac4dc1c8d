import type { RspamdConfig } from '../config/scoring-schema.js';
import { KurirError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { verpAddress } from '../lib/verp.js';
import { RSPAMD_ACTIONS, type Metrics, type RspamdAction } from '../metrics/metrics.js';
import { PROBE_TAG } from '../placement/probe-message.js';
import type { TimelineEvent } from '../store/types.js';
import { checkUrl, checkWithRspamd, RspamdUnavailable, type RspamdVerdict } from './rspamd-client.js';

export type ScoredEvent = Extract<TimelineEvent, { type: 'scored' }>;

export interface PreSendScorerDeps {
  config: RspamdConfig;
  /** Kurir's EHLO name (config.hostname). */
  hostname: string;
  /** For the VERP return path delivery will use as MAIL FROM. */
  bounceDomain: string;
  verpSecret: string;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
}

/** One signed message about to be stored, as the scorer needs it. */
export interface ScoreRequest {
  id: string;
  /** The From domain: a configured sender domain (the metric label). */
  domain: string;
  recipients: string[];
  message: Buffer;
  tags?: string[];
}

/**
 * Pre-send scoring at intake: every `sampleEvery`th message of this process (at most `maxPerSecond` of them a
 * second) and every placement probe is sent to rspamd after DKIM signing, with the envelope and client IP delivery will present. The verdict
 * goes on the timeline and into `kurir_rspamd_*`; a message at or over the threshold is refused
 * (SPAM_SCORE). When rspamd does not answer the message is accepted unscored and the skip is counted.
 */
export class PreSendScorer {
  private count = 0;
  private readonly url: URL;
  /** The second (ms / 1000, floored) the sampled scans below were counted in, and how many there were. */
  private second = -1;
  private inSecond = 0;

  constructor(private readonly deps: PreSendScorerDeps) {
    if (deps.config.threshold !== null) deps.metrics.rspamdThreshold.set(deps.config.threshold);
    this.url = checkUrl(deps.config.url);
  }

  /**
   * Scores `req` when it is sampled. Answers the `scored` timeline event, or null when the message is not
   * sampled or rspamd gave no verdict. Throws SPAM_SCORE (422 / 550 5.7.1) when it must be refused;
   * placement probes are never refused (they measure what the real mail would meet).
   */
  async score(req: ScoreRequest): Promise<ScoredEvent | null> {
    const probe = req.tags?.includes(PROBE_TAG) ?? false;
    if (!probe && (this.count++ % this.deps.config.sampleEvery !== 0 || !this.withinRate())) return null;
    const { config, metrics } = this.deps;
    const started = performance.now();
    let verdict: RspamdVerdict;
    try {
      verdict = await checkWithRspamd(this.url, config.timeoutSeconds * 1000, req.message, {
        ip: config.sendingIp ?? '',
        helo: this.deps.hostname,
        mailFrom: verpAddress(req.id, this.deps.bounceDomain, this.deps.verpSecret),
        recipients: req.recipients,
        queueId: req.id,
      });
    } catch (err) {
      if (!(err instanceof RspamdUnavailable)) throw err;
      metrics.rspamdSkipped.inc({ reason: err.reason });
      this.deps.logger.warn({ component: 'scoring', id: req.id, reason: err.reason, err: err.message }, 'rspamd gave no verdict: message accepted unscored');
      return null;
    } finally {
      metrics.rspamdDuration.observe((performance.now() - started) / 1000);
    }
    metrics.rspamdScore.observe({ domain: req.domain }, verdict.score);
    metrics.rspamdChecks.inc({ domain: req.domain, action: actionLabel(verdict.action) });
    const symbols = verdict.symbols.slice(0, config.topSymbols);
    if (config.threshold === null && verdict.requiredScore !== undefined) metrics.rspamdThreshold.set(verdict.requiredScore);
    const over = this.over(verdict);
    if (over) metrics.rspamdOverThreshold.inc({ domain: req.domain });
    if (!probe && config.refuse && over) {
      const threshold = config.threshold === null ? 'its action reject' : `the threshold ${config.threshold}`;
      throw new KurirError(
        'SPAM_SCORE',
        `message refused by pre-send scoring: rspamd score ${verdict.score.toFixed(1)} (action ${verdict.action}) reaches ${threshold}; top symbols: ${symbols.map((s) => `${s.name}(${s.score})`).join(', ') || 'none'}`,
        { field: 'message', details: { score: verdict.score, action: verdict.action, threshold: config.threshold, symbols } },
      );
    }
    return {
      type: 'scored',
      at: this.deps.now(),
      scanner: 'rspamd',
      score: verdict.score,
      ...(verdict.requiredScore !== undefined ? { requiredScore: verdict.requiredScore } : {}),
      action: verdict.action,
      symbols,
      sample: probe ? 'probe' : 'nth',
    };
  }

  /** Counts a sampled scan against `maxPerSecond`; false when this second's are used up (the sample is skipped, not counted as a skip). */
  private withinRate(): boolean {
    const max = this.deps.config.maxPerSecond;
    if (max === null) return true;
    const second = Math.floor(this.deps.now() / 1000);
    if (second !== this.second) {
      this.second = second;
      this.inSecond = 0;
    }
    if (this.inSecond >= max) return false;
    this.inSecond++;
    return true;
  }

  private over(v: RspamdVerdict): boolean {
    const t = this.deps.config.threshold;
    return t === null ? v.action === 'reject' : v.score >= t;
  }
}

/** rspamd's action as a bounded label value. */
export function actionLabel(action: string): RspamdAction {
  const label = action.trim().toLowerCase().replace(/\s+/g, '-');
  return (RSPAMD_ACTIONS as readonly string[]).includes(label) ? (label as RspamdAction) : 'other';
}
