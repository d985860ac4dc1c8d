import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../lib/logger.js';
import { startWorker } from '../lib/worker-thread.js';
import { DkimError, type DkimSignatureInfo, type PreparedKey } from './sign-core.js';
import type { FromWorker, ToWorker } from './sign-protocol.js';
import type { SigningEngine } from './signer.js';

interface Pending {
  domain: string;
  resolve: (r: { headers: string; signatures: DkimSignatureInfo[] }) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker | null;
  /** Key ids this thread holds. */
  known: Set<number>;
  inflight: Map<number, Pending>;
  startedAt: number;
}

/**
 * The number of signing threads for the `dkim.signingThreads` setting (docs/benchmarks.md#signing-off-the-event-loop).
 * `auto`: none on one core; one on two cores, where the event loop is the bottleneck and the second core has room
 * (measured: 10–15 % more msg/s, accept alone and end to end, for ~12 % more CPU per message; several Kurir
 * processes sharing two cores should set 0); with more cores, leave two to the event loop and Redis and use at
 * most two: min(2, cores - 2).
 */
export function signingThreadsFor(setting: number | 'auto', cores = availableParallelism()): number {
  if (setting !== 'auto') return setting;
  if (cores <= 1) return 0;
  return Math.max(1, Math.min(2, cores - 2));
}

/** A thread that dies this soon after starting is restarted after a pause, not at once (no crash loop). */
const EARLY_DEATH_MS = 1000;
const RESTART_PAUSE_MS = 500;

/**
 * DKIM signing threads (node:worker_threads), so RSA signing runs on other cores while the event loop
 * does I/O. Each thread holds the keys it has been sent, by id: one id per parsed key object, that is per
 * (domain, selector, key version). `sync` sends the keys in use to every thread and drops the others
 * (revoked, rotated out) from all of them; a key a thread still lacks goes with the first signature
 * that needs it, and a new thread gets every key in use.
 * A thread that dies fails its in-flight signatures with DKIM_UNAVAILABLE and is replaced.
 */
export class SignPool implements SigningEngine {
  private readonly slots: Slot[] = [];
  private readonly ids = new WeakMap<PreparedKey, number>();
  private readonly live = new Map<number, PreparedKey>();
  private nextId = 1;
  private seq = 0;
  private closing = false;

  private constructor(
    private readonly threads: number,
    private readonly logger?: Logger,
  ) {}

  /**
   * Starts `threads` signing threads and waits until each runs, so a thread that cannot start fails here.
   *
   * @param opts.keys keys to send to every thread up front (the configured ones)
   */
  static async start(opts: { threads: number; keys?: readonly PreparedKey[]; logger?: Logger }): Promise<SignPool> {
    if (!(opts.threads >= 1)) throw new Error(`dkim.signingThreads: a pool needs at least 1 thread, got ${opts.threads}`);
    const pool = new SignPool(opts.threads, opts.logger);
    for (const k of opts.keys ?? []) pool.idOf(k);
    const started: Promise<void>[] = [];
    for (let i = 0; i < opts.threads; i++) {
      const slot: Slot = { worker: null, known: new Set(), inflight: new Map(), startedAt: 0 };
      pool.slots.push(slot);
      started.push(pool.spawn(slot));
    }
    try {
      await Promise.all(started);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** The running threads (for diagnostics and tests). */
  workers(): Worker[] {
    return this.slots.flatMap((s) => (s.worker ? [s.worker] : []));
  }

  /**
   * Signs on the thread with the fewest signatures in flight, sending it first any of `keys` it lacks; `message` is
   * copied, so the caller keeps it. Rejects with DkimError DKIM_UNAVAILABLE when no thread runs, the pool is
   * closing, or the thread stops before answering; a refusal the thread reports keeps its DkimError code.
   */
  sign(message: Buffer, domain: string, keys: readonly PreparedKey[], signTime: Date): Promise<{ headers: string; signatures: DkimSignatureInfo[] }> {
    let slot: Slot | undefined;
    for (const s of this.slots) if (s.worker && (!slot || s.inflight.size < slot.inflight.size)) slot = s;
    if (!slot?.worker || this.closing) {
      return Promise.reject(new DkimError('DKIM_UNAVAILABLE', domain, `DKIM signing for "${domain}" is unavailable: no signing thread is running`));
    }
    const keyIds = keys.map((k) => this.idOf(k));
    const missing = keyIds.filter((id) => !slot.known.has(id));
    if (missing.length) {
      this.post(slot, { type: 'keys', keys: missing.map((id) => this.wire(id)) });
      for (const id of missing) slot.known.add(id);
    }
    // One copy into a buffer of its own, handed over without a second copy; the caller keeps `message`.
    const copy = message.buffer.slice(message.byteOffset, message.byteOffset + message.byteLength) as ArrayBuffer;
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      slot.inflight.set(seq, { domain, resolve, reject });
      slot.worker!.postMessage({ type: 'sign', seq, domain, keyIds, signTime: signTime.getTime(), message: copy } satisfies ToWorker, [copy]);
    });
  }

  /**
   * Makes every thread hold exactly `keys` (every key signing may use now): the ones a thread lacks are sent
   * to it, the others (revoked, rotated out, domain removed) are dropped from all threads at once.
   */
  sync(keys: readonly PreparedKey[]): void {
    const keep = new Set(keys.map((k) => this.idOf(k)));
    const drop = [...this.live.keys()].filter((id) => !keep.has(id));
    for (const id of drop) this.live.delete(id);
    for (const slot of this.slots) {
      if (!slot.worker) continue;
      const missing = [...keep].filter((id) => !slot.known.has(id));
      if (missing.length) this.post(slot, { type: 'keys', keys: missing.map((id) => this.wire(id)) });
      if (drop.length) this.post(slot, { type: 'drop', ids: drop });
      for (const id of missing) slot.known.add(id);
      for (const id of drop) slot.known.delete(id);
    }
  }

  /** Stops every thread; signatures in flight fail with DKIM_UNAVAILABLE. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker?.terminate()));
  }

  private idOf(key: PreparedKey): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(key, id);
    }
    this.live.set(id, key);
    return id;
  }

  private wire(id: number) {
    const k = this.live.get(id)!;
    return { id, selector: k.selector, algorithm: k.algorithm, keyObject: k.keyObject };
  }

  private post(slot: Slot, msg: ToWorker): void {
    slot.worker?.postMessage(msg);
  }

  private spawn(slot: Slot): Promise<void> {
    const worker = startWorker(import.meta.url, './sign-worker', { name: 'kurir-dkim' });
    slot.worker = worker;
    slot.known = new Set(this.live.keys());
    slot.startedAt = Date.now();
    if (slot.known.size) worker.postMessage({ type: 'keys', keys: [...slot.known].map((id) => this.wire(id)) } satisfies ToWorker);
    let failure: Error | undefined;
    let ready: () => void = () => undefined;
    worker.on('message', (msg: FromWorker) => {
      if ('ready' in msg) return ready();
      const p = slot.inflight.get(msg.seq);
      if (!p) return;
      slot.inflight.delete(msg.seq);
      if (msg.ok) p.resolve({ headers: msg.headers, signatures: msg.signatures });
      else p.reject(msg.code ? new DkimError(msg.code, p.domain, msg.message) : new Error(msg.message));
    });
    worker.on('error', (err) => {
      failure = err;
    });
    const online = new Promise<void>((resolve, reject) => {
      ready = resolve;
      worker.once('exit', (code) => reject(new Error(`DKIM signing thread did not start (exit code ${code}): ${failure?.message ?? 'no error given'}`)));
    });
    online.catch(() => undefined);
    worker.once('exit', (code) => {
      if (slot.worker === worker) slot.worker = null;
      const why = this.closing ? 'the signing pool was closed' : `a DKIM signing thread stopped (exit code ${code}${failure ? `: ${failure.message}` : ''})`;
      for (const p of slot.inflight.values()) {
        p.reject(new DkimError('DKIM_UNAVAILABLE', p.domain, `DKIM signing for "${p.domain}" did not complete: ${why}; try again`));
      }
      slot.inflight.clear();
      if (this.closing) return;
      this.logger?.error({ code, err: failure?.message, threads: this.threads }, 'dkim: signing thread stopped; starting another');
      const pause = Date.now() - slot.startedAt < EARLY_DEATH_MS ? RESTART_PAUSE_MS : 0;
      setTimeout(() => {
        if (!this.closing)
          this.spawn(slot).catch((err: unknown) => this.logger?.error({ err: (err as Error).message }, 'dkim: signing thread failed to start'));
      }, pause).unref();
    });
    return online;
  }
}
