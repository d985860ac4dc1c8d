import { Redis, type RedisOptions } from 'ioredis';

/**
 * Opens a Redis connection. `command` connections fail fast when Redis is down (no offline queue, one
 * retry) so intake answers "try later" at once instead of hanging; `blocking` connections are for BullMQ
 * workers, which must wait and retry forever (maxRetriesPerRequest null, as BullMQ requires).
 */
export function createRedis(url: string, kind: 'command' | 'blocking', extra: RedisOptions = {}): Redis {
  const base: RedisOptions =
    kind === 'command'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 5000 }
      : { maxRetriesPerRequest: null, enableOfflineQueue: true, connectTimeout: 5000 };
  return new Redis(url, {
    lazyConnect: false,
    retryStrategy: (times) => Math.min(200 * times, 2000),
    ...base,
    ...extra,
  });
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export function waitReady(redis: Redis, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${redis.status})`));
    }, timeoutMs);
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/** Closes a connection once, whatever its state. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
