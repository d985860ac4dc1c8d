/**
 * `/v1/credentials`: runtime API keys and SMTP accounts (admin keys; every change audited with its
 * before and after views, never a secret). A secret appears in exactly two answers: the 201 that creates
 * the credential and the 200 that rotates it.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { MAX_OVERLAP_SECONDS, type CreateCredentialInput, type CredentialAdmin, type CredentialScopeInput } from '../admin/credentials.js';
import { WEBHOOK_EVENT_TYPES } from '../config/credentials-schema.js';
import { PRIORITIES } from '../config/schema.js';
import { ROLES } from '../store/credential-store.js';
import { credentialOf } from './auth.js';
import { bearerSecurity, errorResponses } from './schemas.js';

const limitsSchema = {
  type: 'object',
  nullable: true,
  additionalProperties: false,
  description: 'Overrides of `limits.credential`, as `apiKeys[].limits` (null: unlimited; absent: the default).',
  properties: { perSecond: { type: 'integer', minimum: 1, nullable: true }, perDay: { type: 'integer', minimum: 1, nullable: true } },
} as const;

const scopeProperties = {
  role: { type: 'string', enum: [...ROLES] },
  domains: { type: 'array', minItems: 1, maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 253 }, description: 'Sender domains, or ["*"].' },
  priorities: { type: 'array', nullable: true, minItems: 1, items: { type: 'string', enum: [...PRIORITIES] }, description: 'null: every priority.' },
  limits: limitsSchema,
  webhook: {
    type: 'object',
    nullable: true,
    additionalProperties: false,
    required: ['url', 'secret'],
    description: 'API keys: where its events go, signed with `secret` (as `apiKeys[].webhook`); null removes it.',
    properties: {
      url: { type: 'string', maxLength: 2000 },
      secret: { type: 'string', minLength: 16, maxLength: 200 },
      events: { type: 'array', nullable: true, minItems: 1, items: { type: 'string', enum: [...WEBHOOK_EVENT_TYPES] } },
    },
  },
} as const;

const viewSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    source: { type: 'string', enum: ['runtime', 'config'] },
    kind: { type: 'string', enum: ['api-key', 'smtp-account'] },
    name: { type: 'string' },
    role: { type: 'string' },
    username: { type: 'string' },
    domains: { type: 'array', items: { type: 'string' } },
    priorities: { type: 'array', nullable: true, items: { type: 'string' } },
    limits: { ...limitsSchema, additionalProperties: true },
    webhook: {
      type: 'object',
      nullable: true,
      description: 'The webhook target; its signing secret is never shown.',
      properties: { url: { type: 'string' }, events: { type: 'array', nullable: true, items: { type: 'string' } } },
    },
    secrets: {
      type: 'array',
      items: { type: 'object', properties: { createdAt: { type: 'string' }, notAfter: { type: 'string', nullable: true } } },
    },
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    createdBy: { type: 'string' },
  },
} as const;

const withSecret = {
  type: 'object',
  properties: { credential: viewSchema, secret: { type: 'string', description: 'The key or password. Shown this once: store it now.' } },
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 200 } } } as const;

/** Registers the credential routes; register them in the admin scope. */
export const credentialsRoutes: FastifyPluginAsync<{ admin: CredentialAdmin }> = async (app: FastifyInstance, opts) => {
  const { admin } = opts;
  const common = { tags: ['credentials'], security: bearerSecurity };

  app.get(
    '/v1/credentials',
    {
      schema: {
        ...common,
        summary: 'Every credential: runtime ones, then the configuration file’s (read-only)',
        response: { 200: { type: 'object', properties: { items: { type: 'array', items: viewSchema } } }, ...errorResponses(401, 403, 503) },
      },
    },
    async () => ({
      items: await admin.list(),
    }),
  );

  app.post<{ Body: CreateCredentialInput }>(
    '/v1/credentials',
    {
      schema: {
        ...common,
        summary: 'Create an API key or SMTP account; the answer shows its secret once',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['kind', 'name'],
          properties: {
            kind: { type: 'string', enum: ['api-key', 'smtp-account'] },
            name: { type: 'string', minLength: 1, maxLength: 64 },
            username: { type: 'string', minLength: 1, maxLength: 64, description: 'SMTP accounts: the login (default: the name).' },
            ...scopeProperties,
          },
        },
        response: { 201: withSecret, ...errorResponses(400, 401, 403, 409, 503) },
      },
    },
    async (request, reply) => {
      const cred = credentialOf(request);
      const created = await admin.create(request.body, `${cred.kind}:${cred.name}`);
      request.auditDetail = { target: created.credential.id, after: created.credential };
      return reply.code(201).send(created);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/credentials/:id',
    { schema: { ...common, summary: 'One credential', params: idParams, response: { 200: viewSchema, ...errorResponses(401, 403, 404, 503) } } },
    async (request) => admin.get(request.params.id),
  );

  app.patch<{ Params: { id: string }; Body: CredentialScopeInput }>(
    '/v1/credentials/:id',
    {
      schema: {
        ...common,
        summary: 'Change the scope of a credential: role, domains, priorities, limits (effective on every gateway within seconds)',
        params: idParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: scopeProperties },
        response: { 200: viewSchema, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      const { before, after } = await admin.update(request.params.id, request.body);
      request.auditDetail = { target: request.params.id, before, after };
      return after;
    },
  );

  app.post<{ Params: { id: string }; Body: { overlapSeconds?: number } | null | undefined }>(
    '/v1/credentials/:id/rotate',
    {
      schema: {
        ...common,
        summary: 'Give a credential a new secret (shown once); the old one keeps working for overlapSeconds',
        params: idParams,
        body: {
          // No body (curl -XPOST …/rotate) is the default overlap, as a pause without a body pauses until resumed.
          type: ['object', 'null'],
          additionalProperties: false,
          properties: {
            overlapSeconds: { type: 'integer', minimum: 0, maximum: MAX_OVERLAP_SECONDS, description: 'Default 3600; 0 ends the old secret now.' },
          },
        },
        response: { 200: withSecret, ...errorResponses(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      const { before, after, secret } = await admin.rotate(request.params.id, request.body?.overlapSeconds ?? 3600);
      request.auditDetail = { target: request.params.id, before, after };
      return { credential: after, secret };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/credentials/:id',
    {
      schema: {
        ...common,
        summary: 'Revoke a credential: every secret of it stops working on every gateway within seconds',
        params: idParams,
        response: { 204: { type: 'null' }, ...errorResponses(401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const { before } = await admin.revoke(request.params.id);
      request.auditDetail = { target: request.params.id, before };
      return reply.code(204).send();
    },
  );
};
