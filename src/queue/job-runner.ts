/**
 * Runs delivery jobs from a {@link DeliveryQueue}: up to `concurrency` at once, each leased for `lockMs` and
 * renewed while it runs. Finished runs are reported in the same round trip that takes the next jobs, so under
 * load one script call completes and takes several jobs. An idle runner blocks on the queue's wake list (on a
 * connection of its own) and looks again at least every `idleWaitMs`, and when the earliest delayed job is due.
 * A runner that dies leaves its jobs leased; when the lease runs out any runner's recovery pass puts them back.
 * A run that is still alive then (its renewals failed: Redis unreachable, or its event loop blocked) may be
 * overtaken by a new run of its job; before it records what it did it asks {@link LeaseCheck} whether it still
 * holds the lease.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DeliveryQueue, QueuedJob, StepOp } from './delivery-queue.js';
import type { JobRunnerOptions, LeaseCheck, RunResult } from './job-runner-types.js';

export type { JobRunnerOptions, LeaseCheck, RunResult } from './job-runner-types.js';

/** A job being run, with its lease as this runner last knew it. */
interface Run {
  job: QueuedJob;
  /** The lease's end as last set by this runner (ms). */
  until: number;
  /** A renewal found the job no longer leased under this run's token. */
  lost: boolean;
}

const RETRY_MS = 1000;
const REPORT_NAMES = { c: 'completed', d: 'delayed', e: 'failed' } as const;
/** Under load, due delayed jobs are looked for at most this often (each look is a read in the step script). */
const DELAYED_CHECK_MS = 50;

/**
 * This process's runner of delivery jobs: takes up to `concurrency` jobs from the queue, keeps their leases renewed while
 * they run, reports each result back and returns jobs of expired leases to the queue.
 */
export class JobRunner {
  /**
   * By job id and token (the job's run count): a job whose lease ran out can be taken again by this runner while
   * its first run still goes on.
   */
  private readonly inflight = new Map<string, Run>();
  private ops: StepOp[] = [];
  private pumping = false;
  private again = false;
  /** The last step found fewer ready jobs than it asked for: wait for a wake-up before asking again. */
  private empty = false;
  private waiting = false;
  private stopping = false;
  /** Closed: nothing more goes to Redis; a run that ends now is left to its lease. */
  private closed = false;
  private closing: Promise<void> | null = null;
  private blocking: Redis | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private dueTimer: { at: number; timer: NodeJS.Timeout } | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly prefix = randomBytes(6).toString('hex');
  private seq = 0;
  private delayedCheckedAt = 0;
  private drained: (() => void) | null = null;

  constructor(
    private readonly queue: DeliveryQueue,
    private readonly process: (job: QueuedJob, holdsLease: LeaseCheck) => Promise<RunResult>,
    private readonly opts: JobRunnerOptions,
  ) {}

  /** Starts taking jobs, renewing leases and recovering jobs whose lease ran out. */
  start(): void {
    this.blocking = this.queue.redis.duplicate();
    this.blocking.on('error', (err: Error) => this.opts.logger.debug({ err: err.message }, 'redis queue wait connection error'));
    const every = Math.max(500, Math.floor(this.opts.lockMs / 2));
    this.every(every, () => this.renewLeases());
    this.every(every, () => this.recoverStalled());
    this.recoverStalled();
    this.pump();
  }

  /** True from start until close. */
  isRunning(): boolean {
    return this.blocking !== null && !this.stopping;
  }

  /** Jobs running now. */
  get running(): number {
    return this.inflight.size;
  }

  /**
   * Stops taking jobs, lets running ones finish and be reported within `graceMs`, then stops renewing their
   * leases so another runner takes them once the lease runs out. `afterGrace` (the owner telling its runs to stop
   * and waiting for them a moment) runs next, and reports of runs that end meanwhile still go out. Then the runner
   * is closed: it sends nothing more to Redis (its owner closes the clients next). A run that ends later, or a
   * report not yet sent, is logged once at warn and left to the job's lease, which runs out; then any runner's
   * recovery pass puts the job back and it runs again. Safe twice.
   */
  close(graceMs: number, afterGrace?: () => Promise<void>): Promise<void> {
    this.closing ??= (async () => {
      this.stopping = true;
      this.blocking?.disconnect();
      if (this.dueTimer) clearTimeout(this.dueTimer.timer);
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<void>((resolve) => {
        this.drained = resolve;
        this.checkDrained();
      });
      await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      for (const t of this.timers) clearInterval(t);
      await afterGrace?.();
      this.closed = true;
      if (this.retryTimer) clearTimeout(this.retryTimer);
      // Reports kept for a retry (Redis away during the grace) are logged as left unsent.
      this.pump();
      if (this.inflight.size)
        this.opts.logger.warn(
          { running: this.inflight.size },
          'delivery runner closed with jobs running; their leases will run out and another worker takes them',
        );
    })();
    return this.closing;
  }

  /** Logs, once, reports the closed runner will not send: each job stays leased until its lease runs out. */
  private leaveUnreported(ops: StepOp[]): void {
    if (!ops.length) return;
    this.opts.logger.warn(
      { jobs: ops.slice(0, 20).map((o) => ({ id: o.id, result: REPORT_NAMES[o.kind] })), count: ops.length },
      'delivery job ended after its worker closed; not reported to the queue: its lease will run out and the job will be taken again',
    );
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.add(t);
  }

  private run(job: QueuedJob, until: number): void {
    const run: Run = { job, until, lost: false };
    const key = `${job.id} ${job.token}`;
    this.inflight.set(key, run);
    void this.process(job, () => this.holds(run))
      .catch((): RunResult => ({ kind: 'e', at: Date.now() + this.opts.backoff(job.attemptsMade + 1) }))
      .then((r) => {
        this.inflight.delete(key);
        this.ops.push({ kind: r.kind, id: job.id, token: job.token, at: r.kind === 'c' ? 0 : r.at });
        // Its own delays are known here: a step looks for them when due, even one that skips the check.
        if (r.kind !== 'c') this.whenDue(r.at);
        this.pump();
      });
  }

  private pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    this.again = false;
    void this.loop().then(() => {
      this.pumping = false;
      if (this.again) this.pump();
      else this.checkDrained();
    });
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (this.closed) return this.leaveUnreported(this.ops.splice(0));
      const want = this.stopping ? 0 : this.opts.concurrency - this.inflight.size;
      if (!this.ops.length && (want <= 0 || this.empty)) break;
      const ops = this.ops.splice(0);
      const now = Date.now();
      // Looking for due delayed jobs costs a read per step: under load, every DELAYED_CHECK_MS is enough.
      const check = now - this.delayedCheckedAt >= DELAYED_CHECK_MS;
      let taken: Awaited<ReturnType<DeliveryQueue['step']>>;
      try {
        taken = await this.queue.step(ops, Math.max(0, want), now + this.opts.lockMs, `${this.prefix}.${this.seq++}.`, check, now);
      } catch (err) {
        // Reported runs are kept and sent again: each op is applied at most once (its lease member is gone).
        this.ops.unshift(...ops);
        if (this.closed) continue;
        this.opts.logger.warn({ err, ops: ops.length }, 'delivery queue step failed; retrying');
        this.retryTimer ??= setTimeout(() => {
          this.retryTimer = null;
          this.pump();
        }, RETRY_MS);
        this.retryTimer.unref();
        return;
      }
      if (check) {
        this.delayedCheckedAt = now;
        this.whenDue(taken.nextDue ?? null);
      }
      for (const job of taken.jobs) this.run(job, now + this.opts.lockMs);
      this.empty = want > 0 && taken.jobs.length < want;
    }
    // Idle: a wake-up, the earliest delayed job known (its own delays included), or idleWaitMs starts the next step.
    if (this.empty) this.waitForWork();
  }

  /** Blocks on the wake list until a producer or another runner says jobs are ready, or `idleWaitMs` passes. */
  private waitForWork(): void {
    if (this.waiting || this.stopping || !this.blocking) return;
    this.waiting = true;
    const seconds = (this.opts.idleWaitMs ?? 1000) / 1000;
    void this.queue.waitForWork(this.blocking, seconds).then(
      () => this.woken(0),
      (err: unknown) => {
        if (!this.stopping) this.opts.logger.debug({ err }, 'delivery queue wait failed');
        this.woken(RETRY_MS);
      },
    );
  }

  private woken(afterMs: number): void {
    this.waiting = false;
    if (this.stopping) return;
    const go = (): void => {
      this.empty = false;
      this.pump();
    };
    if (afterMs) setTimeout(go, afterMs).unref();
    else go();
  }

  /** Looks again when the earliest delayed job is due (if sooner than the timer already set). */
  private whenDue(nextDue: number | null): void {
    if (nextDue === null || this.stopping) return;
    if (this.dueTimer && this.dueTimer.at <= nextDue) return;
    if (this.dueTimer) clearTimeout(this.dueTimer.timer);
    const timer = setTimeout(
      () => {
        this.dueTimer = null;
        this.empty = false;
        // Due now: the next step must look at the delayed set.
        this.delayedCheckedAt = 0;
        this.pump();
      },
      Math.max(0, nextDue - Date.now()) + 5,
    );
    timer.unref();
    this.dueTimer = { at: nextDue, timer };
  }

  /** See {@link LeaseCheck}. */
  private async holds(run: Run): Promise<boolean> {
    if (run.lost) return false;
    const now = Date.now();
    if (now < run.until - this.opts.lockMs / 4) return true;
    // Closed: nothing goes to Redis any more; a lease that may run out before the record is taken as lost.
    if (this.closed) return false;
    await this.extend([run], now + this.opts.lockMs);
    return !run.lost;
  }

  /** Renews the leases of `runs` until `until`; a run whose job is no longer leased under its token is lost. */
  private async extend(runs: Run[], until: number): Promise<void> {
    const jobs = runs.map((r) => r.job);
    const lost = new Set(await this.queue.extend(jobs, until));
    for (const r of runs) {
      if (lost.has(r.job)) r.lost = true;
      else r.until = Math.max(r.until, until);
    }
    if (lost.size)
      this.opts.logger.warn({ jobs: [...lost].slice(0, 20).map((j) => j.id), count: lost.size }, 'delivery job lease lost: another worker may run it too');
  }

  private renewLeases(): void {
    const runs = [...this.inflight.values()].filter((r) => !r.lost);
    if (!runs.length) return;
    this.extend(runs, Date.now() + this.opts.lockMs).catch((err: unknown) => this.opts.logger.warn({ err }, 'delivery job lease renewal failed'));
  }

  private recoverStalled(): void {
    this.queue.recover(this.opts.maxStalls).then(
      (r) => {
        if (r.returned || r.failed) this.opts.onLeasesExpired?.({ returned: r.returned, failed: r.failed });
        if (r.returned) this.opts.logger.warn({ jobs: r.returned }, 'delivery jobs whose worker stopped renewing their lease were put back');
        if (r.failed) this.opts.logger.error({ jobs: r.failed }, 'delivery jobs lost their lease too often and failed; the reconciler will retry them');
        if (r.returned) {
          this.empty = false;
          this.pump();
        }
      },
      (err: unknown) => this.opts.logger.debug({ err }, 'delivery queue recovery pass failed'),
    );
  }

  private checkDrained(): void {
    if (this.drained && !this.inflight.size && !this.ops.length && !this.pumping) this.drained();
  }
}
