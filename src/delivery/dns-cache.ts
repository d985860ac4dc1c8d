/**
 * A per-process cache of MX, A, AAAA and TXT answers in front of the DNS, used by every lookup that goes
 * through the gateway's resolver (delivery routing, the MX host that shaping buckets by, MTA-STS records and
 * fetches, DKIM keys of feedback reports).
 * Positive answers live for their TTL (capped at `maxTtlSeconds`); a name or type that does not exist
 * lives for the SOA's negative TTL (RFC 2308), capped at `negativeMaxSeconds`, and is not cached when the
 * answer carried no SOA. SERVFAIL, timeouts and unreachable servers are never cached. Bounded: the least
 * recently used entry goes first. Concurrent lookups of one name and type share one query.
 */
import type { Clock } from '../lib/clock.js';
import { dnsError, type WireAnswer, type WireType } from './dns-wire.js';

export interface DnsCacheOptions {
  maxEntries: number;
  maxTtlSeconds: number;
  negativeMaxSeconds: number;
}

interface Entry {
  expiresAt: number;
  answer: WireAnswer;
}

/** The cache proper: `lookup` answers from memory within the TTL, else asks `query` once. */
export class DnsCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<WireAnswer>>();
  /** Lookups answered from memory, and those that asked the DNS. */
  readonly stats = { hits: 0, misses: 0 };

  constructor(
    private readonly opts: DnsCacheOptions,
    private readonly clock: Clock,
    private readonly query: (name: string, type: WireType) => Promise<WireAnswer>,
  ) {}

  /** Records of `type` for `name`; throws ENOTFOUND / ENODATA (cached or not) and every other failure. */
  async lookup(name: string, type: WireType): Promise<WireAnswer> {
    const key = `${type} ${name.toLowerCase().replace(/\.$/, '')}`;
    const now = this.clock.now();
    const hit = this.entries.get(key);
    if (hit && hit.expiresAt > now) {
      // Map order is insertion order: re-inserting makes this the most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      this.stats.hits++;
      return hit.answer;
    }
    if (hit) this.entries.delete(key);
    let pending = this.inFlight.get(key);
    if (!pending) {
      this.stats.misses++;
      pending = this.query(name, type).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
      const answer = await pending;
      this.store(key, answer);
      return answer;
    }
    return pending;
  }

  /** Entries held now (expired ones included until they are looked up or pushed out). */
  get size(): number {
    return this.entries.size;
  }

  private store(key: string, answer: WireAnswer): void {
    const seconds = 'records' in answer ? Math.min(answer.ttl, this.opts.maxTtlSeconds) : Math.min(answer.ttl ?? 0, this.opts.negativeMaxSeconds);
    if (!(seconds > 0)) return;
    this.entries.set(key, { expiresAt: this.clock.now() + seconds * 1000, answer });
    while (this.entries.size > this.opts.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }
}

/** The records of an answer, or the ENOTFOUND / ENODATA error it stands for. */
export function recordsOf<T>(answer: WireAnswer, name: string): T[] {
  if ('error' in answer) throw dnsError(answer.error, name);
  return answer.records as T[];
}
