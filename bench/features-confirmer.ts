/**
 * Phase 7's booking system: confirms every Nth accepted message once it has reached the sink, alone or in
 * batches (POST /v1/confirmations every `batchMs`), as docs/placement.md recommends at volume.
 */
import type { Agent } from 'node:http';
import { confirm, confirmBatch } from './features-helpers.js';
import type { HttpClient } from './load.js';
import type { Sink } from './sink.js';

export interface Confirmer {
  /** Resolves once every accepted message to confirm has been (or 90 s have passed). */
  done: Promise<void>;
  /** Answers by HTTP status. */
  statuses: Map<number, number>;
  /** When the last answer came (performance.now()). */
  lastAnswerAt(): number;
}

/**
 * Starts confirming the ids pushed into `accepted` (in order), every `every`-th one, once the sink has it;
 * `submitting()` false means no more ids will come. `batchMs` > 0: batches every that many ms; 0: one request each.
 */
export function startConfirmer(o: {
  sink: Sink;
  agent: Agent;
  port: number;
  accepted: readonly string[];
  every: number;
  batchMs: number;
  submitting: () => boolean;
}): Confirmer {
  const t0 = performance.now();
  const statuses = new Map<number, number>();
  let lastAt = t0;
  const count = (status: number): unknown => statuses.set(status, (statuses.get(status) ?? 0) + 1);
  const run = async (): Promise<void> => {
    let next = 0;
    let ready: string[] = [];
    let flushedAt = performance.now();
    const flush = async (): Promise<void> => {
      const ids = ready;
      ready = [];
      flushedAt = performance.now();
      if (ids.length) for (const status of await confirmBatch(o.agent, o.port, ids)) count(status);
      lastAt = performance.now();
    };
    for (;;) {
      if (o.batchMs > 0 && ready.length && (ready.length >= 1000 || performance.now() - flushedAt >= o.batchMs)) await flush();
      const id = o.accepted[next];
      if (id === undefined || o.sink.arrivedAt(id) === undefined) {
        if (!o.submitting() && id === undefined) return flush();
        if (performance.now() - t0 > 90_000) return flush();
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      next += o.every;
      if (o.batchMs > 0) ready.push(id);
      else {
        count(await confirm(o.agent, o.port, id));
        lastAt = performance.now();
      }
    }
  };
  return { done: o.every > 0 ? run() : Promise.resolve(), statuses, lastAnswerAt: () => lastAt };
}

/**
 * The ids `client` gets accepted, pushed as the answers come (the closed loop hands them out only at its end, and
 * the confirmer must start on them at once).
 */
export function collectAccepted(client: HttpClient): string[] {
  const accepted: string[] = [];
  const submit = client.submit.bind(client);
  client.submit = async (body: string) => {
    const r = await submit(body);
    if (r.status === 202 && r.id) accepted.push(r.id);
    return r;
  };
  return accepted;
}
