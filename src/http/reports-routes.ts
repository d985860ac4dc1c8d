/**
 * DMARC aggregate and SMTP TLS reports over HTTP (registered in the admin scope): POST /v1/reports takes a
 * report a forwarding mailbox received — the whole message (`message/rfc822`) or the attachment alone (gzip,
 * zip, XML or JSON) — and GET /v1/domains/:domain/reports answers what receivers reported about a domain.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Clock } from '../lib/clock.js';
import { KurirError } from '../lib/errors.js';
import type { ReportIngest } from '../feedback/aggregate/report-ingest.js';
import { domainReports } from '../feedback/aggregate/report-view.js';
import type { ReportStore } from '../store/report-store.js';
import { readsOwnJson } from './json-body.js';
import { bearerSecurity, errorResponses } from './schemas.js';

export interface ReportsRoutesOptions {
  ingest: ReportIngest;
  store: ReportStore;
  clock: Clock;
  /** Largest body accepted (bytes). */
  bodyLimit: number;
  retentionDays: number;
}

/** Media types POST /v1/reports reads as raw bytes (the content decides what they are). */
export const REPORT_MEDIA_TYPES = [
  'message/rfc822',
  'application/octet-stream',
  'application/gzip',
  'application/x-gzip',
  'application/zip',
  'application/x-zip-compressed',
  'application/xml',
  'text/xml',
  'application/tlsrpt+gzip',
  'application/tlsrpt+json',
  'application/json',
];

const outcomeSchema = {
  type: 'object',
  required: ['result', 'kind', 'org', 'reportId', 'domains', 'skipped'],
  properties: {
    result: { type: 'string', enum: ['applied', 'duplicate'] },
    kind: { type: 'string', enum: ['dmarc', 'tlsrpt'] },
    org: { type: 'string' },
    reportId: { type: 'string' },
    domains: { type: 'array', items: { type: 'string' } },
    skipped: { type: 'integer', description: "records (or policies) about domains that are not Kurir's, left out" },
  },
} as const;

const counts = { type: 'object', additionalProperties: true } as const;
const viewSchema = {
  type: 'object',
  required: ['domain', 'days', 'since', 'dmarc', 'tlsRpt', 'recent'],
  properties: {
    domain: { type: 'string' },
    days: { type: 'integer' },
    since: { type: 'string', format: 'date-time' },
    dmarc: {
      ...counts,
      description: 'messages, dkimPass, spfPass, dkimAligned, spfAligned, dmarcPass, own*/foreign* counts, rates, reporters[], foreignSources[]',
    },
    tlsRpt: { ...counts, description: 'reports, successful, failed, policies[], failures[] by result type, reporters[]' },
    recent: { type: 'array', items: counts },
  },
} as const;

/** Registers POST /v1/reports and GET /v1/domains/:domain/reports (register inside the admin scope). */
export const reportsRoutes: FastifyPluginAsync<ReportsRoutesOptions> = async (app: FastifyInstance, opts) => {
  // TLS reports are JSON read as bytes (gzip or not, the content decides): this scope replaces the API's JSON parser.
  app.removeContentTypeParser('application/json');
  readsOwnJson(app);
  app.addContentTypeParser(REPORT_MEDIA_TYPES, { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (_req, body, done) => done(null, body));

  app.post(
    '/v1/reports',
    {
      bodyLimit: opts.bodyLimit, // the parser's, declared on the route so that a 413 names it (src/http/errors.ts)
      schema: {
        tags: ['domains'],
        summary: 'Apply a DMARC aggregate (RFC 7489) or SMTP TLS (RFC 8460) report: the whole message, or its .xml/.xml.gz/.zip/.json(.gz) attachment',
        security: bearerSecurity,
        consumes: REPORT_MEDIA_TYPES,
        response: { 200: outcomeSchema, ...errorResponses(401, 403, 413, 415, 422, 503) },
      },
    },
    async (request) => {
      const body = request.body;
      if (!Buffer.isBuffer(body) || !body.length)
        throw new KurirError('BAD_REPORT', 'The request body is empty: post the report message or its attachment', { field: 'body' });
      const outcome = await opts.ingest.ingest(body, { via: 'http', remoteAddress: request.ip });
      if (outcome.result === 'refused' && outcome.reason === 'busy')
        throw new KurirError('BUSY', `Report not read now: ${outcome.detail}`, { details: { reason: 'busy' }, retryAfterSeconds: 5 });
      if (outcome.result === 'refused')
        throw new KurirError('BAD_REPORT', `Report refused (${outcome.reason}): ${outcome.detail}`, { field: 'body', details: { reason: outcome.reason } });
      request.auditDetail = {
        target: `${outcome.kind}:${outcome.org}:${outcome.reportId}`.slice(0, 200),
        after: { result: outcome.result, domains: outcome.domains },
      };
      return outcome;
    },
  );

  app.get<{ Params: { domain: string }; Querystring: { days?: string } }>(
    '/v1/domains/:domain/reports',
    {
      schema: {
        tags: ['domains'],
        summary:
          "What receivers reported about a domain: DMARC aggregate pass rates per reporter, sources that are not Kurir's IPs, TLS-RPT sessions and failures",
        security: bearerSecurity,
        params: { type: 'object', required: ['domain'], properties: { domain: { type: 'string', maxLength: 253 } } },
        querystring: { type: 'object', additionalProperties: false, properties: { days: { type: 'string', maxLength: 20 } } },
        response: { 200: viewSchema, ...errorResponses(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      const domain = request.params.domain.toLowerCase();
      // The rule in words here, not a schema pattern (which answered `must match pattern "…"`).
      const given = request.query.days;
      const days = given === undefined ? Math.min(30, opts.retentionDays) : /^[0-9]{1,4}$/.test(given) ? Number(given) : Number.NaN;
      if (!Number.isInteger(days) || days < 1 || days > opts.retentionDays)
        throw new KurirError('VALIDATION', `days: a whole number from 1 to ${opts.retentionDays} (feedback.reports.retentionDays)`, { field: 'days' });
      if (!(await opts.ingest.isKurirDomain(domain))) throw new KurirError('NOT_FOUND', `${domain} is not a sender domain of Kurir`, { field: 'domain' });
      return domainReports(opts.store, opts.clock, domain, days);
    },
  );
};
