import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

export interface Suppression {
  address: string;
  reason: string;
  source: string;
  at: number;
  messageId?: string;
}

export interface SuppressionQuery {
  /** Only addresses at this (normalized, lower-case) domain. */
  domain?: string;
  /** Only entries with this reason (case-insensitive, exact). */
  reason?: string;
  /** Opaque cursor from the previous page's `nextCursor`. */
  cursor?: string;
  limit: number;
}

export interface SuppressionPage {
  items: Suppression[];
  /** Pass back as `cursor` for the next page; null when the list is exhausted. */
  nextCursor: string | null;
}

/** Index entries read per round trip while paging. */
const BATCH = 500;
/**
 * At most this many index entries are examined per page when a reason filter is set (reasons have no
 * index): a page may then hold fewer than `limit` items while `nextCursor` is still non-null.
 */
const MAX_SCAN_PER_PAGE = 20_000;

const fieldOf = (address: string): string => address.toLowerCase();
const domainOfField = (field: string): string => field.slice(field.lastIndexOf('@') + 1);

function encodeCursor(member: string): string {
  return Buffer.from(member, 'utf8').toString('base64url');
}

/** The member a cursor points at, or null when the cursor is not one of ours. */
export function decodeCursor(cursor: string): string | null {
  if (!/^[A-Za-z0-9_-]{1,2000}$/.test(cursor)) return null;
  const member = Buffer.from(cursor, 'base64url').toString('utf8');
  return member.includes('@') ? member : null;
}

/**
 * The suppression list: addresses intake refuses. Filled by the feedback loop and by admins.
 *
 * Layout: a hash address → entry (JSON) answers lookups and intake checks in one HMGET. For paging, every
 * address is also a member of a sorted set with score 0 (so members sort by address, ZRANGE BYLEX) and of
 * a per-domain sorted set alike. The cursor is the last address returned, so pages stay stable while
 * entries are added or removed concurrently (nothing is skipped or repeated), and a domain filter reads
 * only that domain's index. Reasons are few but free text, so they get no index: a reason filter walks
 * the (domain) index and filters, bounded per page by MAX_SCAN_PER_PAGE.
 */
export class SuppressionStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Adds or replaces an entry. Returns true when the address was not suppressed before. */
  async add(entry: Suppression): Promise<boolean> {
    return (await this.addMany([entry])) === 1;
  }

  /**
   * Adds or replaces many entries in one MULTI/EXEC: other clients see all of them or none.
   * Returns how many addresses were new.
   */
  async addMany(entries: Suppression[]): Promise<number> {
    if (!entries.length) return 0;
    const tx = this.redis.multi();
    for (const e of entries) {
      const field = fieldOf(e.address);
      tx.hset(this.keys.suppressions(), field, JSON.stringify(e));
      tx.zadd(this.keys.suppressionIndex(), 0, field);
      tx.zadd(this.keys.suppressionDomainIndex(domainOfField(field)), 0, field);
    }
    const res = await tx.exec();
    let added = 0;
    for (let i = 0; i < entries.length; i++) added += Number(res?.[i * 3]?.[1] ?? 0);
    return added;
  }

  /** Removes an address; returns whether it was there. */
  async remove(address: string): Promise<boolean> {
    const field = fieldOf(address);
    const res = await this.redis
      .multi()
      .hdel(this.keys.suppressions(), field)
      .zrem(this.keys.suppressionIndex(), field)
      .zrem(this.keys.suppressionDomainIndex(domainOfField(field)), field)
      .exec();
    return Number(res?.[0]?.[1] ?? 0) === 1;
  }

  /** One entry, or null. */
  async get(address: string): Promise<Suppression | null> {
    const raw = await this.redis.hget(this.keys.suppressions(), fieldOf(address));
    return raw ? (JSON.parse(raw) as Suppression) : null;
  }

  /** The entries among `addresses` that are suppressed, in one round trip. */
  async check(addresses: string[]): Promise<Suppression[]> {
    if (!addresses.length) return [];
    const values = await this.redis.hmget(this.keys.suppressions(), ...addresses.map(fieldOf));
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as Suppression);
  }

  /** How many addresses are suppressed. */
  async count(): Promise<number> {
    return this.redis.hlen(this.keys.suppressions());
  }

  /** One page of entries in address order, optionally filtered by domain and reason. */
  async list(q: SuppressionQuery): Promise<SuppressionPage> {
    const index = q.domain ? this.keys.suppressionDomainIndex(q.domain.toLowerCase()) : this.keys.suppressionIndex();
    const reason = q.reason?.toLowerCase();
    let after = q.cursor ? decodeCursor(q.cursor) : null;
    const items: Suppression[] = [];
    let scanned = 0;
    for (;;) {
      const members = await this.redis.zrangebylex(index, after === null ? '-' : `(${after}`, '+', 'LIMIT', 0, BATCH);
      if (!members.length) return { items, nextCursor: null };
      const values = await this.redis.hmget(this.keys.suppressions(), ...members);
      for (let i = 0; i < members.length; i++) {
        after = members[i];
        scanned++;
        const raw = values[i]; // null: an address removed between the two reads
        const entry = raw ? (JSON.parse(raw) as Suppression) : null;
        if (entry && (reason === undefined || entry.reason.toLowerCase() === reason)) items.push(entry);
        if (items.length >= q.limit || scanned >= MAX_SCAN_PER_PAGE) return { items, nextCursor: encodeCursor(after) };
      }
      if (members.length < BATCH) return { items, nextCursor: null };
    }
  }

  /** Every entry (optionally filtered) in address order, page by page: for export. */
  async *all(filter: Omit<SuppressionQuery, 'cursor' | 'limit'> = {}): AsyncGenerator<Suppression[]> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ ...filter, cursor, limit: 1000 });
      if (page.items.length) yield page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }
}
