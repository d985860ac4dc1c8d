/**
 * `GET /v1/incidents` (admin scope): per provider, the last hour as Kurir stored it, judged ok / warning /
 * critical with the cause in words (src/admin/incidents.ts). Authentication is the scope's.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { incidentReport, type IncidentViewDeps } from '../admin/incidents.js';
import type { Clock } from '../lib/clock.js';
import { toKurirError } from '../lib/errors.js';
import { bearerSecurity, errorResponses } from './schemas.js';

export interface IncidentRoutesOptions extends IncidentViewDeps {
  clock: Clock;
}

const counts = { type: 'object', additionalProperties: { type: 'integer' } } as const;
const severity = { type: 'string', enum: ['ok', 'warning', 'critical'] } as const;

/** The schema of a list of findings: severity, kind, cause and text, plus `extra` properties. */
function findingsSchema(kinds: string, causes: string, extra: Record<string, { type: string; format?: string }>) {
  return {
    type: 'array',
    items: {
      type: 'object',
      properties: {
        severity,
        kind: { type: 'string', description: kinds },
        cause: { type: 'string', description: causes },
        ...extra,
        text: { type: 'string' },
      },
    },
  } as const;
}

const reportSchema = {
  type: 'object',
  required: ['from', 'to', 'status', 'providers', 'domains'],
  properties: {
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    status: severity,
    providers: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          provider: { type: 'string' },
          status: severity,
          findings: findingsSchema(
            'auth-failure, spam-placement, missing-probes, probe-auth, seed-unreachable, confirmations, bounces or deferrals',
            'auth-failure: ptr, spf, dkim, dmarc, alignment, tls or unauthenticated; probe-auth: the method',
            { count: { type: 'integer' }, since: { type: 'string', format: 'date-time' } },
          ),
          facts: {
            type: 'object',
            properties: {
              delivered: { type: 'integer' },
              deferred: { type: 'integer' },
              bounced: { type: 'integer' },
              expired: { type: 'integer' },
              deferredByCategory: counts,
              bouncedByCategory: counts,
              authFailures: counts,
              placement: {
                type: 'object',
                nullable: true,
                properties: {
                  probes: { type: 'integer' },
                  counts,
                  inboxRate: { type: 'number', nullable: true },
                  auth: { type: 'object', additionalProperties: counts },
                  seeds: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: {
                        name: { type: 'string' },
                        state: { type: 'string' },
                        reason: { type: 'string' },
                        since: { type: 'string', format: 'date-time' },
                      },
                    },
                  },
                },
              },
              confirmations: {
                type: 'object',
                properties: {
                  delivered: { type: 'integer' },
                  confirmed: { type: 'integer' },
                  rate: { type: 'number', nullable: true },
                  baseline: { type: 'number', nullable: true },
                },
              },
            },
          },
        },
      },
    },
    domains: {
      type: 'array',
      description: 'Sender domains whose latest authentication self-check failed (docs/domains.md): each failed check with its reason',
      items: {
        type: 'object',
        properties: {
          domain: { type: 'string' },
          status: severity,
          checkedAt: { type: 'string', format: 'date-time' },
          findings: findingsSchema('self-check', 'dkim, spf or dmarc', {}),
        },
      },
    },
  },
} as const;

/** Registers `GET /v1/incidents` (register inside the admin scope). */
export const incidentRoutes: FastifyPluginAsync<IncidentRoutesOptions> = async (app: FastifyInstance, opts) => {
  app.get(
    '/v1/incidents',
    {
      schema: {
        tags: ['placement'],
        summary:
          'Per provider, the last hour: delivered, deferred, bounced by category, auth refusals by cause, placement, confirmations vs baseline; ok / warning / critical with the cause in words',
        security: bearerSecurity,
        response: { 200: reportSchema, ...errorResponses(401, 403, 503) },
      },
    },
    async () => {
      try {
        return await incidentReport(opts, opts.clock.now());
      } catch (err) {
        throw toKurirError(err);
      }
    },
  );
};
