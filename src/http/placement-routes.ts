/**
 * Placement and confirmations over HTTP: `GET /v1/placement` and `POST /v1/placement/probes` (registered in
 * the admin scope), `POST /v1/messages/:id/confirm` and `POST /v1/confirmations/:token` (in the send scope:
 * the key that sent the message, or an admin key). Authentication is the scope's (src/http/auth.ts).
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Config } from '../config/schema.js';
import type { Clock } from '../lib/clock.js';
import { KurirError, toKurirError } from '../lib/errors.js';
import type { Confirmations, Confirmed } from '../placement/confirmations.js';
import { summarise } from '../placement/placement-summary.js';
import type { PlacementStore } from '../store/placement-store.js';
import { credentialOf } from './auth.js';
import { bearerSecurity, errorResponses } from './schemas.js';

export interface PlacementRoutesOptions {
  config: Config;
  store: PlacementStore;
  confirmations: Confirmations;
  clock: Clock;
}

const confirmedSchema = {
  description: 'Confirmed (also the answer to a repeat: `duplicate` is then true and `confirmedAt` the first time).',
  type: 'object',
  required: ['id', 'confirmed', 'confirmedAt', 'duplicate', 'counted'],
  properties: {
    id: { type: 'string' },
    confirmed: { type: 'boolean' },
    confirmedAt: { type: 'string', format: 'date-time' },
    duplicate: { type: 'boolean' },
    counted: {
      type: 'boolean',
      description:
        'Whether it counts in the confirmation rate (kurir_placement_confirmations_total, the incident window): only for a delivered `verification` message that is not a placement probe. Others are recorded on the timeline and answered, not counted.',
    },
  },
} as const;

const resultSchema = {
  type: 'object',
  properties: {
    token: { type: 'string' },
    seed: { type: 'string' },
    provider: { type: 'string' },
    messageId: { type: 'string' },
    result: { type: 'string', enum: ['inbox', 'spam', 'other', 'missing', 'seed-unreachable', 'not-delivered'] },
    submittedAt: { type: 'string', format: 'date-time' },
    at: { type: 'string', format: 'date-time' },
    mailbox: { type: 'string' },
    arrivalSeconds: { type: 'number' },
    auth: { type: 'object', properties: { authservId: { type: 'string' }, dkim: { type: 'string' }, spf: { type: 'string' }, dmarc: { type: 'string' } } },
    labels: { type: 'array', items: { type: 'string' } },
    error: { type: 'string' },
  },
} as const;

const placementSchema = {
  type: 'object',
  required: ['providers'],
  properties: {
    providers: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          provider: { type: 'string' },
          seeds: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                name: { type: 'string' },
                address: { type: 'string' },
                state: { type: 'string', enum: ['up', 'unreachable', 'unknown'] },
                reason: { type: 'string' },
                error: { type: 'string' },
                since: { type: 'string', format: 'date-time' },
                checkedAt: { type: 'string', format: 'date-time' },
              },
            },
          },
          inboxRate1h: { type: 'number', nullable: true },
          inboxRate24h: { type: 'number', nullable: true },
          counts24h: { type: 'object', additionalProperties: { type: 'integer' } },
          medianArrivalSeconds24h: { type: 'number', nullable: true },
          lastAuth: { ...resultSchema.properties.auth, nullable: true },
          results: { type: 'array', items: resultSchema },
        },
      },
    },
  },
} as const;

const present = (c: Confirmed) => ({
  id: c.id,
  confirmed: true,
  confirmedAt: new Date(c.confirmedAt).toISOString(),
  duplicate: c.duplicate,
  counted: c.counted,
});

/** Registers the placement routes (register inside the admin scope). */
export const placementRoutes: FastifyPluginAsync<PlacementRoutesOptions> = async (app: FastifyInstance, opts) => {
  const { config, store, clock } = opts;
  const seeds = config.placement.seeds;

  app.get<{ Querystring: { last?: string } }>(
    '/v1/placement',
    {
      schema: {
        tags: ['placement'],
        summary: 'Seed-mailbox placement per provider: last results, inbox rate 1 h / 24 h, median arrival, last auth verdicts, seed states',
        security: bearerSecurity,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { last: { type: 'string', pattern: '^[0-9]{1,4}$', description: 'Results listed per provider, 1–1000 (default 20).' } },
        },
        response: { 200: placementSchema, ...errorResponses(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const last = request.query.last === undefined ? 20 : Number(request.query.last);
      if (!(last >= 1 && last <= 1000)) throw new KurirError('VALIDATION', 'last: must be 1 to 1000', { field: 'last' });
      const providers = [...new Set(seeds.map((s) => s.provider))];
      try {
        const now = clock.now();
        return {
          providers: await Promise.all(
            providers.map(async (provider) => {
              const mine = seeds.filter((s) => s.provider === provider);
              const states = await Promise.all(mine.map(async (s) => ({ name: s.name, address: s.address, state: await store.seedState(s.name) })));
              return summarise(provider, await store.results(provider), states, now, last);
            }),
          ),
        };
      } catch (err) {
        throw toKurirError(err);
      }
    },
  );

  app.post<{ Body: { seed?: string } | undefined }>(
    '/v1/placement/probes',
    {
      schema: {
        tags: ['placement'],
        summary: 'Send a probe now to one seed (or every seed); a gateway with role `placement` sends it within placement.tickSeconds',
        security: bearerSecurity,
        body: { type: 'object', additionalProperties: false, properties: { seed: { type: 'string', maxLength: 63 } } },
        response: {
          202: { type: 'object', required: ['requested'], properties: { requested: { type: 'array', items: { type: 'string' } } } },
          ...errorResponses(400, 401, 403, 503),
        },
      },
    },
    async (request, reply) => {
      const name = request.body?.seed;
      if (!seeds.length) throw new KurirError('VALIDATION', 'seed: no seed mailboxes are configured (placement.seeds)', { field: 'seed' });
      const chosen = name === undefined ? seeds : seeds.filter((s) => s.name === name);
      if (!chosen.length)
        throw new KurirError('VALIDATION', `seed: unknown seed "${name}" (configured: ${seeds.map((s) => s.name).join(', ')})`, { field: 'seed' });
      await Promise.all(chosen.map((s) => store.request(s.name))).catch((err: unknown) => {
        throw toKurirError(err);
      });
      return reply.code(202).send({ requested: chosen.map((s) => s.name) });
    },
  );
};

/** Most confirmations in one batch request. */
export const MAX_CONFIRMATION_BATCH = 1000;

const batchItemSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'A message by its id, or by the confirmToken returned at submission',
  properties: { id: { type: 'string', maxLength: 64 }, token: { type: 'string', maxLength: 128 } },
} as const;

const batchResultSchema = {
  type: 'object',
  required: ['status'],
  properties: {
    id: { type: 'string' },
    token: { type: 'string' },
    status: {
      type: 'integer',
      description: '200 confirmed (or a repeat), 404 unknown or not this key’s, 410 past its TTL plus the margin, 400 neither id nor token',
    },
    confirmed: { type: 'boolean' },
    confirmedAt: { type: 'string', format: 'date-time' },
    duplicate: { type: 'boolean' },
    counted: { type: 'boolean', description: 'see the single confirmation answer' },
    error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

/** Registers the confirmation routes (register inside the send scope). */
export const confirmationRoutes: FastifyPluginAsync<Pick<PlacementRoutesOptions, 'confirmations'>> = async (app: FastifyInstance, opts) => {
  const { confirmations } = opts;

  app.post<{ Params: { id: string } }>(
    '/v1/messages/:id/confirm',
    {
      schema: {
        tags: ['messages'],
        summary: 'Report that the applicant completed verification (submitted the code, or opened the link in a browser session)',
        security: bearerSecurity,
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } },
        response: { 200: confirmedSchema, ...errorResponses(401, 404, 410, 503) },
      },
    },
    async (request) => present(await confirmations.confirm(request.params.id, credentialOf(request), 'id')),
  );

  app.post<{ Params: { token: string } }>(
    '/v1/confirmations/:token',
    {
      schema: {
        tags: ['messages'],
        summary: 'The same confirmation by the confirmToken returned at submission',
        security: bearerSecurity,
        params: { type: 'object', required: ['token'], properties: { token: { type: 'string', maxLength: 128 } } },
        response: { 200: confirmedSchema, ...errorResponses(401, 404, 410, 503) },
      },
    },
    async (request) => {
      const id = confirmations.idFromToken(request.params.token);
      if (!id) throw new KurirError('NOT_FOUND', 'token: unknown confirmToken', { field: 'token' });
      return present(await confirmations.confirm(id, credentialOf(request), 'token'));
    },
  );

  app.post<{ Body: { items: Array<{ id?: string; token?: string }> } }>(
    '/v1/confirmations',
    {
      schema: {
        tags: ['messages'],
        summary: `Many confirmations in one request (up to ${MAX_CONFIRMATION_BATCH}), each answered on its own: for a booking system that reports them in batches`,
        security: bearerSecurity,
        body: {
          type: 'object',
          required: ['items'],
          additionalProperties: false,
          properties: { items: { type: 'array', minItems: 1, maxItems: MAX_CONFIRMATION_BATCH, items: batchItemSchema } },
        },
        response: {
          200: { type: 'object', required: ['results'], properties: { results: { type: 'array', items: batchResultSchema } } },
          ...errorResponses(400, 401, 503),
        },
      },
    },
    async (request) => {
      const credential = credentialOf(request);
      type Result = Record<string, unknown> & { status: number };
      const results: Result[] = new Array(request.body.items.length);
      const asked: Array<{ at: number; id: string; via: 'id' | 'token'; ref: { id?: string; token?: string } }> = [];
      request.body.items.forEach((item, at) => {
        const ref = { ...(item.id !== undefined ? { id: item.id } : {}), ...(item.token !== undefined ? { token: item.token } : {}) };
        if ((item.id === undefined) === (item.token === undefined)) {
          results[at] = { ...ref, status: 400, error: { code: 'VALIDATION', message: 'give either id or token' } };
          return;
        }
        const id = item.id ?? confirmations.idFromToken(item.token as string);
        if (!id) results[at] = { ...ref, status: 404, error: { code: 'NOT_FOUND', message: 'token: unknown confirmToken' } };
        else asked.push({ at, id, via: item.id !== undefined ? 'id' : 'token', ref });
      });
      // One read and one write for the whole batch. Redis not answering fails it all (503): what was recorded before
      // the failure is counted, and the retry answers it as repeats.
      const answers = asked.length ? await confirmations.confirmAll(asked, credential) : [];
      asked.forEach(({ at, ref }, n) => {
        const a = answers[n];
        results[at] =
          a instanceof KurirError ? { ...ref, status: a.httpStatus, error: { code: a.code, message: a.message } } : { ...ref, status: 200, ...present(a) };
      });
      return { results };
    },
  );
};
