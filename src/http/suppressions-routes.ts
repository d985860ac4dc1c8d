/**
 * Suppression list API: list (paged, by domain and reason), add, CSV export and all-or-nothing CSV
 * import for admin keys; look-up and removal of one address for support and admin keys.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { exportCsv, importSuppressionCsv } from '../admin/suppressions.js';
import { normalizeAddress, normalizeDomain } from '../lib/address.js';
import type { Clock } from '../lib/clock.js';
import { KurirError } from '../lib/errors.js';
import { decodeCursor, type Suppression, type SuppressionStore } from '../store/suppression-store.js';
import { auditExportStart, filterTarget, untilEnd } from './audit-trail.js';
import { credentialOf } from './auth.js';
import { bearerSecurity, errorResponses } from './schemas.js';

export interface SuppressionsRoutesOptions {
  suppressions: SuppressionStore;
  clock: Clock;
}

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 50;

const entrySchema = {
  type: 'object',
  required: ['address', 'reason', 'source', 'at'],
  properties: {
    address: { type: 'string' },
    reason: { type: 'string' },
    source: { type: 'string', description: 'Who added it: bounce, complaint, api:<key>, import:<key>, cli, …' },
    at: { type: 'string', format: 'date-time' },
    messageId: { type: 'string', description: 'The message whose bounce or complaint caused it, if any.' },
  },
} as const;

const filterQuery = {
  domain: { type: 'string', maxLength: 253, description: 'Only addresses at this domain.' },
  reason: { type: 'string', maxLength: 200, description: 'Only entries with this reason (case-insensitive).' },
} as const;

const listQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filterQuery,
    cursor: { type: 'string', maxLength: 2000, description: '`nextCursor` of the previous page.' },
    // Checked by the handler, which says the rule in words (a schema pattern answered `must match pattern "…"`).
    limit: { type: 'string', maxLength: 20, description: `Page size, 1–${MAX_LIMIT} (default ${DEFAULT_LIMIT}).` },
  },
} as const;

const addressParams = { type: 'object', required: ['address'], properties: { address: { type: 'string', maxLength: 998 } } } as const;

const putBodySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: {
    reason: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\x00-\\x1f\\x7f]+$' },
    // The import's rules (src/admin/suppressions.ts), so every exported entry imports again.
    messageId: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\x00-\\x1f\\x7f]+$' },
  },
} as const;

interface ListQuery {
  domain?: string;
  reason?: string;
  cursor?: string;
  limit?: string;
}

/** An entry as the API shows it: time in ISO 8601. */
export function presentSuppression(e: Suppression): Record<string, unknown> {
  return { address: e.address, reason: e.reason, source: e.source, at: new Date(e.at).toISOString(), ...(e.messageId ? { messageId: e.messageId } : {}) };
}

function filters(q: ListQuery): { domain?: string; reason?: string } {
  return { domain: q.domain ? normalizeDomain(q.domain, 'domain') : undefined, reason: q.reason || undefined };
}

function contentType(request: FastifyRequest): string {
  return String(request.headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
}

/** Registers the suppression routes; register them in the admin scope (src/http/auth.ts). */
export const suppressionsRoutes: FastifyPluginAsync<SuppressionsRoutesOptions> = async (app: FastifyInstance, opts) => {
  const { suppressions, clock } = opts;
  app.addContentTypeParser('text/csv', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  const common = { tags: ['suppressions'], security: bearerSecurity };

  app.get<{ Querystring: ListQuery }>(
    '/v1/suppressions',
    {
      // Audited with the filter as target and the rows answered; never the addresses (nor the cursor, which holds one).
      config: { auditRead: 'view' },
      schema: {
        ...common,
        summary: 'List suppressed addresses in address order, a page at a time, optionally by domain and reason (audited)',
        querystring: listQuerySchema,
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: entrySchema }, nextCursor: { type: 'string', nullable: true } } },
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const q = request.query;
      // As given until checked (a refused filter is audited too), then as read.
      request.auditDetail = { target: filterTarget({ domain: q.domain, reason: q.reason }) };
      const limit = q.limit === undefined ? DEFAULT_LIMIT : /^[0-9]{1,4}$/.test(q.limit) ? Number(q.limit) : Number.NaN;
      if (!(limit >= 1 && limit <= MAX_LIMIT)) throw new KurirError('VALIDATION', `limit: a whole number from 1 to ${MAX_LIMIT}`, { field: 'limit' });
      // The store reads a cursor it cannot decode as "from the start": here that would answer page one again.
      if (q.cursor !== undefined && decodeCursor(q.cursor) === null) {
        throw new KurirError('VALIDATION', 'cursor: must be the nextCursor of a previous page', { field: 'cursor' });
      }
      const filter = filters(q);
      const page = await suppressions.list({ ...filter, cursor: q.cursor, limit });
      request.auditDetail = { target: filterTarget(filter), after: { rows: page.items.length, nextPage: page.nextCursor !== null } };
      return { items: page.items.map(presentSuppression), nextCursor: page.nextCursor };
    },
  );

  app.get<{ Querystring: ListQuery }>(
    '/v1/suppressions/export',
    {
      config: { auditRead: 'export' },
      schema: {
        ...common,
        summary:
          'Export the list (optionally filtered) as CSV: address,reason,source,at,messageId (audited before it starts: 503 when the audit log cannot be written)',
        querystring: { type: 'object', additionalProperties: false, properties: filterQuery },
        response: errorResponses(400, 401, 403, 503),
      },
    },
    async (request, reply) => {
      const filter = filters(request.query);
      const target = filterTarget(filter);
      await auditExportStart(request, target);
      const detail: { target: string; after: { rows: number; complete: boolean } } = { target, after: { rows: 0, complete: false } };
      request.auditDetail = detail;
      const rows = exportCsv(suppressions, filter, (n) => {
        detail.after.rows += n;
      });
      const stream = Readable.from(untilEnd(rows, () => (detail.after.complete = true)));
      return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="suppressions.csv"').send(stream);
    },
  );

  app.post(
    '/v1/suppressions/import',
    {
      schema: {
        ...common,
        summary: 'Import a CSV (text/csv) all or nothing: any invalid row → 400 listing every bad line, nothing imported',
        consumes: ['text/csv'],
        response: {
          200: { type: 'object', properties: { imported: { type: 'integer' }, added: { type: 'integer' } } },
          ...errorResponses(400, 401, 403, 413, 415, 503),
        },
      },
    },
    async (request) => {
      if (contentType(request) !== 'text/csv' || typeof request.body !== 'string') {
        throw new KurirError('UNSUPPORTED_MEDIA', 'Content-Type must be text/csv', { field: 'Content-Type' });
      }
      const source = `import:${credentialOf(request).name}`;
      const result = await importSuppressionCsv(suppressions, request.body, { now: clock.now(), defaultSource: source });
      request.auditDetail = { after: result };
      return result;
    },
  );

  app.put<{ Params: { address: string }; Body: { reason: string; messageId?: string } }>(
    '/v1/suppressions/:address',
    {
      schema: {
        ...common,
        summary: 'Suppress an address (201) or replace its entry (200)',
        params: addressParams,
        body: putBodySchema,
        response: { 200: entrySchema, 201: entrySchema, ...errorResponses(400, 401, 403, 503) },
      },
    },
    async (request, reply) => {
      const address = normalizeAddress(request.params.address, 'address');
      const { reason, messageId } = request.body;
      const entry: Suppression = { address, reason, source: `api:${credentialOf(request).name}`, at: clock.now(), ...(messageId ? { messageId } : {}) };
      const before = await suppressions.get(address);
      const created = await suppressions.add(entry);
      request.auditDetail = { target: address, ...(before ? { before: presentSuppression(before) } : {}), after: presentSuppression(entry) };
      request.log.info({ address, reason, by: entry.source }, created ? 'suppression added' : 'suppression replaced');
      return reply.code(created ? 201 : 200).send(presentSuppression(entry));
    },
  );
};

/**
 * Look-up and removal of one address: what support needs ("why does she get nothing?"). Register them in
 * the support scope (src/http/auth.ts), which audits every request.
 */
export const suppressionSupportRoutes: FastifyPluginAsync<{ suppressions: SuppressionStore }> = async (app: FastifyInstance, opts) => {
  const { suppressions } = opts;
  const common = { tags: ['suppressions'], security: bearerSecurity };

  app.get<{ Params: { address: string } }>(
    '/v1/suppressions/:address',
    {
      config: { auditRead: 'view' },
      schema: { ...common, summary: 'Look up one address', params: addressParams, response: { 200: entrySchema, ...errorResponses(400, 401, 403, 404, 503) } },
    },
    async (request) => {
      const address = normalizeAddress(request.params.address, 'address');
      request.auditDetail = { target: address };
      const entry = await suppressions.get(address);
      if (!entry) throw new KurirError('NOT_FOUND', `${address} is not suppressed`, { field: 'address' });
      return presentSuppression(entry);
    },
  );

  app.delete<{ Params: { address: string } }>(
    '/v1/suppressions/:address',
    {
      schema: {
        ...common,
        summary: 'Remove an address from the list',
        params: addressParams,
        response: { 204: { type: 'null' }, ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      const address = normalizeAddress(request.params.address, 'address');
      const before = await suppressions.get(address);
      request.auditDetail = { target: address, ...(before ? { before: presentSuppression(before) } : {}) };
      if (!before || !(await suppressions.remove(address))) throw new KurirError('NOT_FOUND', `${address} is not suppressed`, { field: 'address' });
      request.log.info({ address, by: credentialOf(request).name }, 'suppression removed');
      return reply.code(204).send();
    },
  );
};
