/**
 * Operational routes: liveness (`/healthz`, the process answers) and readiness (`/readyz`, the main Redis
 * reachable and the worker running when this process has one; a Redis shard that is down leaves it ready but
 * listed under `degraded`, docs/scale-out.md), registered in the public scope, and
 * Prometheus metrics (`/metrics`), registered in the metrics scope (src/http/auth.ts).
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../metrics/metrics.js';
import { errorResponses, healthSchema, readySchema } from './schemas.js';

/** What readiness is made of; `worker` is null when this process runs no delivery worker. */
export interface ReadinessReport {
  redis: boolean;
  worker: boolean | null;
  /** With `redis.durability: fsync`: false while intake refuses because Redis does not fsync every write. Absent otherwise. */
  fsync?: boolean;
  /** What is down without making the process unready, e.g. `shard shard-a: unreachable`; absent or empty: nothing. */
  degraded?: string[];
}

export interface HealthRoutesOptions {
  readiness: () => Promise<ReadinessReport>;
}

/** Whether a readiness report means "send traffic here". */
export function isReady(r: ReadinessReport): boolean {
  return r.redis && r.worker !== false && r.fsync !== false;
}

/** Registers `/healthz` and `/readyz`. */
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
        summary: 'Readiness: the main Redis reachable and the delivery worker (if any) running; Redis shards that are down are listed under degraded',
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
      const body = {
        status: ready ? 'ready' : 'unavailable',
        redis: report.redis,
        worker: report.worker,
        ...(report.fsync !== undefined ? { fsync: report.fsync } : {}),
      };
      // Only when something is degraded, so the healthy answer stays what it always was.
      return reply.code(ready ? 200 : 503).send(report.degraded?.length ? { ...body, degraded: report.degraded } : body);
    },
  );
};

/** Registers `GET /metrics` (the metrics scope checks the token). */
export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics }> = async (app: FastifyInstance, opts) => {
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
    async (_request, reply) => {
      const body = await opts.metrics.render();
      return reply.type(opts.metrics.contentType).send(body);
    },
  );
};
