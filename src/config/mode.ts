/**
 * The deployment mode and what it decides about the HTTP API port.
 *
 * development (the default): `/docs` and `/metrics` answer on the API port as configured.
 * production (`mode: production`, or NODE_ENV=production when `mode` is not set): `/docs` only with
 * `http.docs: true`; `/metrics` on the API port only with `metrics.token`; start-up refuses unsafe
 * settings (src/config/production-checks.ts).
 */
import { isIP } from 'node:net';
import type { Config, Mode } from './schema.js';

/** Where the mode came from, for messages: the config key or the environment. */
export type ModeSource = 'mode' | 'NODE_ENV' | 'default';

/**
 * The mode for a merged (file + KURIR_* environment) config tree: its `mode` when set (not null),
 * else production when `NODE_ENV=production`, else development. Unknown values are left to the schema.
 */
export function resolveMode(configured: unknown, env: Record<string, string | undefined>): { mode: unknown; source: ModeSource } {
  if (configured !== undefined && configured !== null) return { mode: configured, source: 'mode' };
  if (env.NODE_ENV === 'production') return { mode: 'production' satisfies Mode, source: 'NODE_ENV' };
  return { mode: 'development' satisfies Mode, source: 'default' };
}

/** Whether a listener address or host name is loopback only: `localhost`, 127.0.0.0/8, ::1. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** Whether the API port serves the OpenAPI UI and document: `http.docs`, or when null, development mode. */
export function docsServed(config: Config): boolean {
  return config.http.docs ?? config.mode === 'development';
}

/**
 * Whether the API port serves `/metrics`: never when `metrics.port` gives it a listener of its own; in
 * production only behind `metrics.token`.
 */
export function metricsOnApiPort(config: Config): boolean {
  if (config.metrics.port !== null) return false;
  return config.mode === 'development' || config.metrics.token !== null;
}
