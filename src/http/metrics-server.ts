import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from '../metrics/metrics.js';
import { metricsAuthorized } from './auth.js';

/** A listener of its own for GET /metrics (config `metrics.port`), so scrapes need not reach the API port. */
export async function startMetricsServer(opts: {
  host: string;
  port: number;
  token: string | null;
  metrics: Metrics;
}): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"NOT_FOUND","message":"Only GET /metrics is served here"}}');
      return;
    }
    if (!metricsAuthorized(req.headers.authorization, opts.token)) {
      res
        .writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' })
        .end('{"error":{"code":"AUTH_REQUIRED","message":"Bearer token required for /metrics"}}');
      return;
    }
    opts.metrics.render().then(
      (body) => res.writeHead(200, { 'content-type': opts.metrics.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
