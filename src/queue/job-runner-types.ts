/** The types of {@link JobRunner} (src/queue/job-runner.ts): what a run answers, its lease check, the runner's options. */
import type { Logger } from '../lib/logger.js';

/** What became of one run: completed, to run again at `at` (no attempt counted), or threw (retry at `at`). */
export type RunResult = { kind: 'c' } | { kind: 'd'; at: number } | { kind: 'e'; at: number };

/**
 * Whether the run still holds its job's lease, so that no other run of the job can have started. Answers at once
 * while at least a quarter of the lease is left since it was last renewed (another runner takes a job only once
 * its lease has run out, by that runner's clock: so worker clocks must agree within a quarter of the lease);
 * otherwise asks Redis, renewing the lease when no other run has taken the job meanwhile; once the runner is closed
 * (its Redis clients about to go) it answers false instead of asking.
 */
export type LeaseCheck = () => Promise<boolean>;

export interface JobRunnerOptions {
  concurrency: number;
  /** Lease of a running job; renewed every half of it. */
  lockMs: number;
  /** Lease losses after which a job goes to the failed set (the reconciler retries it). */
  maxStalls: number;
  /** Back-off (ms) of a run that threw, by the job's attempts made so far (this one included). */
  backoff: (attemptsMade: number) => number;
  logger: Logger;
  /** Longest idle wait before looking at the queue again (a lost wake-up costs no more); default 1 s. */
  idleWaitMs?: number;
  /** Told what each recovery pass did with jobs whose lease ran out (for metrics). */
  onLeasesExpired?: (r: { returned: number; failed: number }) => void;
}
