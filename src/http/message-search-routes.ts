/**
 * `GET /v1/messages?to=<address>` or `?reference=<booking reference>`: the messages to one recipient
 * address, or carrying one booking reference, newest first, a page at a time, with the resend outlook of
 * the address(es) — what support looks up when someone says "I never received my code". Register it in
 * the support scope (src/http/auth.ts); every search is audited there, an answered one with its rows.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { ResendHint } from '../intake/resend-hint.js';
import { shownSubject } from '../intake/subject-summary.js';
import { normalizeAddress } from '../lib/address.js';
import { KurirError, toKurirError } from '../lib/errors.js';
import type { MessageStore } from '../store/message-store.js';
import type { MessageView } from '../store/types.js';
import { bearerSecurity, errorResponses } from './schemas.js';
import { presentSuppression } from './suppressions-routes.js';

const MAX_LIMIT = 100;
const DEFAULT_LIMIT = 20;
/** Addresses whose resend outlook a reference search answers (the distinct recipients of the page). */
const MAX_RESEND_HINTS = 10;

const iso = (ms: number | undefined | null): string | null => (ms === undefined || ms === null ? null : new Date(ms).toISOString());

const summarySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string', description: 'Status of the whole message.' },
    createdAt: { type: 'string', format: 'date-time' },
    from: { type: 'string' },
    to: { type: 'array', items: { type: 'string' }, description: 'Every recipient of the message.' },
    subject: { type: 'string' },
    priority: { type: 'string' },
    owner: { type: 'string', description: 'The credential that sent it.' },
    reference: { type: 'string', description: 'The booking reference (metadata `intake.referenceKey` or header X-Kurir-Reference).' },
    recipient: {
      type: 'object',
      description:
        'State of the searched address in this message (searches by `to`). Status `suppressed`: left out of the message at intake, never sent (an SMTP recipient suppressed after its RCPT TO was accepted), with the suppression `reason`.',
      properties: {
        status: { type: 'string' },
        reason: { type: 'string', description: 'With status `suppressed`: why the address is suppressed.' },
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

/** The resend outlook of one address in the answer. */
export const resendSchema = {
  type: 'object',
  description: 'Whether the booking system could send one more message to this address now (suppression and per-recipient limit; read without consuming).',
  properties: {
    address: { type: 'string' },
    allowed: { type: 'boolean', description: 'A new message of a limited priority would be accepted now.' },
    reason: { type: 'string', enum: ['suppressed', 'recipient-limit'], nullable: true, description: 'Why not.' },
    nextAllowedAt: { type: 'string', format: 'date-time', nullable: true, description: 'Now when allowed; null while suppressed.' },
    suppression: {
      type: 'object',
      nullable: true,
      description: 'Suppressed: new messages are refused (422 / 550 5.1.1) until the suppression is removed.',
      properties: { address: { type: 'string' }, reason: { type: 'string' }, source: { type: 'string' }, at: { type: 'string', format: 'date-time' } },
    },
    limit: {
      type: 'object',
      nullable: true,
      description: 'The per-recipient limit (`limits.recipient`) and its use in the current window; null when none applies.',
      properties: {
        max: { type: 'integer' },
        windowSeconds: { type: 'integer' },
        priorities: { type: 'array', items: { type: 'string' } },
        used: { type: 'integer' },
      },
    },
  },
} as const;

/** The API form of a resend outlook. */
export function presentResendHint(h: ResendHint): Record<string, unknown> {
  return {
    address: h.address,
    allowed: h.allowed,
    reason: h.reason,
    nextAllowedAt: iso(h.nextAllowedAt),
    suppression: h.suppression ? presentSuppression(h.suppression) : null,
    limit: h.limit ? { max: h.limit.max, windowSeconds: h.limit.windowSeconds, priorities: h.limit.priorities, used: h.limit.used } : null,
  };
}

interface SearchQuery {
  to?: string;
  reference?: string;
  cursor?: string;
  limit?: string;
}

export interface MessageSearchOptions {
  messages: MessageStore;
  /** The resend outlook of an address (IntakeService.resendHint); without it the answer has none. */
  resendHint?: (address: string) => Promise<ResendHint>;
}

/** The searched address's entry of a summary when it was left out of the message at intake (MessageRecord.leftOut). */
function leftOutEntry(view: MessageView, address: string): Record<string, unknown> | undefined {
  const left = view.record.leftOut?.find((l) => l.address.toLowerCase() === address.toLowerCase());
  return left && { status: 'suppressed', reason: left.reason, attempts: 0, updatedAt: iso(view.record.createdAt), nextAttemptAt: null };
}

function summary(view: MessageView, address: string | null): Record<string, unknown> {
  const r = view.record;
  const state = address ? Object.entries(view.recipients).find(([a]) => a.toLowerCase() === address.toLowerCase())?.[1] : undefined;
  const leftOut = address && !state ? leftOutEntry(view, address) : undefined;
  return {
    id: r.id,
    status: view.status,
    createdAt: iso(r.createdAt),
    from: r.mailFrom,
    to: r.recipients,
    subject: shownSubject(r.subject),
    priority: r.priority,
    owner: r.owner,
    ...(r.reference ? { reference: r.reference } : {}),
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
      : leftOut
        ? { recipient: leftOut }
        : {}),
  };
}

/** Registers the search by recipient or booking reference; register it in the support scope. */
export const messageSearchRoutes: FastifyPluginAsync<MessageSearchOptions> = async (app: FastifyInstance, opts) => {
  const { messages } = opts;
  app.get<{ Querystring: SearchQuery }>(
    '/v1/messages',
    {
      config: { auditRead: 'view' },
      schema: {
        tags: ['messages'],
        summary: 'Messages to one recipient address or with one booking reference, newest first, with the resend outlook (support and admin keys; audited)',
        security: bearerSecurity,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            to: { type: 'string', maxLength: 998, description: 'The recipient address (give `to` or `reference`).' },
            reference: { type: 'string', minLength: 1, maxLength: 256, description: 'The booking reference, case-insensitive (give `to` or `reference`).' },
            cursor: { type: 'string', pattern: '^[0-9]{1,6}$', description: '`nextCursor` of the previous page.' },
            // Checked by the handler, which says the rule in words (a schema pattern answered `must match pattern "…"`).
            limit: { type: 'string', maxLength: 20, description: `Page size, 1–${MAX_LIMIT} (default ${DEFAULT_LIMIT}).` },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              items: { type: 'array', items: summarySchema },
              nextCursor: { type: 'string', nullable: true },
              resend: {
                type: 'array',
                items: resendSchema,
                description: `The searched address's outlook; for a reference, that of each recipient of the page (at most ${MAX_RESEND_HINTS}).`,
              },
              unavailableShards: {
                type: 'array',
                items: { type: 'string' },
                description:
                  'Present only during a shard outage (`redis.shards`): the shards that did not answer. Their messages are missing from `items`; ask again once they are back. 503 when no Redis answers.',
              },
            },
          },
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const { to, reference } = request.query;
      if ((to === undefined) === (reference === undefined)) throw new KurirError('VALIDATION', 'to or reference: give exactly one', { field: 'to' });
      const address = to !== undefined ? normalizeAddress(to, 'to') : null;
      const ref = reference?.trim() ?? '';
      if (address === null && !ref) throw new KurirError('VALIDATION', 'reference: must not be blank', { field: 'reference' });
      request.auditDetail = { target: address ?? `reference:${ref}` };
      const limit = request.query.limit === undefined ? DEFAULT_LIMIT : /^[0-9]{1,3}$/.test(request.query.limit) ? Number(request.query.limit) : Number.NaN;
      if (!(limit >= 1 && limit <= MAX_LIMIT)) throw new KurirError('VALIDATION', `limit: a whole number from 1 to ${MAX_LIMIT}`, { field: 'limit' });
      const offset = request.query.cursor === undefined ? 0 : Number(request.query.cursor);
      const fail = (err: unknown): never => {
        throw toKurirError(err);
      };
      const page = await (address !== null ? messages.idsByRecipient(address, offset, limit) : messages.idsByReference(ref, offset, limit)).catch(fail);
      // Ids whose message expired since it was indexed are skipped.
      const views = (await Promise.all(page.ids.map((id) => messages.get(id))).catch(fail)).filter((v): v is MessageView => v !== null);
      const addresses =
        address !== null ? [address] : [...new Set(views.flatMap((v) => v.record.recipients.map((a) => a.toLowerCase())))].slice(0, MAX_RESEND_HINTS);
      const hints = opts.resendHint ? await Promise.all(addresses.map((a) => opts.resendHint!(a))) : [];
      // Counted like a page of the suppression list: how many messages were answered, never which.
      request.auditDetail = { target: address ?? `reference:${ref}`, after: { rows: views.length, nextPage: page.more } };
      return {
        items: views.map((v) => summary(v, address)),
        nextCursor: page.more ? String(offset + limit) : null,
        resend: hints.map(presentResendHint),
        ...(page.unavailable ? { unavailableShards: page.unavailable } : {}),
      };
    },
  );
};
