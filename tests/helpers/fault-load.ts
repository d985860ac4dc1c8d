/**
 * HTTP load through a Redis fault, shared by the restart tests (tests/integration/redis-restart.test.ts and
 * redis-shard-restart.test.ts): `clients` concurrent clients submit verification messages the way the booking
 * system does (a refusal is retried after 50 ms) until `target` are accepted; once `faultAfter` are accepted the
 * fault runs (once) beside the load. Answers what was accepted, every status seen and how many were sent.
 */
import type { PrivateRedis } from './private-redis.js';
import { API_KEY } from './test-gateway.js';

export interface FaultLoadOptions {
  url: string;
  target: number;
  faultAfter: number;
  /** How long the clients keep submitting at most (ms). */
  forMs: number;
  /** The JSON body of submission `i`. */
  body: (i: number) => Record<string, unknown>;
  /** Runs once, beside the load, when `faultAfter` messages are accepted; `accepted` is the list so far. */
  fault: (accepted: readonly string[]) => Promise<void>;
  /** Called for each accepted submission. */
  onAccepted?: (i: number, id: string) => void;
  clients?: number;
}

export interface FaultLoadResult {
  accepted: string[];
  statuses: Map<number, number>;
  /** Submissions sent. */
  submitted: number;
  /** Whether the fault ran. */
  faulted: boolean;
}

export async function loadThroughFault(o: FaultLoadOptions): Promise<FaultLoadResult> {
  const accepted: string[] = [];
  const statuses = new Map<number, number>();
  let next = 0;
  let faulted: Promise<void> | null = null;
  const submitOne = async (i: number): Promise<void> => {
    const res = await fetch(`${o.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify(o.body(i)),
    }).catch(() => null);
    const status = res?.status ?? 0;
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    if (status === 202) {
      const id = ((await res!.json()) as { id: string }).id;
      accepted.push(id);
      o.onAccepted?.(i, id);
    } else {
      await res?.arrayBuffer();
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await Promise.all(
    Array.from({ length: o.clients ?? 16 }, async () => {
      const end = Date.now() + o.forMs;
      while (accepted.length < o.target && Date.now() < end) {
        await submitOne(next++);
        if (!faulted && accepted.length >= o.faultAfter) faulted = o.fault(accepted);
      }
    }),
  );
  await faulted;
  return { accepted, statuses, submitted: next, faulted: faulted !== null };
}

/** Stops a private redis-server (`SHUTDOWN`, or SIGKILL) and starts it again on the same data 0.8 s later. */
export async function restartRedis(redis: PrivateRedis, fault: 'shutdown' | 'kill'): Promise<void> {
  if (fault === 'shutdown') await redis.shutdown();
  else await redis.kill();
  await new Promise((r) => setTimeout(r, 800));
  await redis.start();
}
