import type { Redis } from 'ioredis';
import { isUnavailable } from '../lib/errors.js';
import { DeliveryQueue, infrastructureBackoff, type QueuedJob } from '../queue/delivery-queue.js';
import { JobRunner, type LeaseCheck, type RunResult } from '../queue/job-runner.js';
import { createShapingGate, openGate, withSourceIps } from '../shaping/gate.js';
import type { ProviderShaper } from '../shaping/provider-shaper.js';
import type { SourceIps } from '../shaping/source-ips.js';
import type { Keys } from '../store/keys.js';
import { runDelivery, type DeliveryDeps, type PipelineResult } from './pipeline.js';

const SHAPING_METRICS_REFRESH_MS = 15_000;
/** After the grace, how long close waits for runs told to stop (a record waiting for Redis) to end and say what they leave. */
const STOP_WAIT_MS = 1000;
/** Lease losses (a worker died or stalled mid-job) before a job is failed and left to the reconciler. */
const MAX_STALLS = 10;

export interface DeliveryWorker {
  readonly runner: JobRunner;
  /** True from start until close. */
  isRunning(): boolean;
  /**
   * Stops taking jobs, lets in-flight ones finish within `graceMs`, then leaves the rest to other workers: a run still
   * waiting for Redis to take its record stops waiting (logged at error level when it had delivered), waited for up to
   * a second; then the runner sends nothing more to Redis (a run ending later is logged at warn and left to its job's
   * lease); last, one more try for shaping slots whose release failed (Redis away). Safe twice.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Runs delivery jobs through the pipeline (src/delivery/pipeline.ts). A deferral moves the job back to
 * the delayed set at its retry time with its priority intact; so does a "wait" from shaping (a provider
 * paused, at its rate or connection limit), without counting an attempt. A worker that dies leaves its jobs
 * leased; when the lease runs out another worker takes them. The pipeline asks the shaper's gate when shaping
 * is enabled, else the open gate (always go); with `sources` (source-IP pools) the gate also picks each job's
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
  const shaping = shaper?.enabled ? createShapingGate(shaper, { clock: deps.clock, logger: deps.logger, recheckMs, metrics: deps.metrics }) : openGate;
  const gate = sources ? withSourceIps(shaping, sources, { clock: deps.clock }) : shaping;
  // Aborted at close once the grace is over: a record still waiting for Redis stops (its clients are closed next).
  const closing = new AbortController();
  const pipelineDeps: DeliveryDeps = { ...deps, gate, unrecorded: deps.unrecorded ?? new Set(), closing: closing.signal };
  const deliver = async (job: QueuedJob, holdsLease: LeaseCheck): Promise<RunResult> => {
    const { messageId, domain, priority } = job.data;
    let result: PipelineResult;
    try {
      result = await runDelivery(pipelineDeps, {
        id: job.id,
        messageId,
        domain,
        priority,
        attemptsStarted: job.attemptsStarted,
        preloaded: job.message,
        holdsLease,
      });
    } catch (err) {
      // Not an outcome: the runner counts an attempt and runs the job again after the infrastructure back-off.
      const kind = isUnavailable(err) ? 'unavailable' : 'internal';
      deps.metrics.deliveryJobErrors.inc({ kind });
      deps.logger.warn({ err, job: job.id, attempt: job.attemptsMade + 1, kind }, 'delivery job error; retrying');
      throw err;
    }
    return result.next === 'done' ? { kind: 'c' } : { kind: 'd', at: result.at };
  };
  // Runs in flight, settled or not: close waits a moment for those it told to stop.
  const runs = new Set<Promise<unknown>>();
  const process = (job: QueuedJob, holdsLease: LeaseCheck): Promise<RunResult> => {
    const run = deliver(job, holdsLease);
    const done: Promise<unknown> = run.then(
      () => runs.delete(done),
      () => runs.delete(done),
    );
    runs.add(done);
    return run;
  };
  const runner = new JobRunner(new DeliveryQueue(connection, keys), process, {
    concurrency: deps.config.delivery.concurrency,
    lockMs: deps.config.delivery.jobLockSeconds * 1000,
    maxStalls: MAX_STALLS,
    backoff: infrastructureBackoff,
    logger: deps.logger,
    onLeasesExpired: ({ returned, failed }) => {
      if (returned) deps.metrics.queueLeasesExpired.inc({ outcome: 'returned' }, returned);
      if (failed) deps.metrics.queueLeasesExpired.inc({ outcome: 'failed' }, failed);
    },
  });
  runner.start();
  const graceMs = deps.config.delivery.shutdownGraceSeconds * 1000;
  let timer: NodeJS.Timeout | null = null;
  if (shaper) {
    // Shaping gauges follow the cluster state (pauses and rates set by other processes) between deliveries.
    const refresh = (): void => void shaper.refreshMetrics().catch((err: unknown) => deps.logger.debug({ err }, 'shaping metrics refresh failed'));
    refresh();
    timer = setInterval(refresh, SHAPING_METRICS_REFRESH_MS);
    timer.unref();
  }
  return {
    runner,
    isRunning: () => runner.isRunning(),
    async close(ms = graceMs) {
      if (timer) clearInterval(timer);
      // Runs told to stop report to the queue while the runner waits for them; after its close it sends nothing more.
      await runner.close(ms, async () => {
        closing.abort();
        if (!runs.size) return;
        let wait: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(runs), new Promise((resolve) => (wait = setTimeout(resolve, STOP_WAIT_MS)))]);
        clearTimeout(wait);
      });
      // The jobs have ended: slots whose release failed (Redis away) get one more try before Redis is closed.
      await gate.close();
    },
  };
}
