/**
 * The delivery queue: one job per message and destination domain, in Redis, driven by the scripts of
 * queue-scripts.ts. It replaced BullMQ for delivery (README, "Why the delivery queue is not BullMQ"): a job
 * costs about 10 Redis commands from enqueue to completion instead of BullMQ's 37, and a worker completes
 * and takes jobs in one round trip. Webhooks still run on BullMQ.
 */
import type { Redis } from 'ioredis';
import type { Priority } from '../config/schema.js';
import type { DeliveryQueueKeys, Keys } from '../store/keys.js';
import { withQueueScripts, type QueueRedis } from './queue-scripts.js';

/** A delivery job: ids only, never bodies or secrets. One job per message and destination domain. */
export interface DeliveryJobData {
  messageId: string;
  domain: string;
  priority: Priority;
}

/**
 * Priority rank: lower runs first, so verification mail overtakes everything else. Verification's rank (1) also
 * names the queue scripts' delayed lane (queue-scripts.ts `LANE_RANK`).
 */
export const PRIORITY_RANK: Record<Priority, number> = { verification: 1, normal: 5, bulk: 10 };
const RANK_SPAN = 1e13;

/**
 * A job that throws (Redis not answering, a timeout, a bug) is retried with this back-off, never parked:
 * whether a message is final is decided only by its own state machine (delivered, bounced, expired,
 * cancelled), and a message whose TTL passes while its job keeps failing is expired by the next run.
 */
export const INFRA_ATTEMPTS = 1_000_000;
const INFRA_BACKOFF_MAX_MS = 60_000;
/** Failed jobs (after INFRA_ATTEMPTS, or a lease lost too often) are kept this long for the reconciler and admins. */
export const FAILED_RETENTION_MS = 7 * 86_400_000;

/** Delay before the `attemptsMade`th retry of a job that threw: 1 s doubling to 60 s, with ±20 % jitter. */
export function infrastructureBackoff(attemptsMade: number): number {
  const base = Math.min(INFRA_BACKOFF_MAX_MS, 1000 * 2 ** Math.max(0, Math.min(attemptsMade - 1, 16)));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** What the queue holds for one delivery job: live (waiting, delayed, active), failed, or nothing. */
export type JobPresence = 'live' | 'failed' | 'missing';
/** Where a job is: `waiting` is ready to run (taken in priority order). */
export type JobState = 'waiting' | 'delayed' | 'active' | 'failed' | 'missing';
export const JOB_STATES = ['waiting', 'delayed', 'active', 'failed'] as const;

/** A job as stored, with its counters. */
export interface QueuedJob {
  id: string;
  data: DeliveryJobData;
  /** When it was enqueued (ms). */
  timestamp: number;
  /** Runs that threw. */
  attemptsMade: number;
  /** Runs started: for a taken job, this one included; otherwise the runs that have ended. */
  attemptsStarted: number;
  /** The token of the run holding it (taken jobs only). */
  token: string;
  /**
   * The job's message hash (field, value, …) as the step that took the job read it, so the worker need not read it
   * again; absent when the message was gone, not in the one-hash layout's shape, or its body over
   * {@link PRELOAD_MAX_BYTES}.
   */
  message?: Buffer[];
}

/** The largest message body a step reads with its job: a step's reply holds up to `concurrency` of them. */
export const PRELOAD_MAX_BYTES = 64 * 1024;

/** What a worker reports of a run: completed, run again at `at`, or threw (an attempt; back-off `at`). */
export interface StepOp {
  kind: 'c' | 'd' | 'e';
  id: string;
  token: string;
  at: number;
}

interface StoredJob {
  m: string;
  d: string;
  p: Priority;
  r: number;
  t: number;
  a?: number;
  s?: number;
  st?: number;
  k?: string;
}

/** Deterministic job id, so an enqueue repeated after a crash or an idempotent retry adds nothing. */
export function deliveryJobId(messageId: string, domain: string): string {
  return `${messageId}_${domain}`;
}

/**
 * The arguments that add a message's jobs (one per destination domain, enqueued at `now`, ready at once):
 * groups of (job id, JSON, ready score, due ms or 0), as the queue's `enqueueJobs` Lua function takes them; a
 * `runAt` later than `now` puts them in the delayed set until then.
 */
export function jobArgs(messageId: string, priority: Priority, domains: readonly string[], now: number, runAt = 0): Array<string | number> {
  const argv: Array<string | number> = [];
  for (const domain of domains) {
    const job: StoredJob = { m: messageId, d: domain, p: priority, r: PRIORITY_RANK[priority], t: now };
    argv.push(deliveryJobId(messageId, domain), JSON.stringify(job), PRIORITY_RANK[priority] * RANK_SPAN + now, runAt > now ? runAt : 0);
  }
  return argv;
}

function parseJob(id: string, raw: string): QueuedJob {
  const j = JSON.parse(raw) as StoredJob;
  return { id, data: { messageId: j.m, domain: j.d, priority: j.p }, timestamp: j.t, attemptsMade: j.a ?? 0, attemptsStarted: j.s ?? 0, token: j.k ?? '' };
}

/** The delivery queue on one Redis: producer, worker steps and admin operations. */
export class DeliveryQueue {
  readonly redis: QueueRedis;
  readonly keys: DeliveryQueueKeys;

  /** Where a job's message lives (`keys.message('')`): the step reads it with the job. */
  private readonly messagePrefix: string;

  constructor(connection: Redis, keys: Keys) {
    this.redis = withQueueScripts(connection);
    this.keys = keys.deliveryQueue();
    this.messagePrefix = keys.message('');
  }

  private args(...names: Array<keyof DeliveryQueueKeys>): string[] {
    return names.map((n) => this.keys[n]);
  }

  /** Adds one job per destination domain of a message (a job id already present, live or failed, is kept). */
  async enqueue(messageId: string, priority: Priority, domains: string[], now = Date.now()): Promise<number> {
    const argv = jobArgs(messageId, priority, domains, now);
    if (!argv.length) return 0;
    return this.redis.kurirQueueEnqueue(...this.args('jobs', 'ready', 'delayed', 'wake', 'delayedVerification'), ...argv);
  }

  /** Adds one job, ready now or delayed until `runAt` (ms). */
  async add(data: DeliveryJobData, runAt = 0, now = Date.now()): Promise<boolean> {
    const argv = jobArgs(data.messageId, data.priority, [data.domain], now, runAt);
    return (await this.redis.kurirQueueEnqueue(...this.args('jobs', 'ready', 'delayed', 'wake', 'delayedVerification'), ...argv)) === 1;
  }

  /** The queue holding a message's jobs (with `redis.shards`, the one on the message's shard). */
  async queueFor(_messageId: string): Promise<DeliveryQueue> {
    return this;
  }

  /** {@link queueFor} for many messages at once, in their order. */
  async queuesFor(messageIds: readonly string[]): Promise<DeliveryQueue[]> {
    return messageIds.map(() => this);
  }

  /** One job, or null. */
  async getJob(jobId: string): Promise<QueuedJob | null> {
    const raw = await this.redis.hget(this.keys.jobs, jobId);
    return raw ? parseJob(jobId, raw) : null;
  }

  /** Where a job is, in one atomic round trip (a job in none of the other sets is held by a run: active). */
  async getState(jobId: string): Promise<JobState> {
    const tx = this.redis.multi().hexists(this.keys.jobs, jobId);
    for (const set of ['delayed', 'failed', 'ready'] as const) tx.zscore(this.keys[set], jobId);
    const [exists, delayed, failed, ready] = ((await tx.exec()) ?? []).map(([err, v]) => {
      if (err) throw err;
      return v as string | number | null;
    });
    if (!exists) return 'missing';
    return delayed !== null ? 'delayed' : failed !== null ? 'failed' : ready !== null ? 'waiting' : 'active';
  }

  /** Moves delayed jobs to ready now (priority kept); returns how many moved (gone or running ones are skipped). */
  async promote(jobIds: string[]): Promise<number> {
    if (!jobIds.length) return 0;
    return this.redis.kurirQueuePromote(...this.args('jobs', 'ready', 'delayed', 'wake', 'delayedVerification'), '0', ...jobIds);
  }

  /** Moves a failed job back to ready (its priority kept, its failure counts reset). False if it is not failed. */
  async retryFailed(jobId: string): Promise<boolean> {
    return (await this.redis.kurirQueuePromote(...this.args('jobs', 'ready', 'failed', 'wake', 'delayedVerification'), '1', jobId)) === 1;
  }

  /** Removes a job that is not running: `running` when a worker holds it (it is kept). */
  async removeJob(jobId: string): Promise<'removed' | 'missing' | 'running'> {
    const r = await this.redis.kurirQueueRemove(...this.args('jobs', 'ready', 'delayed', 'failed', 'delayedVerification'), jobId);
    return r === 1 ? 'removed' : r === -1 ? 'running' : 'missing';
  }

  /** Whether each job exists, and whether it sits in the failed set, in one round trip. */
  async presence(jobIds: string[]): Promise<JobPresence[]> {
    if (!jobIds.length) return [];
    const tx = this.redis.pipeline();
    for (const id of jobIds) tx.hexists(this.keys.jobs, id).zscore(this.keys.failed, id);
    const res = (await tx.exec()) ?? [];
    return jobIds.map((_, i) => {
      const [errExists, exists] = res[2 * i] ?? [];
      const [errFailed, failedScore] = res[2 * i + 1] ?? [];
      if (errExists || errFailed) throw errExists ?? errFailed;
      if (failedScore !== null && failedScore !== undefined) return 'failed';
      return exists ? 'live' : 'missing';
    });
  }

  /** Ids of up to `limit` jobs in the failed set, oldest first. */
  async failedIds(limit: number): Promise<string[]> {
    return this.redis.zrange(this.keys.failed, '0', String(limit - 1));
  }

  /** Job counts by state, and the ready (waiting) jobs per priority, in one round trip. */
  async counts(): Promise<{ states: Record<(typeof JOB_STATES)[number], number>; readyByPriority: Record<Priority, number> }> {
    const tx = this.redis.pipeline().zcard(this.keys.ready).zcard(this.keys.delayed).zcard(this.keys.active).zcard(this.keys.failed);
    const priorities = Object.keys(PRIORITY_RANK) as Priority[];
    for (const p of priorities) tx.zcount(this.keys.ready, PRIORITY_RANK[p] * RANK_SPAN, `(${(PRIORITY_RANK[p] + 1) * RANK_SPAN}`);
    const res = ((await tx.exec()) ?? []).map(([err, v]) => {
      if (err) throw err;
      return Number(v);
    });
    const [waiting, delayed, active, failed] = res;
    const readyByPriority = Object.fromEntries(priorities.map((p, i) => [p, res[4 + i]])) as Record<Priority, number>;
    return { states: { waiting, delayed, active, failed }, readyByPriority };
  }

  /** Up to `limit` jobs of one state, in the state's order (ready: verification first, then oldest). */
  async sample(state: (typeof JOB_STATES)[number], limit: number): Promise<QueuedJob[]> {
    const members = await this.redis.zrange(this.keys[state === 'waiting' ? 'ready' : state], '0', String(limit - 1));
    // An active member is "<id> <token>".
    const ids = state === 'active' ? members.map((m) => m.slice(0, m.indexOf(' '))) : members;
    if (!ids.length) return [];
    const raws = await this.redis.hmget(this.keys.jobs, ...ids);
    return ids.flatMap((id, i) => (raws[i] ? [parseJob(id, raws[i])] : []));
  }

  /**
   * A worker's round trip: reports finished runs (`ops`), moves due delayed jobs to ready when `checkDelayed`,
   * and takes up to `take` jobs, leased until `leaseUntil` under tokens starting with `tokenPrefix`. Returns the
   * taken jobs and when the earliest delayed job is due (null: none; undefined: not checked).
   */
  async step(
    ops: StepOp[],
    take: number,
    leaseUntil: number,
    tokenPrefix: string,
    checkDelayed = true,
    now = Date.now(),
  ): Promise<{ jobs: QueuedJob[]; nextDue: number | null | undefined }> {
    const argv: Array<string | number> = [now, leaseUntil, take, INFRA_ATTEMPTS, tokenPrefix, checkDelayed ? '1' : '0', ops.length];
    argv.push(this.messagePrefix, PRELOAD_MAX_BYTES);
    for (const op of ops) argv.push(op.kind, op.id, op.token, op.at);
    const [taken, next] = await this.redis.kurirQueueStepBuffer(
      ...this.args('jobs', 'ready', 'delayed', 'active', 'failed', 'wake', 'delayedVerification'),
      ...argv,
    );
    const jobs: QueuedJob[] = [];
    for (let i = 0; i < taken.length; i += 3) {
      const job = parseJob(String(taken[i]), String(taken[i + 1]));
      const message = taken[i + 2];
      if (Array.isArray(message)) job.message = message;
      jobs.push(job);
    }
    return { jobs, nextDue: next === null ? undefined : next.length === 0 ? null : Number(next.toString()) };
  }

  /**
   * Renews the leases of running jobs, also one that ran out while no other runner took its job yet; returns those
   * of `held` whose job is no longer leased under their token (put back, failed, or taken by another run).
   */
  async extend<T extends { id: string; token: string }>(held: readonly T[], leaseUntil: number): Promise<T[]> {
    if (!held.length) return [];
    const lost = new Set(await this.redis.kurirQueueExtend(this.keys.active, leaseUntil, ...held.flatMap((h) => [h.id, h.token])));
    return held.filter((_, i) => lost.has(i));
  }

  /** Returns jobs whose lease ran out to ready (failed after `maxStalls` times) and drops expired failed jobs. */
  async recover(maxStalls: number, now = Date.now()): Promise<{ returned: number; failed: number; dropped: number }> {
    const [returned, failed, dropped] = await this.redis.kurirQueueRecover(
      ...this.args('jobs', 'ready', 'active', 'failed', 'wake'),
      now,
      maxStalls,
      now - FAILED_RETENTION_MS,
    );
    return { returned, failed, dropped };
  }

  /** Waits (on a connection of its own: it blocks) until a job may be ready, at most `timeoutSeconds`. */
  async waitForWork(blocking: Redis, timeoutSeconds: number): Promise<void> {
    await blocking.blpop(this.keys.wake, timeoutSeconds);
  }

  /** Nothing to release: the connection belongs to the caller. Kept so owners close every queue alike. */
  async close(): Promise<void> {}
}
