/**
 * The deliverability doctor over HTTP (registered in the admin scope): GET /v1/domains/:domain/doctor checks a
 * configured or runtime-managed sender domain against DNS and answers every finding with why and the fix.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Doctor } from '../domains/doctor/doctor.js';
import { bearerSecurity, errorResponses } from './schemas.js';

export interface DoctorRoutesOptions {
  doctor: Doctor;
}

const checkSchema = {
  type: 'object',
  required: ['id', 'status', 'summary', 'why'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['pass', 'warn', 'fail'] },
    summary: { type: 'string' },
    why: { type: 'string' },
    fix: { type: 'string' },
  },
} as const;

const reportSchema = {
  type: 'object',
  required: ['domain', 'source', 'checkedAt', 'result', 'exitCode', 'checks'],
  properties: {
    domain: { type: 'string' },
    source: { type: 'string', enum: ['config', 'runtime'] },
    checkedAt: { type: 'string', format: 'date-time' },
    result: { type: 'string', enum: ['pass', 'warn', 'fail'] },
    exitCode: { type: 'integer', enum: [0, 1, 2] },
    checks: { type: 'array', items: checkSchema },
    selfCheck: {
      type: 'object',
      description: 'The latest continuous authentication self-check (role worker): a probe signed with the live key, verified against DNS',
      properties: {
        at: { type: 'string', format: 'date-time' },
        ok: { type: 'boolean' },
        checks: {
          type: 'array',
          items: {
            type: 'object',
            properties: { check: { type: 'string', enum: ['dkim', 'spf', 'dmarc'] }, ok: { type: 'boolean' }, reason: { type: 'string' } },
          },
        },
      },
    },
  },
} as const;

/** Registers GET /v1/domains/:domain/doctor (register inside the admin scope). */
export const doctorRoutes: FastifyPluginAsync<DoctorRoutesOptions> = async (app: FastifyInstance, opts) => {
  app.get<{ Params: { domain: string } }>(
    '/v1/domains/:domain/doctor',
    {
      schema: {
        tags: ['domains'],
        summary:
          'Deliverability doctor: SPF, DKIM, DMARC, bounce MX, reverse DNS and HELO, MTA-STS, TLS-RPT and blocklists of a sender domain, each pass/warn/fail with why and the fix',
        security: bearerSecurity,
        params: { type: 'object', required: ['domain'], properties: { domain: { type: 'string', maxLength: 253 } } },
        response: { 200: reportSchema, ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request) => opts.doctor.examine(request.params.domain),
  );
};
