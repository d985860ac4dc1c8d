/**
 * A pool of node:worker_threads threads for CPU-heavy reading that must stay off the event loop: DMARC and
 * TLS reports (src/feedback/aggregate/report-pool.ts) and DSN / ARF reports (src/feedback/ingest/parse-pool.ts).
 * One job per thread at a time; threads start with the first job and are reused. The thread module answers
 * with {@link serveJobs}.
 *
 * Every run resolves, never rejects: a job over `maxRunMs` has its thread stopped and is answered with the
 * owner's `timeout` refusal; a thread that dies answers its job `died`; more than `maxQueued` jobs waiting
 * for a thread are answered `busy` at once (temporary: the sender retries), as is everything once the pool
 * closes. The next job after a stopped or dead thread gets a new thread.
 */
import { parentPort, type ResourceLimits, type Worker } from 'node:worker_threads';
import type { Logger } from './logger.js';
import { startWorker } from './worker-thread.js';

/** Why the pool answered a job itself instead of its thread. */
export type PoolRefusal = 'busy' | 'timeout' | 'died';

export interface WorkerPoolOptions<Res> {
  /** The thread module: a sibling of `callerUrl` (the owner's import.meta.url), named without extension. */
  callerUrl: string;
  file: string;
  /** The threads' name (diagnostics) and the log component. */
  name: string;
  component: string;
  /** Threads running jobs at the same time (at least 1). */
  threads: number;
  /** Jobs waiting for a thread; more are refused as `busy`. */
  maxQueued: number;
  /** Wall-clock milliseconds one job may take once its thread runs. */
  maxRunMs: number;
  /** The settings behind `maxQueued` and `maxRunMs`, named in the refusals' details. */
  settings: { threads: string; maxQueued: string; maxRunSeconds: string };
  /** The owner's answer for a job the pool could not have read: `detail` says why, in a sentence. */
  refusal(why: PoolRefusal, detail: string): Res;
  logger?: Logger;
  /** Heap limits of each thread (a thread over them dies: `died` for its job). */
  resourceLimits?: ResourceLimits;
}

/** The thread's answers: once when it has loaded, then one result per job. */
export type FromPoolWorker<Res> = { ready: true } | { result: Res };

interface Job<Req, Res> {
  message: Req;
  transfer: ArrayBuffer[];
  resolve: (res: Res) => void;
}

interface Slot<Req, Res> {
  worker: Worker | null;
  ready: boolean;
  job: Job<Req, Res> | null;
  timer: NodeJS.Timeout | null;
}

/** How long a new thread may take to load its modules (tsx compiles them in dev) before its job's time counts. */
const STARTUP_ALLOWANCE_MS = 30_000;

/** A pool of job threads; see the module comment. */
export class WorkerPool<Req, Res> {
  private readonly slots: Array<Slot<Req, Res>>;
  private readonly queue: Array<Job<Req, Res>> = [];
  private closing = false;

  constructor(private readonly opts: WorkerPoolOptions<Res>) {
    if (!(opts.threads >= 1)) throw new Error(`${opts.settings.threads}: a pool needs at least 1 thread, got ${opts.threads}`);
    this.slots = Array.from({ length: opts.threads }, () => ({ worker: null, ready: false, job: null, timer: null }));
  }

  /**
   * Runs one job in a pool thread: the thread's result, or the owner's refusal. `message` is posted to the
   * thread with `transfer` moved, not copied (the caller must not use those buffers again).
   */
  run(message: Req, transfer: ArrayBuffer[] = []): Promise<Res> {
    return new Promise((resolve) => {
      const { refusal, settings } = this.opts;
      if (this.closing) return resolve(refusal('busy', 'the gateway is shutting down'));
      const job: Job<Req, Res> = { message, transfer, resolve };
      const idle = this.slots.find((s) => !s.job);
      if (idle) this.start(idle, job);
      else if (this.queue.length < this.opts.maxQueued) this.queue.push(job);
      else resolve(refusal('busy', `${this.queue.length} reports are already waiting to be read (${settings.maxQueued}); try again later`));
    });
  }

  /** The running threads (for diagnostics and tests). */
  workers(): Worker[] {
    return this.slots.flatMap((s) => (s.worker ? [s.worker] : []));
  }

  /** Stops every thread; jobs waiting or running are answered `busy` (the sender retries). Safe twice. */
  async close(): Promise<void> {
    this.closing = true;
    const shutting = (): Res => this.opts.refusal('busy', 'the gateway is shutting down');
    for (const job of this.queue.splice(0)) job.resolve(shutting());
    const stopping: Array<Promise<number>> = [];
    for (const slot of this.slots) {
      if (slot.worker) stopping.push(slot.worker.terminate());
      slot.worker = null;
      this.finish(slot, shutting());
    }
    await Promise.all(stopping);
  }

  private start(slot: Slot<Req, Res>, job: Job<Req, Res>): void {
    slot.job = job;
    if (!slot.worker) this.spawn(slot);
    this.arm(slot, slot.ready ? this.opts.maxRunMs : this.opts.maxRunMs + STARTUP_ALLOWANCE_MS);
    slot.worker!.postMessage(job.message, job.transfer);
  }

  private arm(slot: Slot<Req, Res>, ms: number): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = setTimeout(() => this.expire(slot), ms);
    slot.timer.unref();
  }

  /** Answers the slot's job and starts the next one waiting. */
  private finish(slot: Slot<Req, Res>, res: Res): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    const job = slot.job;
    slot.job = null;
    job?.resolve(res);
    const next = this.closing ? undefined : this.queue.shift();
    if (next) this.start(slot, next);
  }

  private expire(slot: Slot<Req, Res>): void {
    const worker = slot.worker;
    slot.worker = null;
    slot.ready = false;
    const { component, settings } = this.opts;
    const seconds = this.opts.maxRunMs / 1000;
    this.opts.logger?.warn({ component, maxParseSeconds: seconds }, `${component}: reading a report took too long; its thread was stopped`);
    void worker?.terminate();
    this.finish(slot, this.opts.refusal('timeout', `reading the report took longer than ${seconds} s (${settings.maxRunSeconds}); it was stopped`));
  }

  private spawn(slot: Slot<Req, Res>): void {
    const { component } = this.opts;
    const worker = startWorker(this.opts.callerUrl, this.opts.file, { name: this.opts.name, resourceLimits: this.opts.resourceLimits });
    slot.worker = worker;
    slot.ready = false;
    let failure: Error | undefined;
    worker.on('message', (msg: FromPoolWorker<Res>) => {
      if (slot.worker !== worker) return;
      if ('ready' in msg) {
        slot.ready = true;
        if (slot.job) this.arm(slot, this.opts.maxRunMs);
        return;
      }
      this.finish(slot, msg.result);
    });
    worker.on('error', (err) => {
      failure = err;
    });
    worker.once('exit', (code) => {
      if (slot.worker !== worker) return; // stopped on purpose (timeout, close)
      slot.worker = null;
      slot.ready = false;
      const why = `the report reading thread stopped (exit code ${code}${failure ? `: ${failure.message}` : ''})`;
      this.opts.logger?.error({ component, code, err: failure?.message }, `${component}: report reading thread stopped; the next report starts another`);
      this.finish(slot, this.opts.refusal('died', why.slice(0, 200)));
    });
  }
}

/**
 * The thread side of a {@link WorkerPool}: answers each posted job with `handle`'s result, one at a time as
 * the pool sends them, after saying it has loaded. A handler that throws stops the thread (`died`).
 */
export function serveJobs<Req, Res>(handle: (job: Req) => Res | Promise<Res>): void {
  const port = parentPort;
  if (!port) return;
  port.on('message', (job: Req) => {
    void Promise.resolve(job)
      .then(handle)
      .then((result) => port.postMessage({ result } satisfies FromPoolWorker<Res>));
  });
  port.postMessage({ ready: true } satisfies FromPoolWorker<Res>);
}
