import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config/load.js';
import { docsServed, metricsOnApiPort } from './config/mode.js';
import { DEFAULT_REDIS_URL } from './config/schema.js';
import { startGateway, type Gateway } from './gateway.js';
import { createLogger } from './lib/logger.js';
import { redisAnswers, startManagedRedis } from './store/managed-redis.js';

/** The composition root: config → Redis → roles; SIGTERM/SIGINT close in reverse. The only place that exits. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig({ env: process.env });
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : String(err)}\n`);
    process.exit(2);
  }
  const logger = createLogger({ level: config.log.level });
  let managed: ChildProcess | null = null;
  if (config.redis.manage === 'auto' && config.redis.url === DEFAULT_REDIS_URL && !(await redisAnswers(config.redis.url))) {
    logger.warn({ dir: join(config.dataDir, 'redis') }, 'no Redis at the default URL: starting a managed redis-server with AOF');
    try {
      managed = await startManagedRedis(join(config.dataDir, 'redis'), 6379);
    } catch (err) {
      logger.fatal((err as Error).message);
      process.exit(1);
    }
  }

  let gateway: Gateway;
  try {
    gateway = await startGateway(config, logger, { env: process.env });
  } catch (err) {
    logger.fatal({ err }, `start-up failed: ${(err as Error).message}`);
    managed?.kill('SIGTERM');
    process.exit(1);
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
    const hardStop = setTimeout(() => {
      logger.error('shutdown took too long, exiting');
      process.exit(1);
    }, (config.delivery.shutdownGraceSeconds + 10) * 1000);
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
