import type { Redis } from 'ioredis';
import { KurirError } from '../lib/errors.js';

/**
 * What a 202/250 waits for. `standard`: the write is in Redis (with AOF `everysec`, a power loss can take
 * the last second). `fsync`: the write is on disk — on Redis 7.0 that needs `appendonly yes` with
 * `appendfsync always` (Redis fsyncs once per event-loop iteration, a group commit across clients).
 */
export type Durability = 'standard' | 'fsync';

/**
 * Why the connected Redis does not give `fsync` durability, or null when it does. Reads CONFIG GET; a Redis
 * where CONFIG is renamed or refused to this user cannot be verified (INFO does not show the fsync policy).
 */
export async function fsyncProblem(redis: Redis): Promise<string | null> {
  let settings: string[];
  try {
    settings = (await redis.call('CONFIG', 'GET', 'append*')) as string[];
  } catch (err) {
    return `its persistence settings cannot be read (CONFIG GET: ${(err as Error).message}); allow CONFIG GET for Kurir's Redis user`;
  }
  const get = (name: string): string | undefined => {
    const i = settings.indexOf(name);
    return i >= 0 ? settings[i + 1] : undefined;
  };
  if (get('appendonly') !== 'yes') return `Redis runs with appendonly ${get('appendonly') ?? '?'}; set appendonly yes and appendfsync always`;
  if (get('appendfsync') !== 'always') return `Redis runs with appendfsync ${get('appendfsync') ?? '?'}; set appendfsync always`;
  return null;
}

/** How often the settings are read again while connected (one CONFIG GET). */
export const FSYNC_RECHECK_MS = 2000;

/**
 * Keeps `fsync` durability checked: at start, again after every reconnect (a restarted Redis may come back with
 * other settings), and every {@link FSYNC_RECHECK_MS} while connected, so that `CONFIG SET appendfsync always`
 * ends a refusal without a reconnect and `CONFIG SET appendfsync everysec` starts one. Until a check passes,
 * `assertOk` refuses with UNAVAILABLE, so intake answers 503 / 451 4.3.0 rather than a 202/250 it cannot back.
 */
export class FsyncGuard {
  private problem: string | null = 'not checked yet';
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly onChange: (problem: string | null) => void,
  ) {}

  /** Checks now; returns the problem, or null. */
  async check(): Promise<string | null> {
    this.problem = await fsyncProblem(this.redis);
    this.onChange(this.problem);
    return this.problem;
  }

  /** Re-checks after every reconnect and every {@link FSYNC_RECHECK_MS}; refuses in between a reconnect and its check. */
  watch(recheckMs = FSYNC_RECHECK_MS): void {
    const recheck = (): void => {
      void this.check().catch((err: unknown) => this.onChange((this.problem = `re-check failed: ${(err as Error).message}`)));
    };
    this.redis.on('close', () => {
      if (this.problem === null) this.onChange((this.problem = 'Redis reconnected; persistence not re-checked yet'));
    });
    this.redis.on('ready', recheck);
    // Only while connected: offline, commands would queue or fail, and the reconnect checks anyway.
    this.timer = setInterval(() => {
      if (this.redis.status === 'ready') recheck();
    }, recheckMs);
    this.timer.unref();
  }

  /** Stops the periodic re-check. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Why intake refuses now, or null while fsync durability is in place. */
  refusal(): string | null {
    return this.problem;
  }

  /** Throws UNAVAILABLE while the connected Redis does not give fsync durability. */
  assertOk(): void {
    if (this.problem) throw new KurirError('UNAVAILABLE', `not accepting: redis.durability is fsync but ${this.problem}`);
  }
}
