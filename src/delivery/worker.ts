import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { isUnavailable } from '../lib/errors.js';
import { DELIVERY_QUEUE, INFRA_BACKOFF, infrastructureBackoff, type DeliveryJobData } from '../queue/delivery-queue.js';
import { boundedClose } from '../queue/bounded-close.js';
import { createShapingGate, openGate, withSourceIps } from '../shaping/gate.js';
import type { ProviderShaper } from '../shaping/provider-shaper.js';
import type { SourceIps } from '../shaping/source-ips.js';
import type { Keys } from '../store/keys.js';
import { runDelivery, type DeliveryDeps, type PipelineResult } from './pipeline.js';

const SHAPING_METRICS_REFRESH_MS = 15_000;

export interface DeliveryWorker {
  readonly worker: Worker<DeliveryJobData>;
  /** Stops taking jobs, lets in-flight ones finish within `graceMs`, then hands the rest back. Safe twice. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Runs delivery jobs through the pipeline (src/delivery/pipeline.ts). A deferral moves the job back to
 * the delayed set at its retry time with its priority intact; so does a "wait" from shaping (a provider
 * paused, at its rate or connection limit), without counting an attempt. A worker that dies leaves a
 * stalled job that BullMQ hands to another worker. The pipeline asks the shaper's gate when shaping is
 * enabled, else the open gate (always go); with `sources` (source-IP pools) the gate also picks each job's
 * source IP and enforces its warm-up caps, whether shaping is on or not.
 */
export function startDeliveryWorker(
  deps: Omit<DeliveryDeps, 'gate'>,
  connection: Redis,
  keys: Keys,
  shaper?: ProviderShaper,
  sources?: SourceIps,
): DeliveryWorker {
  const recheckMs = (deps.config.shaping?.pausedRecheckSeconds ?? 60) * 1000;
  const shaping = shaper?.enabled ? createShapingGate(shaper, { clock: deps.clock, logger: deps.logger, recheckMs }) : openGate;
  const gate = sources ? withSourceIps(shaping, sources, { clock: deps.clock }) : shaping;
  const pipelineDeps: DeliveryDeps = { ...deps, gate };
  const worker = new Worker<DeliveryJobData>(
    DELIVERY_QUEUE,
    async (job: Job<DeliveryJobData>, token?: string) => {
      const { messageId, domain, priority } = job.data;
      let result: PipelineResult;
      try {
        result = await runDelivery(pipelineDeps, { id: job.id ?? '', messageId, domain, priority, attemptsStarted: job.attemptsStarted ?? 1 });
      } catch (err) {
        // Not an outcome: BullMQ retries the job with the infrastructure back-off (never parks it).
        const kind = isUnavailable(err) ? 'unavailable' : 'internal';
        deps.metrics.deliveryJobErrors.inc({ kind });
        deps.logger.warn({ err, job: job.id, attempt: job.attemptsMade + 1, kind }, 'delivery job error; retrying');
        throw err;
      }
      // BullMQ's idiom for "run this job again later": no attempt counted, priority kept.
      if (result.next !== 'done') {
        await job.moveToDelayed(result.at, token);
        throw new DelayedError();
      }
    },
    {
      connection,
      prefix: keys.bullPrefix(),
      concurrency: deps.config.delivery.concurrency,
      lockDuration: deps.config.delivery.jobLockSeconds * 1000,
      stalledInterval: Math.max(1000, (deps.config.delivery.jobLockSeconds * 1000) / 2),
      maxStalledCount: 10,
      settings: {
        backoffStrategy: (attemptsMade: number, type?: string) => (type === INFRA_BACKOFF ? infrastructureBackoff(attemptsMade) : -1),
      },
    },
  );
  // Only after a million retries, or a job stalled more than maxStalledCount times: the reconciler retries it.
  worker.on('failed', (job, err) => {
    if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) deps.logger.error({ err, job: job.id }, 'delivery job failed; the reconciler will retry it');
  });
  worker.on('error', (err) => deps.logger.warn({ err }, 'delivery worker error'));
  if (!shaper) return { worker, close: boundedClose(worker, deps.config.delivery.shutdownGraceSeconds * 1000) };
  // Shaping gauges follow the cluster state (pauses and rates set by other processes) between deliveries.
  const refresh = (): void => void shaper.refreshMetrics().catch((err: unknown) => deps.logger.debug({ err }, 'shaping metrics refresh failed'));
  refresh();
  const timer = setInterval(refresh, SHAPING_METRICS_REFRESH_MS);
  timer.unref();
  const close = boundedClose(worker, deps.config.delivery.shutdownGraceSeconds * 1000);
  return {
    worker,
    close(graceMs?: number) {
      clearInterval(timer);
      return close(graceMs);
    },
  };
}
