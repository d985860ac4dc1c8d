/**
 * `kurir suppressions|queue|messages|placement …` over the admin API: the same routes an admin calls
 * with curl (docs/http-api.md), printed as tables (or `--json`).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { arg, opt, output, type Family, type RemoteContext } from './command-types.js';
import { UsageError } from './errors.js';
import { fields, table } from './table.js';

interface Suppression {
  address: string;
  reason: string;
  source: string;
  at: string;
  messageId?: string;
}

const enc = encodeURIComponent;
const address = (ctx: RemoteContext, command: string): string => arg(ctx, 'the ADDRESS', command);

export const suppressionCommands: Family = {
  summary: 'the suppression list: list, check, add, remove, export, import',
  commands: {
    list: {
      usage: 'suppressions list [--domain D] [--reason R]',
      summary: 'every suppressed address (all pages), in address order',
      async run(ctx) {
        const items: Suppression[] = [];
        let cursor: string | null = null;
        do {
          const q = new URLSearchParams({ limit: '1000' });
          if (opt(ctx, 'domain')) q.set('domain', opt(ctx, 'domain')!);
          if (opt(ctx, 'reason')) q.set('reason', opt(ctx, 'reason')!);
          if (cursor) q.set('cursor', cursor);
          const page: { items: Suppression[]; nextCursor: string | null } = await ctx.client.get(`/v1/suppressions?${q}`);
          items.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor);
        return output(ctx, items, () =>
          [
            table(
              ['ADDRESS', 'REASON', 'SOURCE', 'AT', 'MESSAGE'],
              items.map((e) => [e.address, e.reason, e.source, e.at, e.messageId]),
            ),
            `${items.length} suppressed address(es)`,
          ].join('\n'),
        );
      },
    },
    check: {
      usage: 'suppressions check ADDRESS',
      summary: 'whether an address is suppressed, and why (exit 1 with NOT_FOUND when it is not)',
      async run(ctx) {
        const e = await ctx.client.get<Suppression>(`/v1/suppressions/${enc(address(ctx, 'suppressions check'))}`);
        return output(ctx, e, () =>
          fields([
            ['address', e.address],
            ['reason', e.reason],
            ['source', e.source],
            ['at', e.at],
            ['message', e.messageId],
          ]),
        );
      },
    },
    add: {
      usage: 'suppressions add ADDRESS [--reason TEXT]',
      summary: 'suppress an address (reason default: manual)',
      async run(ctx) {
        const a = address(ctx, 'suppressions add');
        const e = (await ctx.client.request('PUT', `/v1/suppressions/${enc(a)}`, { reason: opt(ctx, 'reason') ?? 'manual' })).body as Suppression;
        return output(ctx, e, () => `suppressed ${e.address} (${e.reason})`);
      },
    },
    remove: {
      usage: 'suppressions remove ADDRESS',
      summary: 'take an address off the list (support keys may too)',
      async run(ctx) {
        const a = address(ctx, 'suppressions remove');
        await ctx.client.request('DELETE', `/v1/suppressions/${enc(a)}`);
        return output(ctx, { removed: a }, () => `removed ${a}`);
      },
    },
    export: {
      usage: 'suppressions export [--out FILE]',
      summary: 'CSV (address,reason,source,at,messageId) to FILE or stdout',
      async run(ctx) {
        const csv = String((await ctx.client.request('GET', '/v1/suppressions/export')).body);
        const out = opt(ctx, 'out');
        if (!out) return csv.replace(/\r\n$/, '');
        await writeFile(ctx.file(out), csv, { mode: 0o600 });
        return `wrote ${csv.split('\r\n').length - 2} entries to ${ctx.file(out)}`;
      },
    },
    import: {
      usage: 'suppressions import FILE',
      summary: 'import a CSV all or nothing: any invalid row is reported by line, nothing written',
      async run(ctx) {
        const file = ctx.file(arg(ctx, 'the CSV FILE', 'suppressions import'));
        const text = await readFile(file, 'utf8').catch((err: Error) => {
          throw new UsageError(`suppressions import: ${err.message}`);
        });
        const r = (await ctx.client.request('POST', '/v1/suppressions/import', text, 'text/csv')).body as { imported: number; added: number };
        return output(ctx, r, () => `imported ${r.imported} entries (${r.added} new)`);
      },
    },
  },
};

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

export const queueCommands: Family = {
  summary: 'the delivery queue: stats, pause/resume a provider or recipient domain, retry, cancel',
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
        const target = arg(ctx, 'the PROVIDER or DOMAIN', 'queue pause');
        const seconds = opt(ctx, 'seconds');
        if (seconds !== undefined && !/^[1-9][0-9]{0,7}$/.test(seconds)) throw new UsageError('--seconds: a positive integer');
        const r = await ctx.client.post<unknown>(`${pausePath(target)}/pause`, seconds ? { seconds: Number(seconds) } : {});
        return output(ctx, r, () => `paused ${target}${seconds ? ` for ${seconds} s` : ' until resumed'}`);
      },
    },
    resume: {
      usage: 'queue resume PROVIDER|DOMAIN',
      summary: 'end a pause; held jobs go out again',
      async run(ctx) {
        const target = arg(ctx, 'the PROVIDER or DOMAIN', 'queue resume');
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

interface MessageView {
  id: string;
  status: string;
  from: string;
  to: string[];
  subject?: string;
  priority: string;
  createdAt: string;
  recipients: Record<string, { status: string; attempts: number; reply?: string }>;
  events: Array<{ type: string; at: string; reply?: string; host?: string; recipients?: string[] }>;
}

interface SearchItem {
  id: string;
  status: string;
  createdAt: string;
  subject?: string;
  owner: string;
  recipient?: { status: string; reply?: string };
}

type ResendItem = { address: string; allowed: boolean; reason: string | null; nextAllowedAt: string | null } & {
  limit: { max: number; windowSeconds: number; priorities: string[]; used: number } | null;
};

/** One line per address: may the booking system send another message now. */
function resendLine(r: ResendItem): string {
  const budget = r.limit ? ` (${r.limit.used} of ${r.limit.max} ${r.limit.priorities.join('/')} per ${r.limit.windowSeconds} s used)` : '';
  const verdict =
    r.reason === 'suppressed' ? 'refused, the address is suppressed' : r.allowed ? `allowed now${budget}` : `not before ${r.nextAllowedAt}${budget}`;
  return `resend to ${r.address}: ${verdict}`;
}

export const messageCommands: Family = {
  summary: 'messages: show one, search by recipient or booking reference',
  commands: {
    show: {
      usage: 'messages show ID',
      summary: 'status, recipients and timeline of a message (times in ISO 8601)',
      async run(ctx) {
        const m = await ctx.client.get<MessageView>(`/v1/messages/${enc(arg(ctx, 'the message ID', 'messages show'))}`);
        return output(ctx, m, () =>
          [
            fields([
              ['id', m.id],
              ['status', m.status],
              ['from', m.from],
              ['subject', m.subject],
              ['priority', m.priority],
              ['created', m.createdAt],
            ]),
            '',
            table(
              ['RECIPIENT', 'STATUS', 'ATTEMPTS', 'LAST REPLY'],
              Object.entries(m.recipients).map(([a, s]) => [a, s.status, s.attempts, s.reply]),
            ),
            '',
            table(
              ['AT', 'EVENT', 'HOST', 'REPLY'],
              m.events.map((e) => [e.at, e.type, e.host, e.reply]),
            ),
          ].join('\n'),
        );
      },
    },
    search: {
      usage: 'messages search ADDRESS | --reference REF [--limit N] [--cursor C]',
      summary: 'messages to one recipient or with one booking reference, newest first, and whether a resend is allowed now (support and admin keys)',
      async run(ctx) {
        const reference = opt(ctx, 'reference');
        const q = new URLSearchParams(reference !== undefined ? { reference } : { to: arg(ctx, 'the recipient ADDRESS or --reference', 'messages search') });
        q.set('limit', opt(ctx, 'limit') ?? '20');
        if (opt(ctx, 'cursor')) q.set('cursor', opt(ctx, 'cursor')!);
        const page = await ctx.client.get<{ items: SearchItem[]; nextCursor: string | null; resend?: ResendItem[] }>(`/v1/messages?${q}`);
        return output(ctx, page, () =>
          [
            table(
              ['ID', 'CREATED', 'STATUS', 'TO THIS ADDRESS', 'SUBJECT', 'SENT BY', 'LAST REPLY'],
              page.items.map((m) => [m.id, m.createdAt, m.status, m.recipient?.status, m.subject, m.owner, m.recipient?.reply]),
            ),
            ...(page.nextCursor ? [`more: --cursor ${page.nextCursor}`] : []),
            ...(page.resend ?? []).map(resendLine),
          ].join('\n'),
        );
      },
    },
  },
};

export const placementCommands: Family = {
  summary: 'seed-mailbox placement: status, probe',
  commands: {
    status: {
      usage: 'placement status',
      summary: 'results per provider and seed state (as GET /v1/placement)',
      async run(ctx) {
        const r = await ctx.client.get<{ providers: Array<{ provider: string; seeds: Array<{ name: string; state: string }> }> }>('/v1/placement');
        return output(ctx, r, () =>
          table(
            ['PROVIDER', 'SEEDS'],
            r.providers.map((p) => [p.provider, p.seeds.map((s) => `${s.name} (${s.state})`).join(', ')]),
          ),
        );
      },
    },
    probe: {
      usage: 'placement probe [--seed NAME]',
      summary: 'ask for a probe now to one seed (default: every seed); a gateway with role placement sends it',
      async run(ctx) {
        const seed = opt(ctx, 'seed');
        const r = await ctx.client.request('POST', '/v1/placement/probes', seed ? { seed } : {});
        const requested = (r.body as { requested: string[] }).requested;
        return output(ctx, r.body, () => `probe requested for ${requested.join(', ')}; results: kurir placement status`);
      },
    },
  },
};
