/**
 * Operational routes, without authentication: liveness (`/healthz`, the process answers), readiness
 * (`/readyz`, Redis reachable and the worker running when this process has one) and Prometheus
 * metrics (`/metrics`).
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../metrics/metrics.js';
import { errorResponses, healthSchema, readySchema } from './schemas.js';

/** What readiness is made of; `worker` is null when this process runs no delivery worker. */
export interface ReadinessReport {
  redis: boolean;
  worker: boolean | null;
}

export interface HealthRoutesOptions {
  metrics: Metrics;
  readiness: () => Promise<ReadinessReport>;
  /** False when /metrics is served on its own port instead. */
  serveMetrics: boolean;
  /** Bearer token /metrics requires, or null. */
  metricsToken: string | null;
}

/** Whether an Authorization header carries the metrics token (constant time). */
export function metricsAuthorized(header: string | undefined, token: string | null): boolean {
  if (token === null) return true;
  const given = Buffer.from(header ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Whether a readiness report means "send traffic here". */
export function isReady(r: ReadinessReport): boolean {
  return r.redis && r.worker !== false;
}

/** Registers `/healthz`, `/readyz` and `/metrics`. */
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app: FastifyInstance, opts) => {
  app.get(
    '/healthz',
    {
      logLevel: 'warn',
      schema: { tags: ['operations'], summary: 'Liveness: the process answers', response: { 200: { description: 'Alive', ...healthSchema } } },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      logLevel: 'warn',
      schema: {
        tags: ['operations'],
        summary: 'Readiness: Redis reachable and the delivery worker (if any) running',
        response: {
          200: { description: 'Ready', ...readySchema },
          503: { description: 'Not ready; the parts say which', ...readySchema },
        },
      },
    },
    async (request, reply) => {
      let report: ReadinessReport;
      try {
        report = await opts.readiness();
      } catch (err) {
        request.log.warn({ err }, 'readiness check failed');
        report = { redis: false, worker: null };
      }
      const ready = isReady(report);
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', redis: report.redis, worker: report.worker });
    },
  );

  if (!opts.serveMetrics) return;
  app.get(
    '/metrics',
    {
      logLevel: 'warn',
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        response: {
          200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } },
          401: errorResponses(401)[401],
          500: errorResponses(500)[500],
        },
      },
    },
    async (request, reply) => {
      if (!metricsAuthorized(request.headers.authorization, opts.metricsToken)) {
        return reply.code(401).header('www-authenticate', 'Bearer').send({ error: { code: 'AUTH_REQUIRED', message: 'Bearer token required for /metrics' } });
      }
      const body = await opts.metrics.render();
      return reply.type(opts.metrics.contentType).send(body);
    },
  );
};
