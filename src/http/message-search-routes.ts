/**
 * `GET /v1/messages?to=<address>`: every message to one recipient address, newest first, a page at a
 * time — what support looks up when someone says "I never received my code". Register it in the support
 * scope (src/http/auth.ts); every search is audited there.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { normalizeAddress } from '../lib/address.js';
import { KurirError, toKurirError } from '../lib/errors.js';
import type { MessageStore } from '../store/message-store.js';
import { bearerSecurity, errorResponses } from './schemas.js';

const MAX_LIMIT = 100;
const DEFAULT_LIMIT = 20;

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

const summarySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string', description: 'Status of the whole message.' },
    createdAt: { type: 'string', format: 'date-time' },
    from: { type: 'string' },
    subject: { type: 'string' },
    priority: { type: 'string' },
    owner: { type: 'string', description: 'The credential that sent it.' },
    recipient: {
      type: 'object',
      description: 'State of the searched address in this message.',
      properties: {
        status: { type: 'string' },
        attempts: { type: 'integer' },
        updatedAt: { type: 'string', format: 'date-time' },
        reply: { type: 'string', description: "The receiver's last reply." },
        category: { type: 'string' },
        remoteHost: { type: 'string' },
        nextAttemptAt: { type: 'string', format: 'date-time', nullable: true },
      },
    },
  },
} as const;

interface SearchQuery {
  to: string;
  cursor?: string;
  limit?: string;
}

/** Registers the search by recipient; register it in the support scope. */
export const messageSearchRoutes: FastifyPluginAsync<{ messages: MessageStore }> = async (app: FastifyInstance, opts) => {
  const { messages } = opts;
  app.get<{ Querystring: SearchQuery }>(
    '/v1/messages',
    {
      schema: {
        tags: ['messages'],
        summary: 'Messages to one recipient address, newest first, a page at a time (support and admin keys; audited)',
        security: bearerSecurity,
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['to'],
          properties: {
            to: { type: 'string', maxLength: 998, description: 'The recipient address.' },
            cursor: { type: 'string', pattern: '^[0-9]{1,6}$', description: '`nextCursor` of the previous page.' },
            limit: { type: 'string', pattern: '^[0-9]{1,3}$', description: `Page size, 1–${MAX_LIMIT} (default ${DEFAULT_LIMIT}).` },
          },
        },
        response: {
          200: { type: 'object', properties: { items: { type: 'array', items: summarySchema }, nextCursor: { type: 'string', nullable: true } } },
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const address = normalizeAddress(request.query.to, 'to');
      request.auditDetail = { target: address };
      const limit = request.query.limit === undefined ? DEFAULT_LIMIT : Number(request.query.limit);
      if (!(limit >= 1 && limit <= MAX_LIMIT)) throw new KurirError('VALIDATION', `limit: must be 1 to ${MAX_LIMIT}`, { field: 'limit' });
      const offset = request.query.cursor === undefined ? 0 : Number(request.query.cursor);
      const page = await messages.idsByRecipient(address, offset, limit).catch((err: unknown) => {
        throw toKurirError(err);
      });
      const views = await Promise.all(page.ids.map((id) => messages.get(id)));
      const items = views.flatMap((view) => {
        if (!view) return []; // expired since it was indexed
        const r = view.record;
        const state = Object.entries(view.recipients).find(([a]) => a.toLowerCase() === address.toLowerCase())?.[1];
        return [
          {
            id: r.id,
            status: view.status,
            createdAt: iso(r.createdAt),
            from: r.mailFrom,
            subject: r.subject,
            priority: r.priority,
            owner: r.owner,
            ...(state
              ? {
                  recipient: {
                    status: state.status,
                    attempts: state.attempts,
                    updatedAt: iso(state.updatedAt),
                    ...(state.reply ? { reply: state.reply } : {}),
                    ...(state.category ? { category: state.category } : {}),
                    ...(state.remoteHost ? { remoteHost: state.remoteHost } : {}),
                    nextAttemptAt: iso(state.nextAttemptAt),
                  },
                }
              : {}),
          },
        ];
      });
      return { items, nextCursor: page.more ? String(offset + limit) : null };
    },
  );
};
