/**
 * DMARC aggregate and TLS-RPT counts in Redis, per sender (or policy) domain, reporting organisation and UTC
 * day, kept `retentionDays`. A report is applied by one Lua script: it marks the report id seen (`SET NX`)
 * and, only when it was not, adds every count — so a report delivered twice, or twice at once, counts once,
 * and a report is never half-applied by a concurrent duplicate.
 */
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** What one report adds to one domain on one day. */
export interface DomainCounts {
  domain: string;
  /** Hash fields of the domain's dmarc or tls hash (`<org>\t<counter>`) → increment. */
  counts: Record<string, number>;
  /** DMARC only: foreign source IP fields (`<ip>`, `<ip>\tpass`) → increment. */
  sources?: Record<string, number>;
  /** The JSON summary pushed onto the domain's recent-reports list. */
  recent: Record<string, unknown>;
}

export interface ReportWrite {
  kind: 'dmarc' | 'tlsrpt';
  /** SHA-256 (hex) of the reporter and report id. */
  digest: string;
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
  /** When the day's keys expire (ms): the end of the day plus the retention. */
  expireAt: number;
  /** How long the seen mark is kept (ms). */
  seenTtlMs: number;
  domains: DomainCounts[];
}

/** A domain's hashes of one day, as read back. */
export interface DayCounts {
  day: string;
  dmarc: Record<string, string>;
  sources: Record<string, string>;
  tls: Record<string, string>;
}

const RECENT_CAP = 50;

// KEYS[1] seen mark; KEYS[2..] the hashes and lists. ARGV: seen ttl, expireAt, recent cap, then the ops:
// "h" key-index field increment | "l" key-index json.
const APPLY = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
local i = 4
while i <= #ARGV do
  local op = ARGV[i]
  local key = KEYS[tonumber(ARGV[i + 1])]
  if op == 'h' then
    redis.call('HINCRBY', key, ARGV[i + 2], ARGV[i + 3])
    redis.call('PEXPIREAT', key, ARGV[2])
    i = i + 4
  else
    redis.call('LPUSH', key, ARGV[i + 2])
    redis.call('LTRIM', key, 0, tonumber(ARGV[3]) - 1)
    redis.call('PEXPIRE', key, ARGV[1])
    i = i + 3
  end
end
return 1`;

/** Per-day DMARC and TLS-RPT counts of Kurir's domains. */
export class ReportStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Applies a report atomically; answers false when its id was already applied (nothing written). */
  async apply(w: ReportWrite): Promise<boolean> {
    const keys = [this.keys.reportSeen(w.kind, w.digest)];
    const argv: Array<string | number> = [Math.max(1, Math.round(w.seenTtlMs)), Math.round(w.expireAt), RECENT_CAP];
    const keyIndex = (key: string): number => {
      const at = keys.indexOf(key);
      if (at >= 0) return at + 1;
      keys.push(key);
      return keys.length;
    };
    for (const d of w.domains) {
      const hash = keyIndex(w.kind === 'dmarc' ? this.keys.reportDmarc(d.domain, w.day) : this.keys.reportTls(d.domain, w.day));
      for (const [field, n] of Object.entries(d.counts)) if (n) argv.push('h', hash, field, n);
      if (d.sources && Object.keys(d.sources).length) {
        const src = keyIndex(this.keys.reportSources(d.domain, w.day));
        for (const [field, n] of Object.entries(d.sources)) if (n) argv.push('h', src, field, n);
      }
      argv.push('l', keyIndex(this.keys.reportRecent(d.domain)), JSON.stringify(d.recent));
    }
    return (await this.redis.eval(APPLY, keys.length, ...keys, ...argv)) === 1;
  }

  /** The domain's counts of the given days (those with nothing are left out). */
  async days(domain: string, days: string[]): Promise<DayCounts[]> {
    const pipe = this.redis.pipeline();
    for (const day of days) {
      pipe.hgetall(this.keys.reportDmarc(domain, day));
      pipe.hgetall(this.keys.reportSources(domain, day));
      pipe.hgetall(this.keys.reportTls(domain, day));
    }
    const res = (await pipe.exec()) ?? [];
    const at = (i: number): Record<string, string> => {
      const [err, value] = res[i] ?? [null, {}];
      if (err) throw err;
      return (value as Record<string, string>) ?? {};
    };
    return days
      .map((day, n) => ({ day, dmarc: at(n * 3), sources: at(n * 3 + 1), tls: at(n * 3 + 2) }))
      .filter((d) => Object.keys(d.dmarc).length || Object.keys(d.sources).length || Object.keys(d.tls).length);
  }

  /** The domain's most recently applied reports, newest first. */
  async recent(domain: string, limit = RECENT_CAP): Promise<Array<Record<string, unknown>>> {
    const rows = await this.redis.lrange(this.keys.reportRecent(domain), 0, limit - 1);
    return rows.map((r) => JSON.parse(r) as Record<string, unknown>);
  }
}
