/**
 * Admin operations on queued mail: queue depth, retry-now, cancel, and resuming a paused provider or
 * recipient domain.
 * Plain functions over the queue, the message store and the shaper; the HTTP routes only translate.
 */
import type { Priority } from '../config/schema.js';
import { domainOf } from '../lib/address.js';
import type { Clock } from '../lib/clock.js';
import { KurirError } from '../lib/errors.js';
import { deliveryJobId, type DeliveryQueue, type PRIORITY_RANK } from '../queue/delivery-queue.js';
import type { ProviderShaper } from '../shaping/provider-shaper.js';
import type { SourceIps } from '../shaping/source-ips.js';
import type { MessageStore } from '../store/message-store.js';
import type { RecipientUpdate } from '../store/message-store-types.js';
import { FINAL_RECIPIENT_STATUSES, type TimelineEvent } from '../store/types.js';

export interface DeliveryControlDeps {
  /**
   * The producer: its depth and counts are the main Redis's; its `queueFor` / `queuesFor` name the queue that holds
   * a message's jobs (with `redis.shards`, the one on the message's shard).
   */
  queue: DeliveryQueue;
  messages: MessageStore;
  shaper: ProviderShaper;
  clock: Clock;
  /** Source-IP pools, for their warm-up state in GET /v1/shaping; absent: none shown. */
  sources?: SourceIps;
  /** Each Redis shard's own queue (`redis.shards`), counted separately in GET /v1/queue; absent or empty: none. */
  shards?: ReadonlyArray<{ name: string; queue: DeliveryQueue }>;
}

type QueueStates = Record<'waiting' | 'delayed' | 'active' | 'failed', number>;

/** One shard's queue in the overview: its counts, or why it did not answer. */
export type ShardQueueCounts =
  | { available: true; states: QueueStates; readyByPriority: Record<keyof typeof PRIORITY_RANK, number> }
  | { available: false; error: string };

export interface QueueOverview {
  /** Jobs per state (one job per message and recipient domain) on the main Redis; `waiting` is ready to run. */
  states: QueueStates;
  /** Jobs ready to run, per priority (verification runs first). */
  readyByPriority: Record<keyof typeof PRIORITY_RANK, number>;
  /** Per provider: jobs held back because it is paused, and whether it is paused. */
  providers: Record<string, { held: number; paused: boolean; connectionsInUse: number }>;
  /** With `redis.shards`: each shard's queue, or `available: false` while it does not answer. */
  shards?: Record<string, ShardQueueCounts>;
}

function countsOf(queue: DeliveryQueue): Promise<{ states: QueueStates; readyByPriority: QueueOverview['readyByPriority'] }> {
  return queue.counts();
}

/**
 * Queue depth by state, by priority (ready jobs) and held per provider; with shards, each shard's counts. A shard
 * that does not answer is marked, not hidden, and does not fail the answer: the main Redis's counts still come.
 */
export async function queueOverview(deps: DeliveryControlDeps): Promise<QueueOverview> {
  const main = await countsOf(deps.queue);
  const providers: QueueOverview['providers'] = {};
  for (const s of await deps.shaper.status()) {
    providers[s.provider] = { held: s.heldJobs, paused: s.adminPaused !== null || s.backoffUntil !== null, connectionsInUse: s.connectionsInUse };
  }
  if (!deps.shards?.length) return { ...main, providers };
  const answers = await Promise.allSettled(deps.shards.map((s) => countsOf(s.queue)));
  const shards: Record<string, ShardQueueCounts> = {};
  deps.shards.forEach((s, i) => {
    const a = answers[i];
    shards[s.name] =
      a.status === 'fulfilled'
        ? { available: true, ...a.value }
        : { available: false, error: `unreachable (${a.reason instanceof Error ? a.reason.message : String(a.reason)})` };
  });
  return { ...main, providers, shards };
}

async function jobsOf(deps: DeliveryControlDeps, id: string): Promise<{ domains: string[]; pending: string[]; priority: Priority }> {
  const view = await deps.messages.get(id);
  if (!view) throw new KurirError('NOT_FOUND', `message ${id} not found`, { field: 'id' });
  const pending = Object.entries(view.recipients)
    .filter(([, s]) => !FINAL_RECIPIENT_STATUSES.has(s.status))
    .map(([a]) => a);
  if (!pending.length) throw new KurirError('MESSAGE_FINAL', `message ${id} is already ${view.status}`, { field: 'id' });
  return { domains: [...new Set(pending.map(domainOf))], pending, priority: view.record.priority };
}

/**
 * Runs a message now: delayed jobs are promoted (they keep their priority; shaping still applies), failed
 * jobs are moved back to wait, and a domain whose job is missing gets a new one. Returns each domain's job
 * state before the call and whether it will now run.
 */
export async function retryNow(
  deps: DeliveryControlDeps,
  id: string,
): Promise<{ id: string; jobs: Array<{ domain: string; state: string; promoted: boolean }> }> {
  const { domains, priority } = await jobsOf(deps, id);
  const queue = await deps.queue.queueFor(id);
  const jobs = await Promise.all(
    domains.map(async (domain) => {
      const jobId = deliveryJobId(id, domain);
      const state = await queue.getState(jobId);
      if (state === 'missing') {
        await queue.add({ messageId: id, domain, priority });
        return { domain, state, promoted: true };
      }
      if (state === 'failed') return { domain, state, promoted: await queue.retryFailed(jobId) };
      if (state !== 'delayed') return { domain, state, promoted: false };
      // 0 when it became active meanwhile.
      return { domain, state, promoted: (await queue.promote([jobId])) === 1 };
    }),
  );
  return { id, jobs };
}

/**
 * Cancels a message: every recipient not yet final becomes `expired` with the reason on the timeline, and
 * its jobs are removed. A job in the middle of an SMTP transaction cannot be stopped; it is reported in
 * `inFlight` and its outcome is recorded when it ends.
 */
export async function cancelMessage(deps: DeliveryControlDeps, id: string, by: string): Promise<{ id: string; cancelled: string[]; inFlight: string[] }> {
  const { domains, pending } = await jobsOf(deps, id);
  const queue = await deps.queue.queueFor(id);
  const inFlight: string[] = [];
  await Promise.all(
    domains.map(async (domain) => {
      // A running job cannot be removed: its outcome is recorded when its SMTP transaction ends.
      if ((await queue.removeJob(deliveryJobId(id, domain))) === 'running') inFlight.push(domain);
    }),
  );
  // Jobs held by a paused provider or domain would stay counted in `heldJobs` until the message's expiry. Best
  // effort: an entry left behind is dropped at that expiry all the same, and the cancel must not fail for it.
  await deps.shaper
    .forgetHeld(
      domains.map((domain) => deliveryJobId(id, domain)),
      domains,
    )
    .catch(() => undefined);
  const now = deps.clock.now();
  const reply = `cancelled by ${by}`;
  // Read after the jobs are gone: a run in its SMTP transaction may have recorded its outcome meanwhile, and a
  // recipient it delivered or bounced stays so (the record script never lets `expired` replace a final state).
  const states = await deps.messages.getRecipients(id, pending);
  const cancelled = pending.filter((address) => !FINAL_RECIPIENT_STATUSES.has(states[address]?.status ?? 'queued'));
  if (!cancelled.length) return { id, cancelled, inFlight };
  const updates: RecipientUpdate[] = cancelled.map((address) => ({
    address,
    state: { status: 'expired', attempts: states[address]?.attempts ?? 0, updatedAt: now, reply },
  }));
  const events: TimelineEvent[] = [{ type: 'expired', at: now, recipients: cancelled, reply }];
  await deps.messages.update(id, updates, events);
  return { id, cancelled, inFlight };
}

/** Resumes a provider and promotes the jobs it held, so they run now. */
export async function resumeProvider(deps: DeliveryControlDeps, provider: string, by: string): Promise<{ provider: string; promoted: number }> {
  const held = await deps.shaper.resume(provider, by);
  // Promoted first, then dropped from the held set: when a promotion fails (a shard down), the next resume finds them.
  const promoted = await promote(deps, held);
  await deps.shaper.dropResumed({ provider }, held);
  return { provider, promoted };
}

/** Resumes a recipient domain and promotes the jobs its pause held, so they run now. */
export async function resumeDomain(deps: DeliveryControlDeps, domain: string, by: string): Promise<{ domain: string; wasPaused: boolean; promoted: number }> {
  const { wasPaused, held } = await deps.shaper.resumeDomain(domain, by);
  const promoted = await promote(deps, held);
  await deps.shaper.dropResumed({ domain }, held);
  return { domain, wasPaused, promoted };
}

/** Promotes delayed jobs by id (200 at a time); returns how many were promoted (gone or running ones are skipped). */
async function promote(deps: DeliveryControlDeps, held: string[]): Promise<number> {
  // Job ids are `<message id>_<domain>` (deliveryJobId): the message id names the shard. A paused provider can hold
  // tens of thousands: their shards are found in one batch, not one look-up each.
  const queues = await deps.queue.queuesFor(held.map((jobId) => jobId.split('_')[0]));
  const byQueue = new Map<DeliveryQueue, string[]>();
  held.forEach((jobId, i) => {
    const list = byQueue.get(queues[i]);
    if (list) list.push(jobId);
    else byQueue.set(queues[i], [jobId]);
  });
  let promoted = 0;
  for (const [queue, ids] of byQueue) for (let i = 0; i < ids.length; i += 200) promoted += await queue.promote(ids.slice(i, i + 200));
  return promoted;
}
