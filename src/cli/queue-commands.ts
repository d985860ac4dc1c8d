/**
 * `kurir queue …` over the admin API: jobs by state (and per Redis shard), pausing and resuming a provider or
 * recipient domain, and retrying or cancelling one message (docs/cli.md).
 */
import { MAX_PAUSE_SECONDS } from '../shaping/shaping-pauses.js';
import { arg, output, wholeNumberOpt, type Family, type RemoteContext } from './command-types.js';
import { UsageError } from './errors.js';
import { table } from './table.js';

const enc = encodeURIComponent;

interface QueueOverview {
  states: Record<string, number>;
  readyByPriority: Record<string, number>;
  providers: Record<string, { held: number; paused: boolean; connectionsInUse: number }>;
  /** With redis.shards: each shard's queue, or why it did not answer. */
  shards?: Record<string, { available: boolean; error?: string; states?: Record<string, number> }>;
}

const SHARD_STATES = ['waiting', 'delayed', 'active', 'failed'] as const;

/** One row per Redis shard: its jobs by state, or the error of a shard that does not answer. */
function shardRows(shards: NonNullable<QueueOverview['shards']>): Array<Array<string | number>> {
  return Object.entries(shards).map(([name, s]) =>
    s.available ? [name, ...SHARD_STATES.map((k) => s.states?.[k] ?? 0)] : [name, ...SHARD_STATES.map(() => '-'), s.error ?? 'unreachable'],
  );
}

interface RetryAnswer {
  jobs: Array<{ domain: string; state: string; promoted: boolean }>;
}

/** What a retry did per recipient domain: a job that is running (or failed and could not be retried) is not moved. */
function retryText(id: string, r: RetryAnswer): string {
  const moving = r.jobs.some((j) => j.promoted || j.state === 'waiting');
  const lines = r.jobs.map((j) =>
    j.promoted
      ? `  ${j.domain}: runs now (job was ${j.state})`
      : j.state === 'waiting'
        ? `  ${j.domain}: already waiting to run`
        : `  ${j.domain}: not moved (job ${j.state})`,
  );
  return [moving ? `retrying ${id}` : `nothing moved for ${id}`, ...lines].join('\n');
}

interface CancelAnswer {
  cancelled: string[];
  inFlight: string[];
}

/** What a cancel did: recipients expired, and the attempts it could not stop (their mail may still arrive). */
function cancelText(id: string, r: CancelAnswer): string {
  return [
    r.cancelled.length ? `cancelled ${id}: ${r.cancelled.length} recipient(s) expired` : `nothing cancelled for ${id}: no recipient was still pending`,
    ...r.inFlight.map((d) => `  ${d}: an attempt is in its SMTP transaction and cannot be stopped; the mail may still be delivered (see kurir messages show)`),
  ].join('\n');
}

/** A pause target: a recipient domain (has a dot) or a provider bucket (does not). */
const pausePath = (target: string): string => (target.includes('.') ? `/v1/shaping/domains/${enc(target)}` : `/v1/shaping/${enc(target)}`);

/** A pause target: a recipient domain (has a dot; the gateway checks it) or a provider name of the provider map. */
function pauseTarget(ctx: RemoteContext, command: string): string {
  const target = arg(ctx, 'the PROVIDER or DOMAIN', command);
  if (!target.includes('.') && !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(target)) {
    throw new UsageError(
      `${command}: "${target}" is neither a provider name (lower-case letters, digits, _ and -; kurir queue stats lists them) nor a recipient domain (example.org)`,
    );
  }
  return target;
}

export const queueCommands: Family = {
  summary: 'the delivery queue, by provider and recipient domain',
  commands: {
    stats: {
      usage: 'queue stats',
      summary: 'jobs by state, ready jobs by priority, held jobs and pauses per provider',
      async run(ctx) {
        const q = await ctx.client.get<QueueOverview>('/v1/queue');
        return output(ctx, q, () =>
          [
            table(['STATE', 'JOBS'], Object.entries(q.states)),
            '',
            table(['PRIORITY', 'READY'], Object.entries(q.readyByPriority)),
            '',
            table(
              ['PROVIDER', 'HELD', 'PAUSED', 'CONNECTIONS'],
              Object.entries(q.providers).map(([p, s]) => [p, s.held, s.paused ? 'yes' : 'no', s.connectionsInUse]),
            ),
            // The states above are the main Redis's; a shard that is down is shown, not left out.
            ...(q.shards && Object.keys(q.shards).length
              ? ['', table(['SHARD', ...SHARD_STATES.map((k) => k.toUpperCase()), 'ERROR'], shardRows(q.shards))]
              : []),
          ].join('\n'),
        );
      },
    },
    pause: {
      usage: 'queue pause PROVIDER|DOMAIN [--seconds N]',
      summary: 'hold deliveries to a provider bucket (gmail) or a recipient domain (example.org), until resumed or for N seconds',
      async run(ctx) {
        const target = pauseTarget(ctx, 'queue pause');
        // The API's range (until 2 Dec 2026 a pause over 30 days was the gateway's 400, exit 1).
        const seconds = wholeNumberOpt(ctx, 'seconds', 1, MAX_PAUSE_SECONDS, 'seconds');
        const r = await ctx.client.post<unknown>(`${pausePath(target)}/pause`, seconds ? { seconds: Number(seconds) } : {});
        return output(ctx, r, () => `paused ${target}${seconds ? ` for ${seconds} s` : ' until resumed'}`);
      },
    },
    resume: {
      usage: 'queue resume PROVIDER|DOMAIN',
      summary: 'end a pause; held jobs go out again',
      async run(ctx) {
        const target = pauseTarget(ctx, 'queue resume');
        const r = await ctx.client.post<{ promoted: number; wasPaused?: boolean }>(`${pausePath(target)}/resume`);
        // A domain answers whether it was paused; a provider resume also ends an adaptive back-off, so it always does something.
        return output(ctx, r, () =>
          r.wasPaused === false ? `${target} was not paused; nothing to resume` : `resumed ${target} (${r.promoted} held job(s) released)`,
        );
      },
    },
    retry: {
      usage: 'queue retry MESSAGE_ID',
      summary: 'try a message now',
      async run(ctx) {
        const id = arg(ctx, 'the MESSAGE_ID', 'queue retry');
        const r = await ctx.client.post<RetryAnswer>(`/v1/messages/${enc(id)}/retry`);
        return output(ctx, r, () => retryText(id, r));
      },
    },
    cancel: {
      usage: 'queue cancel MESSAGE_ID',
      summary: 'cancel a message: recipients not yet final become expired',
      async run(ctx) {
        const id = arg(ctx, 'the MESSAGE_ID', 'queue cancel');
        const r = await ctx.client.post<CancelAnswer>(`/v1/messages/${enc(id)}/cancel`);
        return output(ctx, r, () => cancelText(id, r));
      },
    },
  },
};
