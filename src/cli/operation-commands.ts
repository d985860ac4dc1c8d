/**
 * `kurir suppressions|messages|placement …` over the admin API: the same routes an admin calls
 * with curl (docs/http-api.md), printed as tables (or `--json`).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { normalizeDomain } from '../lib/address.js';
import { arg, opt, output, wholeNumberOpt, type Family, type RemoteContext } from './command-types.js';
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

/** A suppression reason as the API takes it (PUT, and the import): 1 to 200 characters, no control character. */
function reasonOpt(ctx: RemoteContext): string | undefined {
  const reason = opt(ctx, 'reason');
  // Characters as the API counts them (code points: an emoji is one).
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  if (reason !== undefined && !(/^[^\x00-\x1f\x7f]+$/.test(reason) && [...reason].length <= 200)) {
    throw new UsageError('--reason: 1 to 200 characters, without line breaks or other control characters');
  }
  return reason;
}

/**
 * --domain and --reason of `list` and `export` as the query of GET /v1/suppressions[/export]: a domain that is no host
 * name, or an empty reason (which filtered nothing: every entry was listed), is a usage error.
 */
function filterQuery(ctx: RemoteContext): URLSearchParams {
  const q = new URLSearchParams();
  const domain = opt(ctx, 'domain');
  if (domain !== undefined) {
    try {
      q.set('domain', normalizeDomain(domain, '--domain'));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const reason = reasonOpt(ctx);
  if (reason !== undefined) q.set('reason', reason);
  return q;
}

export const suppressionCommands: Family = {
  summary: 'the suppression list',
  commands: {
    list: {
      usage: 'suppressions list [--domain D] [--reason R]',
      summary: 'every suppressed address (all pages), in address order',
      async run(ctx) {
        const items: Suppression[] = [];
        let cursor: string | null = null;
        const filters = filterQuery(ctx);
        do {
          const q = new URLSearchParams(filters);
          q.set('limit', '1000');
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
        const e = (await ctx.client.request('PUT', `/v1/suppressions/${enc(a)}`, { reason: reasonOpt(ctx) ?? 'manual' })).body as Suppression;
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
      usage: 'suppressions export [--domain D] [--reason R] [--out FILE]',
      summary: 'CSV (address,reason,source,at,messageId) to FILE or stdout: every entry, or those at one domain and with one reason',
      async run(ctx) {
        const q = filterQuery(ctx);
        const csv = String((await ctx.client.request('GET', `/v1/suppressions/export${q.size ? `?${q}` : ''}`)).body);
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
  summary: 'messages by id, recipient or booking reference',
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
        // The API answers 400 for both; the CLI dropped the address and searched by reference alone.
        if (reference !== undefined && ctx.args.length > 0) {
          throw new UsageError(`messages search: give the recipient ADDRESS or --reference, not both (got ${ctx.args[0]} and --reference ${reference})`);
        }
        const q = new URLSearchParams(reference !== undefined ? { reference } : { to: arg(ctx, 'the recipient ADDRESS or --reference', 'messages search') });
        q.set('limit', wholeNumberOpt(ctx, 'limit', 1, 100) ?? '20');
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
  summary: 'seed-mailbox placement',
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
