/**
 * The webhook of the calling API key: its state (`disabled` with the reason after sustained failure),
 * re-enabling it, and its recent delivery attempts. Admin keys may name another key with `?key=`.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { webhookTargetResolver, type WebhookTarget, type WebhookTargetOf } from '../webhooks/events.js';
import { KurirError } from '../lib/errors.js';
import { displayWebhookUrl } from '../lib/webhook-url.js';
import type { WebhookStore } from '../store/webhook-store.js';
import { credentialOf } from './auth.js';
import { bearerSecurity, errorResponses } from './schemas.js';

export interface WebhooksRoutesOptions {
  config: Config;
  store: WebhookStore;
  /** Who has a webhook (default: the configured keys only). */
  targetOf?: WebhookTargetOf;
}

const isoTime = { type: 'string', format: 'date-time' } as const;
const keyQuery = { key: { type: 'string', maxLength: 200, description: 'Admin keys only: the API key name to look at (default: the caller).' } } as const;

const stateSchema = {
  type: 'object',
  properties: {
    key: { type: 'string' },
    configured: { type: 'boolean' },
    url: { type: 'string' },
    events: { type: 'array', items: { type: 'string' } },
    disabled: { type: 'boolean' },
    reason: { type: 'string', nullable: true, description: 'Why it was disabled.' },
    disabledAt: { ...isoTime, nullable: true },
    consecutiveFailures: { type: 'integer' },
  },
} as const;

const attemptSchema = {
  type: 'object',
  properties: {
    eventId: { type: 'string' },
    type: { type: 'string' },
    messageId: { type: 'string' },
    attempt: { type: 'integer' },
    at: isoTime,
    result: { type: 'string', enum: ['sent', 'failed'] },
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    durationMs: { type: 'integer' },
  },
} as const;

interface KeyQuery {
  key?: string;
  limit?: string;
}

/** Registers the webhook routes; register them in the send scope (src/http/auth.ts). */
export const webhooksRoutes: FastifyPluginAsync<WebhooksRoutesOptions> = async (app: FastifyInstance, opts) => {
  const { store } = opts;
  const targetFor = opts.targetOf ?? webhookTargetResolver(opts.config);
  const common = { tags: ['webhooks'], security: bearerSecurity };

  /** The key a request is about: its own, or (admins only) the one named by `?key=`. */
  const keyOf = (request: FastifyRequest<{ Querystring: KeyQuery }>): string => {
    const cred = credentialOf(request);
    const named = request.query.key;
    if (named === undefined || named === cred.name) return cred.name;
    if (!cred.admin) throw new KurirError('FORBIDDEN', 'key: only admin keys may look at another key', { field: 'key' });
    return named;
  };
  const targetOf = (key: string): WebhookTarget => {
    const target = targetFor(key);
    if (!target) throw new KurirError('NOT_FOUND', `no webhook is configured for key ${key}`, { field: 'key' });
    return target;
  };

  app.get<{ Querystring: KeyQuery }>(
    '/v1/webhooks',
    {
      schema: {
        ...common,
        summary: "The key's webhook: URL, events, and whether it was disabled after sustained failure (and why)",
        querystring: { type: 'object', additionalProperties: false, properties: keyQuery },
        response: { 200: stateSchema, ...errorResponses(401, 403, 503) },
      },
    },
    async (request) => {
      const key = keyOf(request);
      const target = targetFor(key);
      if (!target) return { key, configured: false, disabled: false, reason: null, disabledAt: null, consecutiveFailures: 0 };
      const s = await store.state(key);
      return {
        key,
        configured: true,
        url: displayWebhookUrl(target.url),
        events: [...target.events],
        disabled: s.disabled,
        reason: s.disabledReason ?? null,
        disabledAt: s.disabledAt !== undefined ? new Date(s.disabledAt).toISOString() : null,
        consecutiveFailures: s.consecutiveFailures,
      };
    },
  );

  app.post<{ Querystring: KeyQuery }>(
    '/v1/webhooks/enable',
    {
      schema: {
        ...common,
        summary: 'Resume a paused (disabled) webhook at once and reset its failure count; its held events go out within webhooks.pausedRetrySeconds',
        querystring: { type: 'object', additionalProperties: false, properties: keyQuery },
        response: { 200: { type: 'object', properties: { key: { type: 'string' }, wasDisabled: { type: 'boolean' } } }, ...errorResponses(401, 403, 404, 503) },
      },
    },
    async (request) => {
      const key = keyOf(request);
      targetOf(key);
      const wasDisabled = await store.enable(key);
      if (wasDisabled) request.log.info({ key, by: credentialOf(request).name }, 'webhook re-enabled');
      return { key, wasDisabled };
    },
  );

  app.get<{ Querystring: KeyQuery }>(
    '/v1/webhooks/deliveries',
    {
      schema: {
        ...common,
        summary: 'Recent delivery attempts of the key’s webhook, newest first, with status code or error',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...keyQuery,
            limit: { type: 'string', pattern: '^[0-9]{1,4}$', description: 'At most this many (default 50, up to the kept history).' },
          },
        },
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: attemptSchema } } }, ...errorResponses(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const key = keyOf(request);
      const limit = request.query.limit === undefined ? 50 : Number(request.query.limit);
      if (!(limit >= 1)) throw new KurirError('VALIDATION', 'limit: must be at least 1', { field: 'limit' });
      const items = await store.attempts(key, Math.min(limit, opts.config.webhooks.historySize));
      return { items: items.map((a) => ({ ...a, at: new Date(a.at).toISOString() })) };
    },
  );
};
