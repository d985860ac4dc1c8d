import { pino, type Logger } from 'pino';

export type { Logger };

/** The process logger: JSON lines on stdout; `silent` for tests. */
export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino({ name: opts.name ?? 'kurir', level: opts.level ?? 'info' });
}
