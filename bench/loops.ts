/**
 * The benchmark's two ways of driving a pool of sessions: a closed loop (each session sends its next message
 * once the last is answered: the saturated rate) and a paced open loop (messages due at a fixed rate: the latency
 * a sender at that rate sees). Both take a `send(i, worker)` of any transport.
 */
import { appendFileSync } from 'node:fs';

/** Latencies (ms) of one load run, and its rate. */
export interface Stats {
  count: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
}

/** The p-th percentile of an ascending list (nearest rank); NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** {@link Stats} of one run's latencies (ms) over `seconds`. */
export function summarize(latencies: number[], errors: number, seconds: number): Stats {
  const s = [...latencies].sort((a, b) => a - b);
  return { count: s.length, errors, seconds, perSecond: s.length / seconds, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
}

/**
 * `workers` loops that each take the next of `total` messages as soon as their last one is answered, until all
 * are sent or `deadline` (epoch ms) passes; `send(i, w)` sends message i from worker w. Latency per message; a rejection counts as
 * an error (the last one kept).
 */
export async function closedLoop(
  workers: number,
  total: number,
  deadline: number,
  send: (i: number, worker: number) => Promise<unknown>,
): Promise<Stats & { lastError: string }> {
  const latencies: number[] = [];
  let errors = 0;
  let lastError = '';
  let next = 0;
  const started = performance.now();
  // BENCH_TIMELINE: each message's end (wall clock) and latency, for bench/gc-window.ts.
  const timeline: string[] | null = process.env.BENCH_TIMELINE ? [] : null;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      while (next < total && Date.now() < deadline) {
        const i = next++;
        const t0 = performance.now();
        try {
          await send(i, w);
          const end = performance.now();
          latencies.push(end - t0);
          timeline?.push(`${(performance.timeOrigin + end).toFixed(1)} ${(end - t0).toFixed(1)}`);
        } catch (err) {
          errors++;
          lastError = String(err);
        }
      }
    }),
  );
  if (timeline) appendFileSync(process.env.BENCH_TIMELINE!, `run ${workers}\n${timeline.join('\n')}\n`);
  return { ...summarize(latencies, errors, (performance.now() - started) / 1000), lastError };
}

/**
 * Open loop over a pool of `workers` sessions: message i is due at start + i/rate and goes out on the first
 * free session; when every session is busy it waits for one. Latency counts from the moment a message was due,
 * so waiting for a session or a late timer is part of it (no coordinated omission). `maxLagMs`: the longest a
 * message waited past its due time before it was sent; `dueAt(i)`: message i's due time (performance.now()).
 * Stops issuing at `deadline` (epoch ms).
 */
export async function pacedPool(
  workers: number,
  rate: number,
  total: number,
  deadline: number,
  send: (i: number, worker: number) => Promise<unknown>,
): Promise<Stats & { lastError: string; maxLagMs: number; dueAt(i: number): number }> {
  // With no session every message would wait for one forever.
  if (workers < 1 || !(rate > 0)) throw new Error(`pacedPool needs at least one session and a positive rate (got ${workers}, ${rate})`);
  const latencies: number[] = [];
  const idle = Array.from({ length: workers }, (_, w) => w);
  const waiting: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let errors = 0;
  let lastError = '';
  let maxLag = 0;
  const start = performance.now() + 20;
  const dueOf = (i: number): number => start + (i * 1000) / rate;
  const dispatch = (i: number, w: number): void => {
    const due = dueOf(i);
    maxLag = Math.max(maxLag, performance.now() - due);
    const p: Promise<void> = send(i, w).then(
      () => void latencies.push(performance.now() - due),
      (err: unknown) => {
        errors++;
        lastError = String(err);
      },
    );
    inFlight.add(p);
    void p.then(() => {
      inFlight.delete(p);
      const queued = waiting.shift();
      if (queued === undefined) idle.push(w);
      else dispatch(queued, w);
    });
  };
  let i = 0;
  while (i < total && Date.now() < deadline) {
    const now = performance.now();
    for (; i < total && dueOf(i) <= now; i++) {
      const w = idle.shift();
      if (w === undefined) waiting.push(i);
      else dispatch(i, w);
    }
    if (i < total) await new Promise((r) => setTimeout(r, Math.max(0, dueOf(i) - performance.now())));
  }
  while (inFlight.size > 0 || waiting.length > 0) await Promise.race(inFlight);
  return { ...summarize(latencies, errors, (performance.now() - start) / 1000), lastError, maxLagMs: maxLag, dueAt: dueOf };
}
