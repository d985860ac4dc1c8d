/**
 * The OpenAPI document of the API (@fastify/swagger): its description, tags and security scheme, and what it says
 * beyond the route schemas — the raw message's binary body, optional nullable bodies, and the 415 of every route
 * that reads a body.
 */
import type { SwaggerOptions } from '@fastify/swagger';
import type { RouteOptions } from 'fastify';
import { errorSchema } from './schemas.js';

const API_DESCRIPTION = [
  'Kurir accepts transactional e-mail over HTTP and SMTP, signs it with DKIM and delivers it.',
  '',
  'Every error answers `{ "error": { "code", "message", "field"?, "details"? } }`; `field` names the',
  'failing field in dotted/bracket form (`to[1]`, `headers.X-Foo`). A 202 is sent only once the message is',
  'durable in Redis and queued; a 503 (UNAVAILABLE, BUSY) means retry after Retry-After.',
].join('\n');

type OpenApiOperation = { requestBody?: { required?: boolean; content?: Record<string, { schema?: { nullable?: boolean } }> } };

/**
 * @fastify/swagger marks every request body required; a route whose JSON body may be null (a pause, a rotation,
 * the routes that take no fields) is called without one, so its body is documented as optional.
 */
function optionalNullableBodies(paths: object | undefined): void {
  for (const op of Object.values(paths ?? {}).flatMap((ops: Record<string, OpenApiOperation>) => Object.values(ops ?? {}))) {
    if (op.requestBody?.content?.['application/json']?.schema?.nullable) op.requestBody.required = false;
  }
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/**
 * An `onRoute` hook: every documented POST, PUT and PATCH answers 415 for a body in a media type it does not read
 * (`text/plain` included since 2 Dec 2026), so its response schemas say so.
 */
export function documentUnsupportedMedia(route: RouteOptions): void {
  const response = route.schema?.response as Record<string, unknown> | undefined;
  if (!response || response[415] !== undefined || ![route.method].flat().some((m) => BODY_METHODS.has(m))) return;
  route.schema = { ...route.schema, response: { ...response, 415: errorSchema(415) } };
}

/** The options of @fastify/swagger: the document at `/docs/json`. */
export function swaggerOptions(): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Kurir HTTP API', version: process.env.npm_package_version ?? '0.1.0', description: API_DESCRIPTION },
      servers: [{ url: '/' }],
      tags: [
        { name: 'messages', description: 'Submit messages and follow their delivery' },
        { name: 'operations', description: 'Health, readiness and metrics' },
        { name: 'delivery control', description: 'Shaping state, pause/resume per provider, queue depth, retry and cancel (admin keys)' },
        { name: 'suppressions', description: 'Suppression list administration (admin keys; look-up and removal also support keys)' },
        { name: 'credentials', description: 'Runtime API keys and SMTP accounts: create, scope, rotate, revoke (admin keys)' },
        { name: 'audit', description: 'The audit log of admin and support actions (admin keys)' },
        { name: 'webhooks', description: "Signed event webhooks to the key's booking system" },
        { name: 'domains', description: 'Sender domains and their DKIM keys: add, verify, rotate, revoke (admin keys)' },
        { name: 'placement', description: 'Seed-mailbox placement per provider and on-demand probes (admin keys)' },
        {
          name: 'feedback',
          description: 'Bounce and complaint notifications from ESPs in smarthost mode (SES via SNS, Mailgun), verified by their signatures',
        },
      ],
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key: from the configuration (`apiKeys`) or created at runtime (`/v1/credentials`).',
          },
        },
      },
    },
    transformObject: (doc) => {
      // The raw-message body has no JSON type (it is a Buffer to the validator); OpenAPI wants one.
      const openapi = 'openapiObject' in doc ? doc.openapiObject : undefined;
      const raw = (openapi?.paths?.['/v1/messages']?.post?.requestBody as { content?: Record<string, { schema?: Record<string, unknown> }> } | undefined)
        ?.content?.['message/rfc822']?.schema;
      if (raw) Object.assign(raw, { type: 'string', format: 'binary' });
      optionalNullableBodies(openapi?.paths);
      return openapi ?? (doc as { swaggerObject: Record<string, unknown> }).swaggerObject;
    },
  };
}
