/**
 * Whether each Redis shard (`redis.shards`, docs/scale-out.md) is reachable, made visible: kurir_redis_up{redis}
 * follows each shard's command connection, an outage is logged at warn once (naming the shard and its URL without
 * password) and its end at info, and /readyz lists the shards that are down (src/roles/api.ts).
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { redisTarget } from '../store/redis.js';

interface Watched {
  name: string;
  target: string;
  up: boolean;
  /** When the outage began (epoch ms), for the "back" line. */
  since: number;
  lastError: string | null;
}

/** One shard that is down, as /readyz names it. */
export interface ShardDown {
  name: string;
  target: string;
  /** The last connection error, e.g. ECONNREFUSED; null when the connection closed without one. */
  error: string | null;
}

/** Tracks the connection state of every shard; `close()` first stops it so a deliberate disconnect is not an outage. */
export class ShardHealth {
  private readonly shards: Watched[] = [];
  private closing = false;

  constructor(
    private readonly logger: Logger,
    private readonly metrics: Metrics | undefined,
    private readonly clock: Clock,
  ) {}

  /** Starts watching a shard's command connection, which is ready now (openShards waited for it). */
  watch(name: string, redis: Redis): void {
    const w: Watched = { name, target: redisTarget(redis), up: redis.status === 'ready', since: 0, lastError: null };
    this.shards.push(w);
    this.metrics?.redisUp.set({ redis: name }, w.up ? 1 : 0);
    redis.on('error', (err: NodeJS.ErrnoException) => {
      w.lastError = err.code ?? err.message;
      this.down(w);
    });
    redis.on('close', () => this.down(w));
    redis.on('ready', () => {
      if (this.closing || w.up) return;
      w.up = true;
      this.metrics?.redisUp.set({ redis: name }, 1);
      this.logger.info(
        { shard: name, redis: w.target, downForMs: this.clock.now() - w.since },
        'redis shard reachable again: its sender domains are accepted and delivered',
      );
      w.lastError = null;
    });
  }

  /** The shards whose connection is down now. */
  unreachable(): ShardDown[] {
    return this.shards.filter((s) => !s.up).map((s) => ({ name: s.name, target: s.target, error: s.lastError }));
  }

  /** Stops reporting: the connections are about to be closed on purpose. */
  close(): void {
    this.closing = true;
  }

  private down(w: Watched): void {
    if (this.closing || !w.up) return;
    w.up = false;
    w.since = this.clock.now();
    this.metrics?.redisUp.set({ redis: w.name }, 0);
    // Once per outage: ioredis reports every reconnect attempt, which stays at debug (src/roles/shards.ts).
    this.logger.warn(
      { shard: w.name, redis: w.target, err: w.lastError ?? 'connection closed' },
      'redis shard unreachable: its sender domains are refused (503 / 451) and their deliveries wait until it is back',
    );
  }
}
