/**
 * `kurir credentials …` and `kurir audit …` over the admin API (`/v1/credentials`, `/v1/audit`).
 * `credentials create --bootstrap` (the first admin key, straight into Redis) lives in main.ts.
 */
import { writeFile } from 'node:fs/promises';
import { MAX_OVERLAP_SECONDS, type CredentialView } from '../admin/credentials.js';
import { WEBHOOK_EVENT_TYPES } from '../config/credentials-schema.js';
import { PRIORITIES } from '../config/schema.js';
import type { StoredAuditEntry } from '../store/audit-store.js';
import { ROLES } from '../store/credential-store.js';
import { arg, listOfOpt, oneOfOpt, opt, output, wholeNumberOpt, type Family, type RemoteContext } from './command-types.js';
import { UsageError } from './errors.js';
import { fields, table } from './table.js';

const list = (v: string | undefined): string[] | undefined =>
  v === undefined
    ? undefined
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

/** A positive integer option, `none` for null (unlimited), or undefined when absent. */
function limit(ctx: RemoteContext, name: string): number | null | undefined {
  const v = opt(ctx, name);
  if (v === undefined) return undefined;
  if (v === 'none') return null;
  if (!/^[1-9][0-9]{0,9}$/.test(v)) throw new UsageError(`--${name}: a positive integer, or none for unlimited`);
  return Number(v);
}

/**
 * The scope options (role, domains, priorities, limits, webhook) given on the command line. A role, priority or
 * event the API does not know is a usage error here (until 2 Dec 2026 the gateway's 400, exit 1); whether a sender
 * domain is configured only the gateway knows.
 */
export function scopeOptions(ctx: RemoteContext): Record<string, unknown> {
  const role = oneOfOpt(ctx, 'role', ROLES);
  const priorities = opt(ctx, 'priorities') === 'all' ? null : listOfOpt(ctx, 'priorities', PRIORITIES);
  const events = listOfOpt(ctx, 'webhook-events', WEBHOOK_EVENT_TYPES);
  const perSecond = limit(ctx, 'per-second');
  const perDay = limit(ctx, 'per-day');
  const hookUrl = opt(ctx, 'webhook-url');
  let webhook: Record<string, unknown> | null | undefined;
  // A secret or event list without a URL to go with would be dropped while the rest of the change is made.
  for (const name of ['webhook-secret', 'webhook-events']) {
    if (opt(ctx, name) !== undefined && (hookUrl === undefined || hookUrl === 'none')) {
      throw new UsageError(`--${name}: goes with --webhook-url URL (a webhook is set whole: URL, secret and events)`);
    }
  }
  if (hookUrl === 'none') webhook = null;
  else if (hookUrl !== undefined) {
    const secret = opt(ctx, 'webhook-secret');
    if (!secret) throw new UsageError('--webhook-secret: the signing secret (16 characters or more) is required with --webhook-url');
    webhook = { url: hookUrl, secret, ...(events ? { events } : {}) };
  }
  return {
    ...(webhook !== undefined ? { webhook } : {}),
    ...(role !== undefined ? { role } : {}),
    ...(opt(ctx, 'domains') !== undefined ? { domains: list(opt(ctx, 'domains')) } : {}),
    ...(priorities !== undefined ? { priorities } : {}),
    ...(perSecond !== undefined || perDay !== undefined
      ? { limits: { ...(perSecond !== undefined ? { perSecond } : {}), ...(perDay !== undefined ? { perDay } : {}) } }
      : {}),
  };
}

const limitsText = (l: CredentialView['limits']): string =>
  l
    ? [
        `perSecond ${l.perSecond === undefined ? 'default' : (l.perSecond ?? 'none')}`,
        `perDay ${l.perDay === undefined ? 'default' : (l.perDay ?? 'none')}`,
      ].join(', ')
    : 'default';

/** A credential in `key: value` lines. */
export function showCredential(c: CredentialView): string {
  return fields([
    ['id', c.id],
    ['name', c.name],
    ['kind', c.kind],
    ['role', c.role],
    ...(c.username ? ([['username', c.username]] as Array<[string, string]>) : []),
    ['domains', c.domains.join(', ')],
    ['priorities', c.priorities ? c.priorities.join(', ') : 'all'],
    ['limits', limitsText(c.limits)],
    ...(c.webhook !== undefined
      ? ([['webhook', c.webhook ? `${c.webhook.url} (${c.webhook.events?.join(', ') ?? 'all events'})` : 'none']] as Array<[string, string]>)
      : []),
    ['source', c.source],
    ['secrets', (c.secrets ?? []).map((s) => `made ${s.createdAt}${s.notAfter ? `, valid until ${s.notAfter}` : ''}`).join('; ')],
    ['created', c.createdAt ? `${c.createdAt} by ${c.createdBy}` : undefined],
  ]);
}

/** Created or rotated: the credential and its secret, with the warning that it is shown once. */
export function withSecret(c: CredentialView, secret: string, what: string): string {
  return `${what} ${c.kind} ${c.name} (${c.id}), role ${c.role}\n${c.kind === 'api-key' ? 'key' : 'password'} (shown once, store it now): ${secret}`;
}

const KINDS = ['api-key', 'smtp-account'] as const;

/**
 * What a credential of `kind` cannot have, refused before anything is sent (until 2 Dec 2026 the gateway's 400, exit 1):
 * a user name on an API key; another role than send, or a webhook, on an SMTP account.
 */
function refuseForKind(kind: (typeof KINDS)[number], username: string | undefined, scope: Record<string, unknown>): void {
  if (kind === 'api-key' && username !== undefined) {
    throw new UsageError('--username: only SMTP accounts have a user name (add --kind smtp-account; an API key is used by its secret alone)');
  }
  if (kind === 'smtp-account' && scope.role !== undefined && scope.role !== 'send')
    throw new UsageError('--role: an SMTP account only submits mail; its role is send');
  if (kind === 'smtp-account' && scope.webhook) throw new UsageError('--webhook-url: only API keys have a webhook');
}

const id = (ctx: RemoteContext, command: string): string => encodeURIComponent(arg(ctx, 'the credential ID', command));

export const credentialCommands: Family = {
  summary: 'API keys and SMTP accounts',
  commands: {
    list: {
      usage: 'credentials list',
      summary: 'every credential: runtime ones, then those of the configuration file',
      async run(ctx) {
        const { items } = await ctx.client.get<{ items: CredentialView[] }>('/v1/credentials');
        return output(ctx, items, () =>
          table(
            ['ID', 'NAME', 'KIND', 'ROLE', 'DOMAINS', 'SOURCE'],
            items.map((c) => [c.id, c.name, c.kind, c.role, c.domains.join(','), c.source]),
          ),
        );
      },
    },
    show: {
      usage: 'credentials show ID',
      summary: 'one credential (never its secret)',
      async run(ctx) {
        const c = await ctx.client.get<CredentialView>(`/v1/credentials/${id(ctx, 'credentials show')}`);
        return output(ctx, c, () => showCredential(c));
      },
    },
    create: {
      usage:
        'credentials create --name NAME [--kind api-key|smtp-account] [--role send|support|admin] [--domains D,…|*]\n' +
        '                   [--priorities verification,normal,bulk|all] [--per-second N|none] [--per-day N|none] [--username U]\n' +
        '                   [--webhook-url URL --webhook-secret S [--webhook-events delivered,bounced,…]] [--bootstrap]',
      summary: 'create a key or SMTP account and print its secret once (--bootstrap: straight into Redis, for the first admin key)',
      async run(ctx) {
        const name = opt(ctx, 'name');
        if (!name) throw new UsageError('credentials create: --name is required');
        const kind = oneOfOpt(ctx, 'kind', KINDS) ?? 'api-key';
        const username = opt(ctx, 'username');
        const scope = scopeOptions(ctx);
        refuseForKind(kind, username, scope);
        const body = { kind, name, ...(username !== undefined ? { username } : {}), ...scope };
        const created = await ctx.client.post<{ credential: CredentialView; secret: string }>('/v1/credentials', body);
        return output(ctx, created, () => withSecret(created.credential, created.secret, 'created'));
      },
    },
    update: {
      usage:
        'credentials update ID [--role R] [--domains D,…] [--priorities P,…|all] [--per-second N|none] [--per-day N|none]\n' +
        '                   [--webhook-url URL|none --webhook-secret S [--webhook-events E,…]]',
      summary: 'change the scope of a credential (every gateway within seconds)',
      async run(ctx) {
        const body = scopeOptions(ctx);
        if (!Object.keys(body).length)
          throw new UsageError('credentials update: give at least one of --role, --domains, --priorities, --per-second, --per-day, --webhook-url');
        const path = `/v1/credentials/${id(ctx, 'credentials update')}`;
        // PATCH replaces `limits` whole: changing one limit must keep the other as it is, not reset it to the default.
        const limits = body.limits as CredentialView['limits'] | undefined;
        if (limits && (limits.perSecond === undefined || limits.perDay === undefined)) {
          body.limits = { ...(await ctx.client.get<CredentialView>(path)).limits, ...limits };
        }
        const c = (await ctx.client.request('PATCH', path, body)).body as CredentialView;
        return output(ctx, c, () => showCredential(c));
      },
    },
    rotate: {
      usage: 'credentials rotate ID [--overlap SECONDS]',
      summary: 'new secret, printed once; the old one keeps working for --overlap seconds (default 3600, 0: stops now)',
      async run(ctx) {
        // The API's range: more than 30 days was the gateway's 400, exit 1 (until 2 Dec 2026).
        const overlap = wholeNumberOpt(ctx, 'overlap', 0, MAX_OVERLAP_SECONDS, 'seconds');
        const body = overlap === undefined ? {} : { overlapSeconds: Number(overlap) };
        const r = await ctx.client.post<{ credential: CredentialView; secret: string }>(`/v1/credentials/${id(ctx, 'credentials rotate')}/rotate`, body);
        return output(ctx, r, () => withSecret(r.credential, r.secret, 'rotated'));
      },
    },
    revoke: {
      usage: 'credentials revoke ID',
      summary: 'delete a credential: it stops working on every gateway within seconds',
      async run(ctx) {
        const credId = arg(ctx, 'the credential ID', 'credentials revoke');
        await ctx.client.request('DELETE', `/v1/credentials/${encodeURIComponent(credId)}`);
        return output(ctx, { revoked: credId }, () => `revoked ${credId}`);
      },
    },
  },
};

/** An audit entry as `GET /v1/audit` answers it: the stored entry with its time as an ISO string. */
type AuditItem = Omit<StoredAuditEntry, 'at'> & { at: string };

/**
 * The ROWS cell of an entry: what a read answered, from its `after` — `50+` a page with more after it, `3` all of
 * it, `3 (incomplete)` an export that stopped short, `started` an export's first entry; empty for other entries.
 */
export function auditRows(after: unknown): string {
  if (typeof after !== 'object' || after === null) return '';
  const a = after as { rows?: unknown; nextPage?: unknown; complete?: unknown; export?: unknown };
  if (typeof a.rows === 'number') return `${a.rows}${a.nextPage === true ? '+' : ''}${a.complete === false ? ' (incomplete)' : ''}`;
  return a.export === 'started' ? 'started' : '';
}

export const auditCommands: Family = {
  summary: 'the audit log of admin and support actions',
  commands: {
    list: {
      usage: 'audit list [--limit N] [--cursor C]',
      summary: 'newest first (default 50); the next page with --cursor; ROWS: what a read answered (50+: more followed)',
      async run(ctx) {
        const q = new URLSearchParams({ limit: wholeNumberOpt(ctx, 'limit', 1, 1000) ?? '50', ...(opt(ctx, 'cursor') ? { cursor: opt(ctx, 'cursor')! } : {}) });
        const page = await ctx.client.get<{ items: AuditItem[]; nextCursor: string | null }>(`/v1/audit?${q}`);
        return output(ctx, page, () =>
          [
            table(
              ['AT', 'ACTOR', 'ROLE', 'IP', 'ACTION', 'TARGET', 'STATUS', 'ROWS'],
              page.items.map((e) => [e.at, e.actor, e.role, e.ip, e.action, e.target, e.status, auditRows(e.after)]),
            ),
            ...(page.nextCursor ? [`more: --cursor ${page.nextCursor}`] : []),
          ].join('\n'),
        );
      },
    },
    export: {
      usage: 'audit export [--format jsonl|csv] [--out FILE]',
      summary: 'the whole log, oldest first, to FILE or stdout',
      async run(ctx) {
        const format = opt(ctx, 'format') ?? 'jsonl';
        if (format !== 'jsonl' && format !== 'csv') throw new UsageError('--format: jsonl or csv');
        const text = String((await ctx.client.request('GET', `/v1/audit/export?format=${format}`)).body);
        const out = opt(ctx, 'out');
        if (!out) return text.replace(/\r?\n$/, '');
        await writeFile(ctx.file(out), text, { mode: 0o600 });
        return `wrote ${ctx.file(out)}`;
      },
    },
  },
};
