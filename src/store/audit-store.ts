/**
 * The audit log: one Redis stream, appended to and never edited, trimmed (approximately) to
 * `audit.maxEntries` so it stays bounded. Entry ids are the stream ids (time-ordered).
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** One audited action. `before` / `after` are public views (never a secret). */
export interface AuditEntry {
  /** Unix ms. */
  at: number;
  /** Who: `<kind>:<name>` of the credential, or `bootstrap` (CLI writing straight to Redis). */
  actor: string;
  role: string;
  /** Client IP as the API saw it (the proxy's client with `http.trustProxy`); `local` for bootstrap. */
  ip: string;
  /** `METHOD /route/{param}`, or a CLI bootstrap action. */
  action: string;
  /** What the action was about (a credential id, an address, a message id), when it names one. */
  target?: string;
  /** HTTP status of the answer. */
  status: number;
  before?: unknown;
  after?: unknown;
}

export interface StoredAuditEntry extends AuditEntry {
  id: string;
}

/** Appends audited actions to the audit stream and reads them back: newest first by page, or all oldest first for export. */
export class AuditStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly maxEntries: number,
  ) {}

  /** Appends an entry; answers its id. */
  async append(entry: AuditEntry): Promise<string> {
    const id = await this.redis.xadd(this.keys.auditLog(), 'MAXLEN', '~', this.maxEntries, '*', 'e', JSON.stringify(entry));
    return id as string;
  }

  /** Newest first: up to `limit` entries older than the entry `before` (exclusive), and whether more follow. */
  async page(limit: number, before?: string): Promise<{ items: StoredAuditEntry[]; more: boolean }> {
    const end = before ? `(${before}` : '+';
    const raw = await this.redis.xrevrange(this.keys.auditLog(), end, '-', 'COUNT', limit + 1);
    const items = raw.map(([id, fields]) => ({ id, ...(JSON.parse(fields[1]) as AuditEntry) }));
    return { items: items.slice(0, limit), more: items.length > limit };
  }

  /** Every entry, oldest first, a page at a time (for export). */
  async *all(pageSize = 500): AsyncGenerator<StoredAuditEntry[]> {
    let start = '-';
    for (;;) {
      const raw = await this.redis.xrange(this.keys.auditLog(), start, '+', 'COUNT', pageSize);
      if (!raw.length) return;
      yield raw.map(([id, fields]) => ({ id, ...(JSON.parse(fields[1]) as AuditEntry) }));
      if (raw.length < pageSize) return;
      start = `(${raw[raw.length - 1][0]}`;
    }
  }
}
