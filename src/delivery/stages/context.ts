/**
 * What the delivery pipeline's stages share: their dependencies, the job they work on, and the outcome
 * of one recipient as the stages pass it along.
 */
import type { Config, Priority } from '../../config/schema.js';
import type { DeliveryFeedbackHook } from '../../feedback/delivery-feedback.js';
import type { BounceRules } from '../../feedback/rules.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { ProviderMap } from '../../metrics/provider.js';
import type { ShapingGate } from '../../shaping/gate.js';
import type { MessageStore } from '../../store/message-store.js';
import type { MessageRecord } from '../../store/types.js';
import type { MtaStsPolicies } from '../mta-sts.js';
import type { DnsResolver } from '../resolver.js';
import type { RecipientOutcome, sendMessage } from '../smtp-client.js';

export interface DeliveryDeps {
  config: Config;
  clock: Clock;
  resolver: DnsResolver;
  messages: MessageStore;
  metrics: Metrics;
  providers: ProviderMap;
  logger: Logger;
  verpSecret: string;
  /** Reply classification rules (config/bounce-rules.yaml), loaded once at start-up. */
  rules: BounceRules;
  /** The shaping gate asked before each send; `openGate` (always go) when shaping is off. */
  gate: ShapingGate;
  /** Replaceable for tests of the processor alone; defaults to a real SMTP transaction. */
  send?: typeof sendMessage;
  /** Suppression on hard bounces (src/feedback/delivery-feedback.ts); absent in processor-only tests. */
  feedback?: DeliveryFeedbackHook;
  /** Outbound MTA-STS (when `delivery.mtaSts.enabled`); only used for delivery to MX hosts, never to a smarthost. */
  mtaSts?: MtaStsPolicies;
  /** PEM certificates trusted besides the system's roots for outbound TLS (tests inject their CA). */
  trustedCa?: readonly string[];
}

/** One delivery job: a message to the recipients of one domain. */
export interface DeliveryJob {
  /** The queue's job id (held sets of shaping keep it). */
  id: string;
  messageId: string;
  domain: string;
  priority: Priority;
  /** How many times a worker took the job so far (BullMQ attemptsStarted). */
  attemptsStarted: number;
}

/** A job's message as loaded: the recipients of the job's domain still waiting, and this attempt's number. */
export interface LoadedJob {
  record: MessageRecord;
  pending: string[];
  attempt: number;
}

/** One recipient's outcome of an attempt: an SMTP (or DNS, or policy) result, or expiry before any send. */
export type Outcome = RecipientOutcome | { address: string; kind: 'expired'; code: null; reply: string };
