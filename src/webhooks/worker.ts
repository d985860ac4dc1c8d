/**
 * Webhooks to the booking system: the worker that POSTs one signed JSON event per job.
 *
 * - 2xx is success; anything else (status, timeout, connection error, redirect) is a failed attempt and
 *   the job throws, so BullMQ retries it with exponential backoff (`webhooks.maxAttempts`,
 *   `webhooks.backoffSeconds`); after the last of those it is held like a paused webhook's events (below).
 * - Every attempt is logged in a capped per-key list (GET /v1/webhooks/deliveries) and moves the key's
 *   consecutive-failure counter: a success resets it; reaching `webhooks.disableAfterFailures` pauses ("disables")
 *   the key's webhook (logged, kurir_webhooks_disabled_total). While paused its events are held, not dropped: each
 *   waits `webhooks.pausedRetrySeconds` and looks again (kurir_webhooks_total{result="held"}, no attempt used up),
 *   and one of them per interval is sent as a probe; the first probe the receiver takes resumes the webhook, as
 *   does POST /v1/webhooks/enable. A held event lasts as long as its message is stored (the retention).
 * - Delivery is at least once and not ordered: receivers de-duplicate on the event id.
 */
import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { displayWebhookUrl } from '../lib/webhook-url.js';
import type { Metrics } from '../metrics/metrics.js';
import { WEBHOOK_QUEUE, type WebhookJobData } from '../queue/webhook-queue.js';
import type { Keys } from '../store/keys.js';
import type { MessageStore } from '../store/message-store.js';
import type { WebhookStore } from '../store/webhook-store.js';
import { boundedClose } from '../queue/bounded-close.js';
import {
  EVENT_ID_HEADER,
  SIGNATURE_HEADER,
  buildPayload,
  isWebhookEventType,
  signatureHeader,
  webhookEventId,
  webhookTargetResolver,
  type WebhookTarget,
  type WebhookTargetOf,
} from './events.js';

export interface WebhookWorkerDeps {
  config: Config;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  messages: MessageStore;
  store: WebhookStore;
  /** Replaceable in tests; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Who has a webhook (default: the configured keys only). */
  targetOf?: WebhookTargetOf;
}

/** What one HTTP attempt returned. */
export interface PostResult {
  ok: boolean;
  statusCode?: number;
  error?: string;
}

/** POSTs a signed body; never throws (outcomes are data). Redirects are not followed: they count as failures. */
export async function postWebhook(
  target: Pick<WebhookTarget, 'url' | 'secret'>,
  eventId: string,
  body: string,
  opts: { unixSeconds: number; timeoutMs: number; fetch?: typeof fetch },
): Promise<PostResult> {
  const doFetch = opts.fetch ?? fetch;
  try {
    const res = await doFetch(target.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Kurir-Webhooks/1',
        [SIGNATURE_HEADER]: signatureHeader(target.secret, opts.unixSeconds, body),
        [EVENT_ID_HEADER]: eventId,
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    await res.body?.cancel().catch(() => undefined);
    const ok = res.status >= 200 && res.status < 300;
    return ok ? { ok, statusCode: res.status } : { ok, statusCode: res.status, error: `HTTP ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const error =
      e.name === 'TimeoutError' || e.name === 'AbortError' ? `timeout after ${opts.timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { ok: false, error: String(error).slice(0, 300) };
  }
}

/** Puts a job back for `delayMs` without using up an attempt (BullMQ's DelayedError). */
async function hold(job: Job<WebhookJobData>, token: string | undefined, delayMs: number, metrics: Metrics): Promise<never> {
  metrics.webhooks.inc({ result: 'held' });
  // A little spread, so events held together do not all wake in the same instant.
  await job.moveToDelayed(Date.now() + Math.round(delayMs * (0.9 + Math.random() * 0.2)), token);
  throw new DelayedError();
}

/** Sends the webhook of one job; throws to have BullMQ retry it (or, while the key's webhook is paused, hold it). */
export async function processWebhookJob(deps: WebhookWorkerDeps, targetOf: WebhookTargetOf, job: Job<WebhookJobData>, token?: string): Promise<string> {
  const { config, clock, logger, metrics, messages, store } = deps;
  const { messageId, eventIndex, owner } = job.data;
  const target = targetOf(owner);
  if (!target) return 'no webhook configured';
  const holdMs = config.webhooks.pausedRetrySeconds * 1000;
  // Paused: only the event that takes this interval's probe is sent; the others wait.
  const paused = await store.isDisabled(owner);
  if (paused && !(await store.takeProbe(owner, holdMs))) return hold(job, token, holdMs, metrics);
  const [record, event] = await Promise.all([messages.getRecord(messageId), messages.getEvent(messageId, eventIndex)]);
  if (!record || !event) return 'message no longer stored';
  if (!isWebhookEventType(event.type) || !target.events.has(event.type)) return 'event not subscribed';

  const eventId = webhookEventId(messageId, eventIndex);
  const body = JSON.stringify(buildPayload(record, event, eventIndex));
  const started = performance.now();
  const now = clock.now();
  const result = await postWebhook(target, eventId, body, {
    unixSeconds: Math.floor(now / 1000),
    timeoutMs: config.webhooks.timeoutSeconds * 1000,
    fetch: deps.fetch,
  });
  const attempt = job.attemptsMade + 1;
  const failures = await store.recordAttempt(owner, {
    eventId,
    type: event.type,
    messageId,
    attempt,
    at: now,
    result: result.ok ? 'sent' : 'failed',
    statusCode: result.statusCode,
    error: result.error,
    durationMs: Math.round(performance.now() - started),
  });
  metrics.webhooks.inc({ result: result.ok ? 'sent' : 'failed' });
  if (result.ok) {
    if (paused && (await store.enable(owner)))
      logger.warn({ owner, url: displayWebhookUrl(target.url) }, 'webhook resumed: the receiver took a held event again');
    return `sent (${result.statusCode})`;
  }

  logger.warn({ owner, eventId, attempt, error: result.error, consecutiveFailures: failures }, 'webhook attempt failed');
  // Paused, or its backoff attempts used up: held and tried again every interval while its message is stored.
  if (paused || attempt >= config.webhooks.maxAttempts) return hold(job, token, holdMs, metrics);
  if (failures >= config.webhooks.disableAfterFailures) {
    const reason = `${failures} consecutive failed deliveries; last: ${result.error ?? 'failed'}`;
    if (await store.disable(owner, clock.now(), reason)) {
      metrics.webhooksDisabled.inc();
      logger.error(
        { owner, url: displayWebhookUrl(target.url), reason },
        'webhook paused after sustained failure: events are held and one is tried every pausedRetrySeconds',
      );
    }
    return hold(job, token, holdMs, metrics);
  }
  throw new Error(`webhook attempt ${attempt} failed: ${result.error ?? 'failed'}`);
}

/**
 * A webhook job's lock (at least; longer with a long `webhooks.timeoutSeconds`), renewed by its worker every
 * {@link WEBHOOK_LOCK_RENEW_MS} at most. A worker that is alive but stalled (its event loop blocked, its Redis link
 * down) keeps its jobs for at least the difference, 15 s, as it did with BullMQ's 30 s lock renewed every 15 s used
 * until 2 Dec 2026: only a longer stall lets another worker send the event again. A worker that died leaves its jobs
 * to the others once the lock has run out (at most 20 s after its last renewal), found by the next stalled check
 * (every {@link WEBHOOK_STALLED_CHECK_MS}, one per queue however many workers): 15–25 s in all, against 30–60 s
 * with BullMQ's defaults (docs/webhooks.md, tests/integration/webhook-worker-kill.test.ts).
 */
export const WEBHOOK_LOCK_MS = 20_000;
/** How often at most a worker renews the locks of its webhook jobs (BullMQ renews at half to all of it). */
export const WEBHOOK_LOCK_RENEW_MS = 5000;
/** How often the queue looks for jobs whose lock ran out: one Redis script over the active jobs, per queue. */
export const WEBHOOK_STALLED_CHECK_MS = 5000;

export interface WebhookWorker {
  readonly worker: Worker<WebhookJobData>;
  /** Stops taking jobs and waits (bounded) for in-flight ones. Safe twice. */
  close(graceMs?: number): Promise<void>;
}

/** Runs the webhook queue (worker role). */
export function startWebhookWorker(deps: WebhookWorkerDeps, connection: Redis, keys: Keys): WebhookWorker {
  const targetOf = deps.targetOf ?? webhookTargetResolver(deps.config);
  const worker = new Worker<WebhookJobData>(WEBHOOK_QUEUE, (job, token) => processWebhookJob(deps, targetOf, job, token), {
    connection,
    prefix: keys.bullPrefix(),
    concurrency: deps.config.webhooks.concurrency,
    // Renewed while the attempt runs, so the lock need not outlast it; twice a long timeout keeps the older margin.
    lockDuration: Math.max(WEBHOOK_LOCK_MS, deps.config.webhooks.timeoutSeconds * 2000),
    lockRenewTime: WEBHOOK_LOCK_RENEW_MS,
    stalledInterval: WEBHOOK_STALLED_CHECK_MS,
    // A job whose worker died or stalled while posting goes back to wait; BullMQ's default fails it at the second.
    maxStalledCount: 10,
  });
  worker.on('failed', (job, err) => {
    if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) deps.logger.warn({ job: job.id, err: err.message }, 'webhook given up');
  });

  worker.on('error', (err) => deps.logger.warn({ err }, 'webhook worker error'));
  return { worker, close: boundedClose(worker, deps.config.delivery.shutdownGraceSeconds * 1000) };
}
