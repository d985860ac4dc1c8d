import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config/load.js';
import { docsServed, metricsOnApiPort } from './config/mode.js';
import { DEFAULT_REDIS_URL, type Config } from './config/schema.js';
import { startGateway, type Gateway } from './gateway.js';
import { createLogger } from './lib/logger.js';
import { redisAnswers, startManagedRedis } from './store/managed-redis.js';
import { RedisUnreachableError } from './store/redis.js';

/**
 * One line for start-up failures a person can fix (Redis not answering, a port in use), saying what to do;
 * null for anything else, which is logged with its stack.
 */
function startupProblem(err: unknown): string | null {
  // Its message names the key, the value and the fix; a stack trace would only bury it.
  if (err instanceof ConfigError) return err.message;
  if (err instanceof RedisUnreachableError) {
    return `${err.message}: start Redis there, or point REDIS_URL (config key redis.url) at a running server`;
  }
  // Listener errors: the SMTP and bounce MX listeners wrap them naming the config key; fastify's come raw.
  type ListenError = NodeJS.ErrnoException & { address?: string; port?: number };
  const e = err as ListenError & { cause?: ListenError };
  const code = e?.code ?? e?.cause?.code;
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    const what = e.code ? `cannot listen on ${e.address ?? ''}:${e.port ?? '?'} (${code})` : e.message;
    const fix = code === 'EADDRINUSE' ? 'the port is in use' : 'the port needs privileges';
    return `${what}: ${fix}; choose another with KURIR_HTTP__PORT, KURIR_SMTP__PORT or KURIR_FEEDBACK__PORT (http.port, smtp.port, feedback.port)`;
  }
  return null;
}

/** The composition root: config → Redis → roles; SIGTERM/SIGINT close in reverse. The only place that exits. */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig({ env: process.env });
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`);
    process.exit(2);
  }
  const logger = createLogger({ level: config.log.level });
  let managed: ChildProcess | null = null;
  const answers = await redisAnswers(config.redis.url);
  if (!answers && config.redis.manage === 'auto' && config.redis.url === DEFAULT_REDIS_URL) {
    logger.warn({ dir: join(config.dataDir, 'redis') }, 'no Redis at the default URL: starting a managed redis-server with AOF');
    try {
      managed = await startManagedRedis(join(config.dataDir, 'redis'), 6379, config.redis.durability === 'fsync' ? 'always' : 'everysec');
    } catch (err) {
      logger.fatal((err as Error).message);
      process.exit(1);
    }
  } else if (!answers) {
    logger.warn('Redis does not answer yet at the configured URL (redis.url / REDIS_URL): waiting up to 10 s');
  }

  let gateway: Gateway;
  try {
    gateway = await startGateway(config, logger, { env: process.env });
  } catch (err) {
    const problem = startupProblem(err);
    if (problem) logger.fatal(problem);
    else logger.fatal({ err }, `start-up failed: ${(err as Error).message}`);
    managed?.kill('SIGTERM');
    // As for a config refused before start: 2, a configuration to fix (docs/operations.md).
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
  logger.info({ mode: config.mode, roles: config.roles, ports: gateway.ports, docs: docsServed(config) }, 'kurir started');
  if (config.metrics.port === null && !metricsOnApiPort(config)) {
    logger.warn('production mode: /metrics is not served (set metrics.token to serve it on the API port, or metrics.port for a listener of its own)');
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const hardStop = setTimeout(
      () => {
        logger.error('shutdown took too long, exiting');
        process.exit(1);
      },
      (config.delivery.shutdownGraceSeconds + 10) * 1000,
    );
    hardStop.unref();
    gateway
      .close()
      .then(() => {
        managed?.kill('SIGTERM');
        logger.info('stopped');
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'error during shutdown');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

void main();
