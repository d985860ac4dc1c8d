/**
 * What a delivery job is, what the pipeline's stages share (their dependencies, the outcome of one
 * recipient as the stages pass it along), and the first stages: load the job's message and the recipients
 * of its domain still waiting (with the body, in the same round trip), expire them when the message's
 * lifetime is over.
 */
import type { Config, Priority } from '../../config/schema.js';
import type { DeliveryFeedbackHook } from '../../feedback/suppression/delivery-feedback.js';
import type { BounceRules } from '../../feedback/classify/rules.js';
import { domainOf } from '../../lib/address.js';
import type { Clock } from '../../lib/clock.js';
import type { Logger } from '../../lib/logger.js';
import type { Metrics } from '../../metrics/metrics.js';
import type { ProviderMap } from '../../metrics/provider.js';
import type { ShapingGate } from '../../shaping/gate.js';
import type { IncidentRecorder } from '../../store/incident-store.js';
import { deliveryViewFromHash } from '../../store/delivery-view.js';
import type { MessageStore } from '../../store/message-store.js';
import { FINAL_RECIPIENT_STATUSES, type MessageRecord } from '../../store/types.js';
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
  /** Suppression on hard bounces (src/feedback/suppression/delivery-feedback.ts); absent in processor-only tests. */
  feedback?: DeliveryFeedbackHook;
  /** The per-provider rolling window of GET /v1/incidents; absent in processor-only tests. */
  incidents?: IncidentRecorder;
  /** Outbound MTA-STS (when `delivery.mtaSts.enabled`); only used for delivery to MX hosts, never to a smarthost. */
  mtaSts?: MtaStsPolicies;
  /** PEM certificates trusted besides the system's roots for outbound TLS (tests inject their CA). */
  trustedCa?: readonly string[];
  /**
   * `messageId \0 address` of this process's deliveries that arrived but are not recorded yet (Redis refusing writes):
   * a new run of such a job waits instead of sending again (src/delivery/stages/outcome.ts). One set per worker.
   */
  unrecorded?: Set<string>;
  /**
   * Aborted when the worker closes, after its grace for running jobs: a record still waiting for Redis to take writes
   * stops waiting (the Redis clients are closed next) and the job fails (src/delivery/stages/outcome.ts).
   */
  closing?: AbortSignal;
}

/** One delivery job: a message to the recipients of one domain. */
export interface DeliveryJob {
  /** The queue's job id (held sets of shaping keep it). */
  id: string;
  messageId: string;
  domain: string;
  priority: Priority;
  /** How many times a worker took the job so far (the queue counts runs started). */
  attemptsStarted: number;
  /** The message hash the queue read with the job (src/queue/delivery-queue.ts `QueuedJob.message`), if it did. */
  preloaded?: readonly Buffer[];
  /** Whether this run still holds the job's lease (src/queue/job-runner.ts `LeaseCheck`); absent: it does. */
  holdsLease?: () => Promise<boolean>;
}

/** A job's message as loaded: the recipients of the job's domain still waiting, and this attempt's number. */
export interface LoadedJob {
  record: MessageRecord;
  pending: string[];
  attempt: number;
  /** The body as read with the record (one round trip); null when it was already gone. */
  body: Buffer | null;
}

/** One recipient's outcome of an attempt: an SMTP (or DNS, or policy) result, or expiry before any send. */
export type Outcome = RecipientOutcome | { address: string; kind: 'expired'; code: null; reply: string };

/**
 * Loads the job's message record and the recipients of the job's domain that are not final yet; null
 * when there is nothing to do (the message is gone, or every such recipient is final, e.g. cancelled).
 * The attempt number is one more than the most attempts any of them has had.
 */
export async function loadJob(deps: DeliveryDeps, job: DeliveryJob): Promise<LoadedJob | null> {
  // Record, recipient states and body as the queue read them with the job, else in one round trip; the body is
  // read even when the shaping gate then says wait.
  const loaded = (job.preloaded && deliveryViewFromHash(job.preloaded)) ?? (await deps.messages.getForDelivery(job.messageId));
  if (!loaded) return null;
  const { record, recipients: states, body } = loaded;
  const addresses = record.recipients.filter((r) => domainOf(r) === job.domain);
  const pending = addresses.filter((a) => !FINAL_RECIPIENT_STATUSES.has(states[a]?.status ?? 'queued'));
  if (!pending.length) return null;
  const attempt = Math.max(...pending.map((a) => states[a]?.attempts ?? 0)) + 1;
  return { record, pending, attempt, body };
}

/** `expired` outcomes for every pending recipient, with `reply` as the reason. */
export function expiredOutcomes(loaded: LoadedJob, reply = 'message expired before delivery'): Outcome[] {
  return loaded.pending.map((address) => ({ address, kind: 'expired' as const, code: null, reply }));
}

/** Expiry is due: the message's lifetime is over at `now`; its pending recipients are then `expiredOutcomes`. */
export function expiryDue(loaded: LoadedJob, now: number): boolean {
  return now >= loaded.record.expiresAt;
}

/**
 * The signed message as it will be sent, as `loadJob` read it with the record; null when it is gone (the
 * message became final meanwhile), which the pipeline records as an expiry like a message past its lifetime.
 */
export async function loadBody(_deps: DeliveryDeps, loaded: LoadedJob): Promise<Buffer | null> {
  return loaded.body;
}
