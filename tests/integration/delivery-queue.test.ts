/**
 * The delivery queue (src/queue/delivery-queue.ts, queue-scripts.ts) and its runner (src/queue/job-runner.ts)
 * against the shared real Redis: order, idempotence, delays, leases and their recovery, admin moves, and
 * several runners sharing one queue, and reports kept through a Redis restart; the lease check a run makes before
 * it records its outcome (a lapsed lease nobody took is still the run's, one whose job was taken again is not); a run
 * that ends after its runner closed, left to its lease without a command to Redis.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/logger.js';
import { DeliveryQueue, deliveryJobId, FAILED_RETENTION_MS, type QueuedJob } from '../../src/queue/delivery-queue.js';
import { JobRunner, type LeaseCheck, type RunResult } from '../../src/queue/job-runner.js';
import { createKeys } from '../../src/store/keys.js';
import { createRedis, waitReady } from '../../src/store/redis.js';
import { startPrivateRedis } from '../helpers/private-redis.js';
import { dropPrefix } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

const logger = createLogger({ level: 'silent' });
let redis: Redis;
let prefix = '';
let queue: DeliveryQueue;
const extra: Redis[] = [];

beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
});
beforeEach(async () => {
  if (prefix) await dropPrefix(prefix);
  prefix = `kurir-test-dq-${Math.random().toString(36).slice(2, 8)}`;
  queue = new DeliveryQueue(redis, createKeys(prefix));
});
afterAll(async () => {
  for (const r of extra) r.disconnect();
  await redis.quit();
  await dropPrefix(prefix);
});

/** A queue on a connection of its own, as each gateway process has. */
function ownQueue(): DeliveryQueue {
  const r = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  extra.push(r);
  return new DeliveryQueue(r, createKeys(prefix));
}

const ids = (jobs: QueuedJob[]): string[] => jobs.map((j) => j.id);

it('hands out verification first, then normal, then bulk, oldest first within a priority', async () => {
  const t = Date.now();
  await queue.enqueue('b1', 'bulk', ['x.test'], t);
  await queue.enqueue('n1', 'normal', ['x.test'], t + 1);
  await queue.enqueue('b2', 'bulk', ['x.test', 'y.test'], t + 2);
  await queue.enqueue('v1', 'verification', ['x.test'], t + 3);
  expect((await queue.counts()).readyByPriority).toEqual({ verification: 1, normal: 1, bulk: 3 });
  const { jobs } = await queue.step([], 10, t + 60_000, 'w.');
  expect(ids(jobs)).toEqual(['v1_x.test', 'n1_x.test', 'b1_x.test', 'b2_x.test', 'b2_y.test']);
  expect(jobs[0]).toMatchObject({ data: { messageId: 'v1', domain: 'x.test', priority: 'verification' }, attemptsStarted: 1, attemptsMade: 0 });
  // A run's token: the step's prefix and the job's run number (unique per job and run).
  expect(jobs.map((j) => j.token)).toEqual(Array(5).fill('w.1'));
  expect((await queue.counts()).states).toEqual({ waiting: 0, delayed: 0, active: 5, failed: 0 });
});

it('adds a job id once: a repeated enqueue, or one of a failed job, changes nothing', async () => {
  expect(await queue.enqueue('m1', 'normal', ['x.test'])).toBe(1);
  expect(await queue.enqueue('m1', 'normal', ['x.test'])).toBe(0);
  await queue.step([], 1, Date.now() - 1, 'dead.');
  expect(await queue.recover(0)).toMatchObject({ failed: 1 });
  expect(await queue.enqueue('m1', 'normal', ['x.test'])).toBe(0);
  expect(await queue.getState(deliveryJobId('m1', 'x.test'))).toBe('failed');
  expect(await queue.presence(['m1_x.test', 'm2_x.test'])).toEqual(['failed', 'missing']);
});

it('runs a delayed job again when due with its priority, counting a run but not an attempt; a throw counts an attempt', async () => {
  const t = Date.now();
  await queue.enqueue('m1', 'verification', ['x.test'], t);
  await queue.enqueue('m2', 'bulk', ['x.test'], t);
  const [first] = (await queue.step([], 1, t + 60_000, 'a.', true, t)).jobs;
  const held = await queue.step([{ kind: 'd', id: first.id, token: first.token, at: t + 5000 }], 0, t + 60_000, 'a.', true, t);
  expect(held.nextDue).toBe(t + 5000);
  expect(await queue.getState(first.id)).toBe('delayed');
  // Not yet due: the bulk job comes first.
  expect(ids((await queue.step([], 1, t + 60_000, 'b.', true, t + 1000)).jobs)).toEqual(['m2_x.test']);
  // Due, but a step told not to look at delayed jobs neither moves it nor says when the next is due.
  expect(await queue.step([], 1, t + 60_000, 'b.', false, t + 5000)).toEqual({ jobs: [], nextDue: undefined });
  const [again] = (await queue.step([], 1, t + 60_000, 'c.', true, t + 5000)).jobs;
  expect(again).toMatchObject({ id: 'm1_x.test', attemptsStarted: 2, attemptsMade: 0 });
  await queue.step([{ kind: 'e', id: again.id, token: again.token, at: t + 5000 }], 0, t + 60_000, 'c.', true, t + 5000);
  const [third] = (await queue.step([], 1, t + 60_000, 'd.', true, t + 5000)).jobs;
  expect(third).toMatchObject({ id: 'm1_x.test', attemptsStarted: 3, attemptsMade: 1 });
  await queue.step([{ kind: 'c', id: third.id, token: third.token, at: 0 }], 0, t + 60_000, 'd.', true, t + 5000);
  expect(await queue.getJob(third.id)).toBeNull();
  expect(await queue.getState(third.id)).toBe('missing');
});

it('moves a due verification retry to ready in the first step, even behind more than 200 due bulk retries', async () => {
  const t = Date.now();
  const lane = createKeys(prefix).deliveryQueue().delayedVerification;
  for (let i = 0; i < 250; i++) await queue.enqueue(`b${i}`, 'bulk', ['x.test'], t);
  await queue.enqueue('v', 'verification', ['x.test'], t);
  await queue.enqueue('late', 'verification', ['x.test'], t);
  const taken = (await queue.step([], 300, t + 60_000, 'a.', true, t)).jobs;
  expect(taken).toHaveLength(252);
  // Each run defers its job (a retry): the bulk ones due first, the verification one last; another not yet due.
  const at = (id: string, i: number) => (id === 'v_x.test' ? t + 2000 : id === 'late_x.test' ? t + 60_000 : t + 1000 + i);
  await queue.step(
    taken.map((j, i) => ({ kind: 'd', id: j.id, token: j.token, at: at(j.id, i) })),
    0,
    t + 60_000,
    'a.',
    true,
    t,
  );
  // One step, one job to take: the verification retry, although 250 bulk retries were due before it.
  const first = await queue.step([], 1, t + 60_000, 'b.', true, t + 5000);
  expect(ids(first.jobs)).toEqual(['v_x.test']);
  expect(await queue.getState('late_x.test')).toBe('delayed'); // not due: it stays, in its lane too
  expect(await redis.zrange(lane, '0', '-1')).toEqual(['late_x.test']);
  // The rest of the backlog still moves, 200 per step, oldest first; a removed or promoted job leaves the lane.
  expect((await queue.counts()).states).toMatchObject({ waiting: 200, delayed: 51 });
  await queue.add({ messageId: 'sched', domain: 'x.test', priority: 'verification' }, t + 3_600_000, t);
  expect(await redis.zcard(lane)).toBe(2);
  expect(await queue.removeJob('late_x.test')).toBe('removed');
  expect(await queue.promote(['sched_x.test'])).toBe(1);
  expect(await redis.exists(lane)).toBe(0);
});

it('ignores the report of a run whose lease ran out and was taken again; renewal names the lost job', async () => {
  await queue.enqueue('m1', 'normal', ['x.test']);
  const [stale] = (await queue.step([], 1, Date.now() - 1, 'old.')).jobs;
  expect(await queue.recover(10)).toMatchObject({ returned: 1, failed: 0 });
  const [fresh] = (await queue.step([], 1, Date.now() + 60_000, 'new.')).jobs;
  expect(fresh.token).not.toBe(stale.token);
  expect(await queue.extend([stale, fresh], Date.now() + 60_000)).toEqual([stale]);
  await queue.step([{ kind: 'c', id: stale.id, token: stale.token, at: 0 }], 0, 0, 'old.');
  expect(await queue.getState(fresh.id)).toBe('active');
  await queue.step([{ kind: 'c', id: fresh.id, token: fresh.token, at: 0 }], 0, 0, 'new.');
  expect(await queue.getState(fresh.id)).toBe('missing');
});

it('retries a failed job with its counts reset, promotes delayed ones, removes all but running ones, drops old failures', async () => {
  const t = Date.now();
  await queue.enqueue('f', 'normal', ['x.test'], t);
  await queue.step([], 1, t - 1, 'dead.');
  await queue.recover(0);
  expect(await queue.failedIds(10)).toEqual(['f_x.test']);
  expect(await queue.retryFailed('f_x.test')).toBe(true);
  expect(await queue.retryFailed('f_x.test')).toBe(false);
  expect(await queue.getState('f_x.test')).toBe('waiting');

  await queue.add({ messageId: 'd', domain: 'x.test', priority: 'bulk' }, t + 3_600_000, t);
  expect(await queue.getState('d_x.test')).toBe('delayed');
  expect(await queue.promote(['d_x.test', 'nope_x.test'])).toBe(1);
  expect(await queue.getState('d_x.test')).toBe('waiting');

  const [running] = (await queue.step([], 1, t + 60_000, 'w.')).jobs;
  expect(running.id).toBe('f_x.test');
  expect(await queue.removeJob(running.id)).toBe('running');
  expect(await queue.removeJob('d_x.test')).toBe('removed');
  expect(await queue.removeJob('d_x.test')).toBe('missing');

  await queue.enqueue('old', 'normal', ['x.test'], t);
  await queue.step([], 1, t - 1, 'dead.');
  await queue.recover(0, t);
  expect(await queue.recover(0, t + FAILED_RETENTION_MS + 1)).toMatchObject({ dropped: 1 });
  expect(await queue.getState('old_x.test')).toBe('missing');
});

it('runs every job exactly once across two runners, re-runs delayed and failing ones, and wakes an idle runner on enqueue', async () => {
  const runs = new Map<string, number>();
  const process = async (job: QueuedJob): Promise<RunResult> => {
    runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
    await new Promise((r) => setTimeout(r, 2));
    if (job.data.messageId === 'later' && job.attemptsStarted === 1) return { kind: 'd', at: Date.now() + 100 };
    if (job.data.messageId === 'boom' && job.attemptsMade === 0) throw new Error('Redis went away');
    return { kind: 'c' };
  };
  // A long idle wait: only the wake-up list can start the runners promptly.
  const opts = { concurrency: 3, lockMs: 30_000, maxStalls: 10, backoff: () => 50, logger, idleWaitMs: 60_000 };
  const a = new JobRunner(ownQueue(), process, opts);
  const b = new JobRunner(ownQueue(), process, opts);
  a.start();
  b.start();
  try {
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 60; i++) await queue.enqueue(`m${i}`, i % 2 ? 'bulk' : 'normal', ['x.test']);
    await queue.enqueue('later', 'normal', ['x.test']);
    await queue.enqueue('boom', 'normal', ['x.test']);
    await until(async () => (Object.values((await queue.counts()).states).every((n) => n === 0) ? true : null), 10_000, 'an empty queue');
    expect(runs.size).toBe(62);
    expect([...runs.entries()].filter(([, n]) => n !== 1).sort()).toEqual([
      ['boom_x.test', 2],
      ['later_x.test', 2],
    ]);
  } finally {
    await Promise.all([a.close(1000), b.close(1000)]);
  }
});

it('leaves a job still running at close to another runner once its lease runs out', async () => {
  let release: () => void = () => undefined;
  const stuck = new Promise<void>((r) => (release = r));
  const a = new JobRunner(
    ownQueue(),
    async () => {
      await stuck;
      return { kind: 'c' };
    },
    { concurrency: 1, lockMs: 1000, maxStalls: 10, backoff: () => 50, logger },
  );
  a.start();
  await queue.enqueue('m1', 'normal', ['x.test']);
  await until(async () => ((await queue.getState('m1_x.test')) === 'active' ? true : null), 5000, 'the job to run');
  await a.close(50);
  expect(a.isRunning()).toBe(false);
  const done: string[] = [];
  const expired: Array<{ returned: number; failed: number }> = [];
  const b = new JobRunner(
    ownQueue(),
    async (job) => {
      done.push(`${job.id}#${job.attemptsStarted}`);
      return { kind: 'c' };
    },
    { concurrency: 1, lockMs: 1000, maxStalls: 10, backoff: () => 50, logger, onLeasesExpired: (r) => expired.push(r) },
  );
  b.start();
  try {
    await until(async () => (done.length ? true : null), 5000, 'the second runner to take it');
    expect(done).toEqual(['m1_x.test#2']);
    // Counted by the runner whose recovery pass found it (kurir_queue_leases_expired_total).
    expect(expired).toEqual([{ returned: 1, failed: 0 }]);
    // The first run ends late: its report is ignored, and nothing runs a third time.
    release();
    await new Promise((r) => setTimeout(r, 200));
    expect(await queue.getState('m1_x.test')).toBe('missing');
  } finally {
    await b.close(1000);
  }
});

it('keeps the reports of runs that ended while its Redis was down and applies each once when it is back', async () => {
  // A redis-server of its own (restarted here; AOF with appendfsync always), reached like a gateway does.
  const priv = await startPrivateRedis({ appendfsync: 'always' });
  const conn = createRedis(priv.url, 'command');
  conn.on('error', () => undefined);
  await waitReady(conn);
  const q = new DeliveryQueue(conn, createKeys(prefix));
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => (open = r));
  const runs = new Map<string, number>();
  const runner = new JobRunner(
    q,
    async (job) => {
      runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
      await gate;
      return { kind: 'c' };
    },
    { concurrency: 5, lockMs: 30_000, maxStalls: 10, backoff: () => 50, logger, idleWaitMs: 200 },
  );
  try {
    for (let i = 0; i < 12; i++) await q.enqueue(`r${i}`, 'normal', ['x.test']);
    runner.start();
    await until(async () => (runs.size === 5 ? true : null), 5000, 'five runs to start');
    await priv.shutdown();
    // The five runs end with Redis down: their reports cannot be written and are kept.
    open();
    await new Promise((r) => setTimeout(r, 1500));
    expect(runs.size).toBe(5);
    await priv.start();
    await until(async () => (runs.size === 12 && Object.values((await q.counts()).states).every((n) => n === 0) ? true : null), 15_000, 'an empty queue');
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(await conn.hlen(createKeys(prefix).deliveryQueue().jobs)).toBe(0);
  } finally {
    await runner.close(1000);
    conn.disconnect();
    await priv.destroy();
  }
});

/** Blocks the event loop (and so the runner's renewals) for `ms`. */
function blockEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** A run that waits for `release` and keeps its lease check. */
interface HeldRun {
  check: LeaseCheck;
  release: () => void;
}

it('tells a run whether it holds its lease: true for a lapsed lease nobody took (renewing it), false once the job was taken again', async () => {
  const runs: HeldRun[] = [];
  const runner = new JobRunner(
    ownQueue(),
    async (_job, check) => {
      await new Promise<void>((release) => runs.push({ check, release }));
      return { kind: 'c' };
    },
    { concurrency: 2, lockMs: 1000, maxStalls: 10, backoff: () => 50, logger },
  );
  runner.start();
  try {
    await queue.enqueue('m1', 'normal', ['x.test']);
    await until(async () => runs.length === 1, 5000, 'the first run');
    expect(await runs[0].check()).toBe(true);

    // Renewals stop for longer than the lease; nobody takes the job: the run still holds it, renewed.
    blockEventLoop(1500);
    expect(await runs[0].check()).toBe(true);
    const [member, score] = await redis.zrange(createKeys(prefix).deliveryQueue().active, '0', '-1', 'WITHSCORES');
    expect(member.startsWith('m1_x.test ')).toBe(true);
    expect(Number(score)).toBeGreaterThan(Date.now());

    // Renewals stop again, and a recovery pass puts the job back before the next renewal (else try again).
    for (let i = 0; i < 5 && runs.length < 2; i++) {
      blockEventLoop(1500);
      await queue.recover(10);
      await until(async () => runs.length === 2, 2000, 'a second run').catch(() => undefined);
    }
    expect(runs.length).toBe(2);
    expect(await runs[0].check()).toBe(false);
    expect(await runs[1].check()).toBe(true);
    expect(runner.running).toBe(2);

    // The first run's report is ignored; the second one's completes the job.
    runs[0].release();
    await new Promise((r) => setTimeout(r, 200));
    expect(await queue.getState('m1_x.test')).toBe('active');
    runs[1].release();
    await until(async () => (await queue.getState('m1_x.test')) === 'missing', 5000, 'the job to complete');
    expect(runner.running).toBe(0);
  } finally {
    await runner.close(1000);
  }
});

it('sends nothing to Redis for a run that ends after its runner closed: one warn line, and the job is taken again once its lease runs out', async () => {
  // The gateway closes its Redis clients right after the runner: until 2 Dec 2026 the late run's report was retried
  // every second against the closed client for as long as the process lived.
  const lines: Array<Record<string, any>> = [];
  const log = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, any>) } });
  const conn = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  conn.on('error', () => undefined);
  let release: () => void = () => undefined;
  const stuck = new Promise<void>((r) => (release = r));
  const ended: string[] = [];
  const a = new JobRunner(
    new DeliveryQueue(conn, createKeys(prefix)),
    async (job) => {
      await stuck;
      ended.push(job.id);
      return { kind: 'c' };
    },
    { concurrency: 1, lockMs: 1000, maxStalls: 10, backoff: () => 50, logger: log },
  );
  a.start();
  await queue.enqueue('m1', 'normal', ['x.test']);
  await until(async () => ((await queue.getState('m1_x.test')) === 'active' ? true : null), 5000, 'the job to run');
  let afterGrace = 0;
  await a.close(50, async () => void afterGrace++);
  conn.disconnect();
  // Every command on the closed client, whatever sends it.
  let attempted = 0;
  const send = conn.sendCommand.bind(conn);
  conn.sendCommand = ((...args: Parameters<typeof send>) => {
    attempted++;
    return send(...args);
  }) as typeof conn.sendCommand;

  release();
  await until(() => ended.length === 1, 2000, 'the late run to end');
  await new Promise((r) => setTimeout(r, 2500));
  expect(attempted).toBe(0);
  const unreported = lines.filter((l) => l.msg?.includes('not reported to the queue'));
  expect(unreported).toEqual([expect.objectContaining({ level: 40, jobs: [{ id: 'm1_x.test', result: 'completed' }], count: 1 })]);
  expect(lines.filter((l) => l.msg?.startsWith('delivery queue step failed'))).toEqual([]);
  expect(afterGrace).toBe(1);

  // As the line says: the job is still leased, and once its lease has run out another runner takes it.
  const done: string[] = [];
  const b = new JobRunner(
    ownQueue(),
    async (job) => {
      done.push(`${job.id}#${job.attemptsStarted}`);
      return { kind: 'c' };
    },
    { concurrency: 1, lockMs: 1000, maxStalls: 10, backoff: () => 50, logger },
  );
  b.start();
  try {
    await until(async () => (done.length ? true : null), 5000, 'the second runner to take it');
    expect(done).toEqual(['m1_x.test#2']);
    await until(async () => ((await queue.getState('m1_x.test')) === 'missing' ? true : null), 5000, 'the job to complete');
  } finally {
    await b.close(1000);
  }
});
