import { Redis, type RedisOptions } from 'ioredis';
import type { Socket } from 'node:net';
import { coalesceSocketWrites } from '../lib/coalesced-writes.js';

/**
 * Opens a Redis connection. `command` connections fail fast when Redis is down (no offline queue, one
 * retry) so intake answers "try later" at once instead of hanging; `blocking` connections are for queue
 * workers, which must wait and retry forever (maxRetriesPerRequest null, as BullMQ requires for webhooks).
 */
export function createRedis(url: string, kind: 'command' | 'blocking', extra: RedisOptions = {}): Redis {
  const base: RedisOptions =
    kind === 'command'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 5000 }
      : { maxRetriesPerRequest: null, enableOfflineQueue: true, connectTimeout: 5000 };
  const redis = new Redis(url, {
    lazyConnect: false,
    retryStrategy: (times) => Math.min(200 * times, 2000),
    ...base,
    ...extra,
  });
  // ioredis writes each command to the socket at once; see coalesceSocketWrites for why they are batched per turn.
  redis.on('connect', () => {
    const stream = (redis as unknown as { stream?: Socket }).stream;
    if (stream) coalesceSocketWrites(stream);
  });
  return redis;
}

/** Redis did not become ready in time at start-up. `message` names the server and the last connection error. */
export class RedisUnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly waitedMs: number,
    readonly lastError: string | null,
  ) {
    super(`cannot reach Redis at ${url} after ${waitedMs / 1000} s${lastError ? ` (${lastError})` : ''}`);
    this.name = 'RedisUnreachableError';
  }
}

/** The server a connection talks to, as a URL without its password (for messages and logs). */
export function redisTarget(redis: Redis): string {
  const o = redis.options;
  if (o.path) return `unix:${o.path}`;
  const user = o.username || o.password ? `${o.username ?? ''}${o.password ? ':***' : ''}@` : '';
  return `${o.tls ? 'rediss' : 'redis'}://${user}${o.host ?? '127.0.0.1'}:${o.port ?? 6379}${o.db ? `/${o.db}` : ''}`;
}

/** Resolves once the connection is ready, or rejects with a {@link RedisUnreachableError} after `timeoutMs`. */
export function waitReady(redis: Redis, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError: string | null = null;
    const timer = setTimeout(() => {
      cleanup();
      reject(new RedisUnreachableError(redisTarget(redis), timeoutMs, lastError));
    }, timeoutMs);
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      lastError = (err as NodeJS.ErrnoException).code ?? err.message;
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
    };
    redis.on('ready', onReady);
    redis.on('error', onError);
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
