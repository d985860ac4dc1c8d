/**
 * Delivery control for admin API keys (others get 403): per-provider shaping state, pause and resume of
 * a provider or of one recipient domain, queue depth, retry-now and cancel of a message.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { cancelMessage, queueOverview, resumeDomain, resumeProvider, retryNow, type DeliveryControlDeps } from '../admin/delivery-control.js';
import { normalizeDomain } from '../lib/address.js';
import { MAX_PAUSE_SECONDS } from '../shaping/shaping-pauses.js';
import { KurirError } from '../lib/errors.js';
import { MESSAGE_ID_PATTERN } from '../lib/ids.js';
import { credentialOf } from './auth.js';
import { bearerSecurity, errorResponses, messageIdParamsSchema, noFieldsBody } from './schemas.js';
import { pausedDomainSchema, providerSchema, sourceIpSchema } from './shaping-schemas.js';

export type ShapingRoutesOptions = DeliveryControlDeps;

const domainParams = {
  type: 'object',
  required: ['domain'],
  properties: { domain: { type: 'string', minLength: 1, maxLength: 253 } },
} as const;

const providerParams = {
  type: 'object',
  required: ['provider'],
  // The name's rule is checked by the handler (`known`), in words; a schema pattern answered `must match pattern "…"`.
  properties: { provider: { type: 'string', maxLength: 253 } },
} as const;

const pauseBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { seconds: { type: 'integer', minimum: 1, maximum: MAX_PAUSE_SECONDS, description: 'Pause for this long (default: until resumed).' } },
} as const;

const countMap = { type: 'object', additionalProperties: { type: 'integer' } } as const;

/** Registers the delivery-control routes; register them in the admin scope (src/http/auth.ts). */
export const shapingRoutes: FastifyPluginAsync<ShapingRoutesOptions> = async (app: FastifyInstance, opts) => {
  const known = (provider: string): string => {
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(provider)) {
      throw new KurirError('VALIDATION', `provider: "${provider}" is not a provider name (lower-case letters, digits, _ and -, as in the provider map)`, {
        field: 'provider',
      });
    }
    if (!opts.shaper.names().includes(provider)) {
      throw new KurirError('NOT_FOUND', `provider ${provider} is not in the provider map (${opts.shaper.names().join(', ')})`, { field: 'provider' });
    }
    return provider;
  };
  const domainOf = (domain: string): string => {
    try {
      return normalizeDomain(domain);
    } catch {
      throw new KurirError('VALIDATION', `"${domain}" is not a recipient domain (e.g. example.org)`, { field: 'domain' });
    }
  };
  const messageId = (id: string): string => {
    if (!MESSAGE_ID_PATTERN.test(id)) throw new KurirError('NOT_FOUND', `message ${id} not found`, { field: 'id' });
    return id;
  };

  app.get(
    '/v1/shaping',
    {
      schema: {
        tags: ['delivery control'],
        summary: 'Per-provider limits, effective (adaptive) rate and pauses; paused recipient domains; source IPs and their warm-up',
        security: bearerSecurity,
        response: {
          200: {
            type: 'object',
            properties: {
              providers: { type: 'array', items: providerSchema },
              pausedDomains: { type: 'array', items: pausedDomainSchema },
              sourceIps: {
                type: 'array',
                items: sourceIpSchema,
                description: 'The source IPs of delivery.ipPools and their warm-up state (empty without pools).',
              },
            },
          },
          ...errorResponses(401, 403, 503),
        },
      },
    },
    async () => {
      const [providers, pausedDomains, sourceIps] = await Promise.all([opts.shaper.status(), opts.shaper.pausedDomains(), opts.sources?.status() ?? []]);
      return { providers, pausedDomains, sourceIps };
    },
  );

  app.post<{ Params: { domain: string }; Body: { seconds?: number } | null }>(
    '/v1/shaping/domains/:domain/pause',
    {
      schema: {
        tags: ['delivery control'],
        summary: 'Pause delivery to one recipient domain (whatever its provider): its messages wait (delayed), they do not fail',
        security: bearerSecurity,
        params: domainParams,
        body: pauseBody,
        response: { 200: pausedDomainSchema, ...errorResponses(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const domain = domainOf(request.params.domain);
      await opts.shaper.pauseDomain(domain, { by: credentialOf(request).name, seconds: request.body?.seconds });
      const after = (await opts.shaper.pausedDomains()).find((p) => p.domain === domain);
      request.auditDetail = { target: domain, after };
      return after;
    },
  );

  app.post<{ Params: { domain: string } }>(
    '/v1/shaping/domains/:domain/resume',
    {
      schema: {
        tags: ['delivery control'],
        summary: 'Resume a paused recipient domain; the messages it held run now',
        security: bearerSecurity,
        params: domainParams,
        body: noFieldsBody,
        response: {
          200: {
            type: 'object',
            properties: {
              domain: { type: 'string' },
              wasPaused: { type: 'boolean', description: 'false: the domain was not paused (or its timed pause had run out).' },
              promoted: { type: 'integer' },
            },
          },
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request) => {
      const domain = domainOf(request.params.domain);
      const before = (await opts.shaper.pausedDomains()).find((p) => p.domain === domain);
      const result = await resumeDomain(opts, domain, credentialOf(request).name);
      request.auditDetail = { target: domain, ...(before ? { before } : {}), after: result };
      return result;
    },
  );

  app.post<{ Params: { provider: string }; Body: { seconds?: number } | null }>(
    '/v1/shaping/:provider/pause',
    {
      schema: {
        tags: ['delivery control'],
        summary: 'Pause delivery to a provider: its messages wait (delayed), they do not fail',
        security: bearerSecurity,
        params: providerParams,
        body: pauseBody,
        response: { 200: providerSchema, ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      const provider = known(request.params.provider);
      await opts.shaper.pause(provider, { by: credentialOf(request).name, seconds: request.body?.seconds });
      const after = (await opts.shaper.status()).find((s) => s.provider === provider);
      request.auditDetail = { target: provider, after };
      return after;
    },
  );

  app.post<{ Params: { provider: string } }>(
    '/v1/shaping/:provider/resume',
    {
      schema: {
        tags: ['delivery control'],
        summary: 'Resume a paused provider (also ends an adaptive back-off); held messages run now',
        security: bearerSecurity,
        params: providerParams,
        body: noFieldsBody,
        response: {
          200: { type: 'object', properties: { provider: { type: 'string' }, promoted: { type: 'integer' }, state: providerSchema } },
          ...errorResponses(400, 401, 403, 404, 503),
        },
      },
    },
    async (request) => {
      const provider = known(request.params.provider);
      const result = await resumeProvider(opts, provider, credentialOf(request).name);
      const answer = { ...result, state: (await opts.shaper.status()).find((s) => s.provider === provider) };
      request.auditDetail = { target: provider, after: answer };
      return answer;
    },
  );

  app.get(
    '/v1/queue',
    {
      schema: {
        tags: ['delivery control'],
        summary: "Queue depth by state, ready jobs by priority, held jobs per provider; with redis.shards, each shard's queue (marked when it does not answer)",
        security: bearerSecurity,
        response: {
          200: {
            type: 'object',
            properties: {
              states: countMap,
              readyByPriority: countMap,
              providers: {
                type: 'object',
                additionalProperties: {
                  type: 'object',
                  properties: { held: { type: 'integer' }, paused: { type: 'boolean' }, connectionsInUse: { type: 'integer' } },
                },
              },
              shards: {
                type: 'object',
                description: 'Only with redis.shards: per shard name, its queue; available false (and the error) while its Redis does not answer.',
                additionalProperties: {
                  type: 'object',
                  properties: { available: { type: 'boolean' }, error: { type: 'string' }, states: countMap, readyByPriority: countMap },
                },
              },
            },
          },
          ...errorResponses(401, 403, 503),
        },
      },
    },
    async () => queueOverview(opts),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/messages/:id/retry',
    {
      schema: {
        tags: ['delivery control'],
        summary: 'Try a message now: delayed jobs are promoted, failed ones retried, missing ones re-created (shaping still applies)',
        security: bearerSecurity,
        params: messageIdParamsSchema,
        body: noFieldsBody,
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              jobs: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    domain: { type: 'string' },
                    state: { type: 'string', description: 'job state before the call (missing: there was none)' },
                    promoted: { type: 'boolean', description: 'true: the job will now run' },
                  },
                },
              },
            },
          },
          ...errorResponses(400, 401, 403, 404, 409, 503),
        },
      },
    },
    async (request) => {
      const result = await retryNow(opts, messageId(request.params.id));
      request.auditDetail = { target: result.id, after: result };
      return result;
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/messages/:id/cancel',
    {
      schema: {
        tags: ['delivery control'],
        summary: 'Cancel a message: recipients not yet final become expired ("cancelled by <key>"), jobs are removed',
        security: bearerSecurity,
        params: messageIdParamsSchema,
        body: noFieldsBody,
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' },
              cancelled: { type: 'array', items: { type: 'string' } },
              inFlight: { type: 'array', items: { type: 'string' }, description: 'Domains in the middle of an SMTP transaction (cannot be stopped).' },
            },
          },
          ...errorResponses(400, 401, 403, 404, 409, 503),
        },
      },
    },
    async (request) => {
      const result = await cancelMessage(opts, messageId(request.params.id), credentialOf(request).name);
      request.auditDetail = { target: result.id, after: result };
      return result;
    },
  );
};
