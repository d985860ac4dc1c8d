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

/**
 * Keeps `fsync` durability checked: at start, and again after every reconnect (a restarted Redis may come
 * back with other settings). Until a check passes, `assertOk` refuses with UNAVAILABLE, so intake answers
 * 503 / 451 4.3.0 rather than a 202/250 it cannot back.
 */
export class FsyncGuard {
  private problem: string | null = 'not checked yet';

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

  /** Re-checks after every reconnect; refuses in between. */
  watch(): void {
    this.redis.on('close', () => {
      if (this.problem === null) this.onChange((this.problem = 'Redis reconnected; persistence not re-checked yet'));
    });
    this.redis.on('ready', () => {
      void this.check().catch((err: unknown) => this.onChange((this.problem = `re-check failed: ${(err as Error).message}`)));
    });
  }

  /** Throws UNAVAILABLE while the connected Redis does not give fsync durability. */
  assertOk(): void {
    if (this.problem) throw new KurirError('UNAVAILABLE', `not accepting: redis.durability is fsync but ${this.problem}`);
  }
}
