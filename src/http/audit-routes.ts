/**
 * `GET /v1/audit` (newest first, paged) and `GET /v1/audit/export` (oldest first, JSON lines or CSV):
 * the audit log of admin and support actions. Register them in the admin scope. Paging the log is not itself
 * audited (each review would add to what it reviews); an export is, as a bulk read (src/http/audit-trail.ts).
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { KurirError } from '../lib/errors.js';
import { spreadsheetSafe } from '../lib/spreadsheet-cell.js';
import type { AuditStore, StoredAuditEntry } from '../store/audit-store.js';
import { auditExportStart, untilEnd } from './audit-trail.js';
import { bearerSecurity, errorResponses } from './schemas.js';

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;
/** Each part of a Redis stream id (`<ms>-<seq>`) is a 64-bit unsigned integer. */
const MAX_STREAM_ID_PART = 2n ** 64n - 1n;
const CSV_COLUMNS = ['id', 'at', 'actor', 'role', 'ip', 'action', 'target', 'status', 'before', 'after'] as const;

/** An entry as the API shows it: time in ISO 8601. */
export function presentAudit(e: StoredAuditEntry): Record<string, unknown> {
  return { ...e, at: new Date(e.at).toISOString() };
}

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  // Quote always; a leading = + - @ tab CR is prefixed with ' so a spreadsheet does not run it as a formula.
  return `"${spreadsheetSafe(s).replace(/"/g, '""')}"`;
}

/** The export as text chunks: JSON lines, or CSV with a header row; `onRows` hears the entries of each page as it goes out. */
export async function* auditExport(store: AuditStore, format: 'jsonl' | 'csv', onRows: (rows: number) => void = () => undefined): AsyncGenerator<string> {
  if (format === 'csv') yield `${CSV_COLUMNS.join(',')}\r\n`;
  for await (const page of store.all()) {
    onRows(page.length);
    let chunk = '';
    for (const e of page) {
      const view = presentAudit(e);
      chunk += format === 'jsonl' ? `${JSON.stringify(view)}\n` : `${CSV_COLUMNS.map((c) => csvCell(view[c])).join(',')}\r\n`;
    }
    yield chunk;
  }
}

const entrySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    at: { type: 'string', format: 'date-time' },
    actor: { type: 'string' },
    role: { type: 'string' },
    ip: { type: 'string' },
    action: { type: 'string' },
    target: { type: 'string' },
    status: { type: 'integer' },
    before: {},
    after: {},
  },
} as const;

/** Registers the audit routes; register them in the admin scope. */
export const auditRoutes: FastifyPluginAsync<{ store: AuditStore }> = async (app: FastifyInstance, opts) => {
  const { store } = opts;
  const common = { tags: ['audit'], security: bearerSecurity };

  app.get<{ Querystring: { cursor?: string; limit?: string } }>(
    '/v1/audit',
    {
      schema: {
        ...common,
        summary: 'The audit log, newest first, a page at a time',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            cursor: { type: 'string', pattern: '^[0-9]{1,20}-[0-9]{1,20}$', description: '`nextCursor` of the previous page.' },
            // Checked by the handler, which says the rule in words (a schema pattern answered `must match pattern "…"`).
            limit: { type: 'string', maxLength: 20, description: `Page size, 1–${MAX_LIMIT} (default ${DEFAULT_LIMIT}).` },
          },
        },
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: entrySchema }, nextCursor: { type: 'string', nullable: true } } },
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const limit = request.query.limit === undefined ? DEFAULT_LIMIT : /^[0-9]{1,4}$/.test(request.query.limit) ? Number(request.query.limit) : Number.NaN;
      if (!(limit >= 1 && limit <= MAX_LIMIT)) throw new KurirError('VALIDATION', `limit: a whole number from 1 to ${MAX_LIMIT}`, { field: 'limit' });
      const cursor = request.query.cursor;
      const parts = cursor?.split('-').map(BigInt) ?? [];
      if (parts.some((part) => part > MAX_STREAM_ID_PART)) {
        throw new KurirError('VALIDATION', 'cursor: must be the nextCursor of a previous page', { field: 'cursor' });
      }
      // Nothing is older than the smallest stream id, 0-0 (Redis refuses the range).
      if (parts.length && parts.every((part) => part === 0n)) return { items: [], nextCursor: null };
      const page = await store.page(limit, cursor);
      return { items: page.items.map(presentAudit), nextCursor: page.more ? page.items[page.items.length - 1].id : null };
    },
  );

  app.get<{ Querystring: { format?: 'jsonl' | 'csv' } }>(
    '/v1/audit/export',
    {
      // The log names the addresses support looked up: taking it out is audited like the suppression export.
      config: { auditRead: 'export' },
      schema: {
        ...common,
        summary: 'The whole audit log, oldest first, as JSON lines (default) or CSV (audited before it starts: 503 when the log cannot be written)',
        querystring: { type: 'object', additionalProperties: false, properties: { format: { type: 'string', enum: ['jsonl', 'csv'] } } },
        response: errorResponses(400, 401, 403, 503),
      },
    },
    async (request, reply) => {
      const format = request.query.format ?? 'jsonl';
      const type = format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson';
      const target = `format=${format}`;
      await auditExportStart(request, target);
      const detail = { target, after: { rows: 0, complete: false } };
      request.auditDetail = detail;
      const chunks = auditExport(store, format, (n) => {
        detail.after.rows += n;
      });
      return reply
        .type(type)
        .header('content-disposition', `attachment; filename="kurir-audit.${format}"`)
        .send(Readable.from(untilEnd(chunks, () => (detail.after.complete = true))));
    },
  );
};
