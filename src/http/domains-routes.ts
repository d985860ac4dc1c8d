/**
 * Runtime-managed sender domains over HTTP (registered in the admin scope): add, list, show, change settings,
 * verify, rotate, revoke a key, remove. Answers carry public keys and DNS records, never private keys.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Config } from '../config/schema.js';
import type { DomainService } from '../domains/domain-service.js';
import { MAX_ROTATION_DAYS } from '../domains/domain-settings.js';
import { bearerSecurity, errorResponses, noFieldsBody } from './schemas.js';

export interface DomainsRoutesOptions {
  config: Config;
  domains: DomainService;
}

const recordSchema = {
  type: 'object',
  properties: {
    purpose: { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string' },
    value: { type: 'string' },
    strings: { type: 'array', items: { type: 'string' } },
    zone: { type: 'string' },
    required: { type: 'boolean' },
    note: { type: 'string' },
  },
} as const;

const keySchema = {
  type: 'object',
  properties: {
    selector: { type: 'string' },
    algorithm: { type: 'string', enum: ['rsa', 'ed25519'] },
    bits: { type: 'integer' },
    status: { type: 'string', enum: ['pending', 'active', 'retired', 'revoked'] },
    publicKey: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    activatedAt: { type: 'string', format: 'date-time' },
    retiredAt: { type: 'string', format: 'date-time' },
    keepPublishedUntil: { type: 'string', format: 'date-time' },
    removable: { type: 'boolean' },
    revokedAt: { type: 'string', format: 'date-time' },
  },
} as const;

const verificationSchema = {
  type: 'object',
  properties: { at: { type: 'string', format: 'date-time' }, ok: { type: 'boolean' }, problems: { type: 'array', items: { type: 'string' } } },
} as const;

const fileSchema = {
  type: 'object',
  properties: { purpose: { type: 'string' }, url: { type: 'string' }, contentType: { type: 'string' }, contents: { type: 'string' }, note: { type: 'string' } },
} as const;

const rotationSchema = {
  type: 'object',
  description: 'Scheduled rotation: every how many days (null: off), when the next one is due, a rotation waiting for DNS',
  properties: {
    everyDays: { type: 'number', nullable: true },
    source: { type: 'string', enum: ['config', 'domain'] },
    nextRotationAt: { type: 'string', format: 'date-time' },
    warnAt: { type: 'string', format: 'date-time' },
    waiting: {
      type: 'object',
      properties: { trigger: { type: 'string', enum: ['schedule', 'manual'] }, since: { type: 'string', format: 'date-time' } },
    },
  },
} as const;

const eventSchema = {
  type: 'object',
  properties: {
    at: { type: 'string', format: 'date-time' },
    type: { type: 'string' },
    by: { type: 'string', enum: ['admin', 'scheduler'] },
    message: { type: 'string' },
    selectors: { type: 'array', items: { type: 'string' } },
  },
} as const;

/** The per-domain settings of POST /v1/domains and PATCH /v1/domains/:domain. */
const settingsProperties = {
  rotationEveryDays: {
    type: 'number',
    minimum: 1,
    maximum: MAX_ROTATION_DAYS,
    nullable: true,
    description:
      'Scheduled DKIM rotation every this many whole days for this domain (a fraction is refused); null: never; absent: domainKeys.rotation.everyDays.',
  },
  mtaStsMx: {
    type: 'array',
    maxItems: 20,
    items: { type: 'string', maxLength: 253 },
    description:
      'The mx: lines of the proposed MTA-STS policy (the hosts receiving mail for the domain), stored in lower case and each once (a repeat is dropped); []: domainKeys.mtaSts.mx, else hostname.',
  },
} as const;

const domainSchema = {
  type: 'object',
  required: ['name', 'source', 'state'],
  properties: {
    name: { type: 'string' },
    source: { type: 'string', enum: ['runtime', 'config'] },
    state: { type: 'string', enum: ['pending-dns', 'active', 'rotating', 'suspended', 'removed'] },
    reason: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    keys: { type: 'array', items: keySchema },
    records: { type: 'array', items: recordSchema },
    files: { type: 'array', items: fileSchema },
    mtaStsMx: { type: 'array', items: { type: 'string' } },
    rotation: rotationSchema,
    lastVerification: verificationSchema,
    events: { type: 'array', items: eventSchema },
  },
} as const;

const domainParams = { type: 'object', required: ['domain'], properties: { domain: { type: 'string', maxLength: 253 } } } as const;

/** Registers the sender-domain routes (register inside the admin scope). */
export const domainsRoutes: FastifyPluginAsync<DomainsRoutesOptions> = async (app: FastifyInstance, opts) => {
  const { config, domains } = opts;

  app.get(
    '/v1/domains',
    {
      schema: {
        tags: ['domains'],
        summary: 'Sender domains: those declared in the configuration (state active) and the runtime-managed ones with their keys and records',
        security: bearerSecurity,
        response: { 200: { type: 'object', properties: { domains: { type: 'array', items: domainSchema } } }, ...errorResponses(401, 403, 503) },
      },
    },
    async () => {
      const runtime = (await domains.list()).filter((d) => d.state !== 'removed').map((d) => domains.view(d));
      const declared = config.domains.map((d) => ({ name: d.name.toLowerCase(), source: 'config' as const, state: 'active' as const }));
      return { domains: [...declared, ...runtime].sort((a, b) => a.name.localeCompare(b.name)) };
    },
  );

  app.post<{ Body: { name: string; ed25519?: boolean; rsaBits?: number; rotationEveryDays?: number | null; mtaStsMx?: string[] } }>(
    '/v1/domains',
    {
      schema: {
        tags: ['domains'],
        summary: 'Add a sender domain: Kurir generates its DKIM keys and answers the DNS records to publish (state pending-dns until verified)',
        security: bearerSecurity,
        body: {
          type: 'object',
          required: ['name'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', minLength: 3, maxLength: 253 },
            ed25519: { type: 'boolean', description: 'Also sign with an Ed25519 key (a second signature; RSA stays first).' },
            rsaBits: { type: 'integer', enum: [2048, 3072, 4096] },
            ...settingsProperties,
          },
        },
        response: { 201: domainSchema, ...errorResponses(400, 401, 403, 409, 503) },
      },
    },
    async (request, reply) => {
      const { name, ...opts } = request.body;
      const d = await domains.add(name, opts);
      return reply.code(201).send(domains.view(d));
    },
  );

  app.get<{ Params: { domain: string } }>(
    '/v1/domains/:domain',
    {
      schema: {
        tags: ['domains'],
        summary: 'A runtime-managed sender domain: state, keys (public), the DNS records to publish and the last verification',
        security: bearerSecurity,
        params: domainParams,
        response: { 200: domainSchema, ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request) => domains.view(await domains.get(request.params.domain)),
  );

  app.patch<{ Params: { domain: string }; Body: { rotationEveryDays?: number | null; mtaStsMx?: string[] } }>(
    '/v1/domains/:domain',
    {
      schema: {
        tags: ['domains'],
        summary: "Change a runtime-managed domain's own settings: scheduled rotation (rotationEveryDays) and the MTA-STS mx: lines",
        security: bearerSecurity,
        params: domainParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: settingsProperties },
        response: { 200: domainSchema, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => domains.view(await domains.update(request.params.domain, request.body)),
  );

  app.post<{ Params: { domain: string } }>(
    '/v1/domains/:domain/verify',
    {
      schema: {
        tags: ['domains'],
        summary: 'Check DNS: when every waiting key is published with the matching public key, signing switches to it on every gateway',
        security: bearerSecurity,
        params: domainParams,
        body: noFieldsBody,
        response: { 200: domainSchema, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => domains.view((await domains.verify(request.params.domain)).domain),
  );

  app.post<{ Params: { domain: string } }>(
    '/v1/domains/:domain/rotate',
    {
      schema: {
        tags: ['domains'],
        summary: 'Create the next DKIM key and selector; publish its record, then verify to switch signing',
        security: bearerSecurity,
        params: domainParams,
        body: noFieldsBody,
        response: { 200: domainSchema, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => domains.view(await domains.rotate(request.params.domain)),
  );

  app.post<{ Params: { domain: string; selector: string } }>(
    '/v1/domains/:domain/keys/:selector/revoke',
    {
      schema: {
        tags: ['domains'],
        summary: 'Emergency revoke: stop signing with this key at once on every gateway (a domain left without an RSA key is suspended)',
        security: bearerSecurity,
        params: {
          type: 'object',
          required: ['domain', 'selector'],
          properties: { domain: { type: 'string', maxLength: 253 }, selector: { type: 'string', maxLength: 63 } },
        },
        body: noFieldsBody,
        response: { 200: domainSchema, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => domains.view(await domains.revoke(request.params.domain, request.params.selector)),
  );

  app.delete<{ Params: { domain: string } }>(
    '/v1/domains/:domain',
    {
      schema: {
        tags: ['domains'],
        summary: 'Remove a runtime-managed domain: intake refuses it from then on and its private keys are deleted',
        security: bearerSecurity,
        params: domainParams,
        response: { 200: domainSchema, ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request) => domains.view(await domains.remove(request.params.domain)),
  );
};
