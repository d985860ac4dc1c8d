/**
 * A real, in-process authoritative DNS server for tests (dns2 UDP + TCP on the
 * same ephemeral port of 127.0.0.1), plus adapters for node:dns and mailauth.
 *
 * Semantics (verified through node's c-ares `dns.Resolver`, node 20 / c-ares 1.34):
 * - known name + present type  → NOERROR with answers
 * - unknown name               → rcode 3 NXDOMAIN → error code `ENOTFOUND`
 * - known name, missing type   → NOERROR, no answers (NODATA) → `ENODATA`
 * - `servfail` name            → rcode 2 SERVFAIL → `ESERVFAIL`
 * - null MX (RFC 7505, `{ exchange: '.', priority: 0 }`) is served as the root
 *   name; `resolveMx` returns it as `[{ exchange: '', priority: 0 }]`
 *   (empty string, NOT '.').
 * - TXT strings longer than 255 bytes are split into 255-byte character-strings;
 *   `resolveTxt` returns them as chunks (`string[][]`), mailauth joins them.
 * - UDP replies over 512 bytes are sent truncated (TC=1, no answers); c-ares
 *   then retries over TCP on the same port, which this server also answers.
 * - Names are case-insensitive, a trailing dot is tolerated; CNAME chains inside
 *   the zone are followed for non-CNAME queries.
 * - PTR: `resolvePtr('1.0.0.127.in-addr.arpa')` reaches this server, but
 *   `resolver.reverse('127.0.0.1')` is answered by c-ares from /etc/hosts and
 *   never does; use a non-hosts address (e.g. 192.0.2.1) for reverse() tests.
 */
import dns2 from 'dns2';
import { promises as dnsPromises } from 'node:dns';
import { isIPv4, isIPv6, type AddressInfo, type Socket } from 'node:net';

const { Packet } = dns2;
type DnsPacket = InstanceType<typeof Packet>;
type DnsResource = DnsPacket['answers'][number];

const HOST = '127.0.0.1' as const;
const TTL = 60;
const UDP_MAX = 512;
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;

/** Record types this server can serve. */
export type RecordType = 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME' | 'PTR';

/** An MX record; `{ exchange: '.', priority: 0 }` is a null MX (RFC 7505). */
export interface MxRecord {
  exchange: string;
  priority: number;
}

/** Record data per type. A TXT entry is a string (auto-split at 255 bytes) or explicit chunks. */
export interface RecordSets {
  A: string[];
  AAAA: string[];
  MX: MxRecord[];
  TXT: Array<string | string[]>;
  CNAME: string[];
  PTR: string[];
}

/** Records of one owner name; `servfail: true` answers every query for it with SERVFAIL; `ttl` (seconds, default 60) for its records. */
export type ZoneEntry = Partial<RecordSets> & { servfail?: boolean; ttl?: number };

/** Owner name → records, e.g. `{ 'example.test': { MX: [...], TXT: [...] } }`. */
export type Zone = Record<string, ZoneEntry>;

/** One query the server answered (for assertions on lookups). */
export interface DnsQuery {
  name: string;
  type: string;
  protocol: 'udp' | 'tcp';
  rcode: number;
}

/** Handle to a running test DNS server. */
export interface DnsServer {
  host: typeof HOST;
  port: number;
  /** `'127.0.0.1:PORT'`, usable by `dns.Resolver#setServers`. */
  address: string;
  /** Every query answered, in order. */
  queries: DnsQuery[];
  /** Replace the records of one type for a name (creates the name if needed). */
  set<T extends RecordType>(name: string, type: T, records: RecordSets[T]): void;
  /** Remove one type of a name, or the whole name (→ NXDOMAIN) when type is omitted. */
  remove(name: string, type?: RecordType): void;
  /** TTL (seconds) of every record of `name` from now on; 0 means resolvers must not cache them. */
  setTtl(name: string, seconds: number): void;
  /** Make every query for `name` fail with SERVFAIL (or stop doing so). */
  servfail(name: string, enabled?: boolean): void;
  close(): Promise<void>;
}

/** Resolver in the shape of `dns.promises.resolve` (what mailauth's `resolver` option expects). */
export interface ResolveFn {
  (name: string, rrtype: 'MX'): Promise<MxRecord[]>;
  (name: string, rrtype: 'TXT'): Promise<string[][]>;
  (name: string, rrtype: string): Promise<string[] | string[][]>;
}

/** Options for the node:dns based resolvers. */
export interface ResolverOptions {
  timeoutMs?: number;
  tries?: number;
}

const normalizeName = (name: string): string => name.trim().toLowerCase().replace(/\.+$/, '');

const TYPE_NAMES = new Map<number, string>(Object.entries(Packet.TYPE).map(([k, v]) => [v, k]));

/** Split into ≤255-byte character-strings (RFC 1035 §3.3.14). */
function txtChunks(value: string | string[]): Buffer[] {
  const parts = Array.isArray(value) ? value : [value];
  const out: Buffer[] = [];
  for (const part of parts) {
    const buf = Buffer.from(part, 'utf8');
    if (buf.length === 0) out.push(buf);
    for (let i = 0; i < buf.length; i += 255) out.push(buf.subarray(i, i + 255));
  }
  return out;
}

/** Canonical compressed IPv6 text (also turns `::ffff:1.2.3.4` into hex groups dns2 can encode). */
const normalizeIPv6 = (address: string): string => new URL(`http://[${address}]/`).hostname.slice(1, -1);

function validate<T extends RecordType>(type: T, records: RecordSets[T]): void {
  if (!Array.isArray(records)) throw new TypeError(`dns-server: ${type} records must be an array`);
  for (const r of records as unknown[]) {
    if (type === 'A' && !isIPv4(r as string)) throw new TypeError(`dns-server: bad A address ${String(r)}`);
    if (type === 'AAAA' && !isIPv6(r as string)) throw new TypeError(`dns-server: bad AAAA address ${String(r)}`);
  }
}

function toResources(owner: string, type: RecordType, entry: ZoneEntry): DnsResource[] {
  const base = { name: owner, type: Packet.TYPE[type], class: Packet.CLASS.IN, ttl: entry.ttl ?? TTL };
  switch (type) {
    case 'A':
      return (entry.A ?? []).map((address) => ({ ...base, address }));
    case 'AAAA':
      return (entry.AAAA ?? []).map((a) => ({ ...base, address: normalizeIPv6(a) }));
    case 'MX':
      return (entry.MX ?? []).map((mx) => ({ ...base, exchange: mx.exchange, priority: mx.priority }));
    case 'TXT':
      return (entry.TXT ?? []).map((txt) => ({ ...base, data: txtChunks(txt) }));
    case 'CNAME':
    case 'PTR':
      return (entry[type] ?? []).map((domain) => ({ ...base, domain }));
  }
}

const ALL_TYPES: RecordType[] = ['A', 'AAAA', 'MX', 'TXT', 'CNAME', 'PTR'];

/** Resolve one question against the zone, following in-zone CNAME chains. */
function lookup(zone: Map<string, ZoneEntry>, qname: string, qtype: number): { rcode: number; answers: DnsResource[] } {
  const typeName = TYPE_NAMES.get(qtype);
  const answers: DnsResource[] = [];
  let owner = qname;
  for (let hop = 0; hop < 8; hop++) {
    const entry = zone.get(normalizeName(owner));
    if (!entry) return { rcode: RCODE.NXDOMAIN, answers };
    if (entry.servfail) return { rcode: RCODE.SERVFAIL, answers: [] };
    const cname = entry.CNAME?.[0];
    if (cname && typeName !== 'CNAME' && typeName !== 'ANY') {
      answers.push(...toResources(owner, 'CNAME', entry));
      owner = cname;
      continue;
    }
    if (typeName === 'ANY') for (const t of ALL_TYPES) answers.push(...toResources(owner, t, entry));
    else if (ALL_TYPES.includes(typeName as RecordType)) answers.push(...toResources(owner, typeName as RecordType, entry));
    return { rcode: RCODE.NOERROR, answers };
  }
  return { rcode: RCODE.SERVFAIL, answers: [] };
}

/** Server options: `negativeTtl` adds an SOA (minimum and TTL = that many seconds) to NXDOMAIN and NODATA answers (RFC 2308). */
export interface DnsServerOptions {
  negativeTtl?: number;
}

function buildResponse(zone: Map<string, ZoneEntry>, req: DnsPacket, protocol: 'udp' | 'tcp', log: DnsQuery[], opts: DnsServerOptions = {}): Buffer {
  const q = req.questions[0];
  const res = new Packet();
  res.header = { id: req.header.id, qr: 1, opcode: req.header.opcode, aa: 1, tc: 0, rd: req.header.rd, ra: 0, z: 0, rcode: 0 };
  res.questions = q ? [q] : [];
  if (!q) res.header.rcode = RCODE.FORMERR;
  else if (req.header.opcode !== 0) res.header.rcode = RCODE.NOTIMP;
  else {
    const { rcode, answers } = lookup(zone, q.name, q.type);
    res.header.rcode = rcode;
    res.answers = answers;
    if (opts.negativeTtl !== undefined && (rcode === RCODE.NXDOMAIN || (rcode === RCODE.NOERROR && !answers.length))) {
      const m = opts.negativeTtl;
      res.authorities = [
        {
          // The SOA of the name's top-level zone: an enclosing zone, so caching resolvers keep the answer (RFC 2308).
          name: normalizeName(q.name).split('.').pop() || '.',
          type: Packet.TYPE.SOA,
          class: Packet.CLASS.IN,
          ttl: m,
          primary: 'ns.test',
          admin: 'hostmaster.test',
          serial: 1,
          refresh: 3600,
          retry: 600,
          expiration: 86400,
          minimum: m,
        },
      ] as unknown as DnsResource[];
    }
    log.push({ name: normalizeName(q.name), type: TYPE_NAMES.get(q.type) ?? String(q.type), protocol, rcode });
  }
  let buf = res.toBuffer();
  if (protocol === 'udp' && buf.length > UDP_MAX) {
    res.answers = [];
    res.header.tc = 1;
    buf = res.toBuffer();
  }
  return buf;
}

function listenTcp(server: InstanceType<typeof dns2.TCPServer>, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, HOST, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Start an authoritative DNS server on 127.0.0.1 (UDP and TCP, same ephemeral port).
 * @param zone initial records; names are case-insensitive, trailing dots ignored.
 * @returns a handle with the bound port, a mutable zone API, a query log and `close()`.
 */
export async function startDnsServer(zone: Zone = {}, opts: DnsServerOptions = {}): Promise<DnsServer> {
  const records = new Map<string, ZoneEntry>();
  for (const [name, entry] of Object.entries(zone)) {
    for (const t of ALL_TYPES) if (entry[t]) validate(t, entry[t] as RecordSets[typeof t]);
    records.set(normalizeName(name), { ...entry });
  }
  const queries: DnsQuery[] = [];
  const sockets = new Set<Socket>();

  for (let attempt = 0; ; attempt++) {
    const udp = new dns2.UDPServer({ type: 'udp4' });
    udp.on('request', (req, send) => {
      void Promise.resolve(send(buildResponse(records, req, 'udp', queries, opts))).catch(() => undefined);
    });
    udp.on('error', () => undefined);
    await udp.listen(0, HOST);
    const port = (udp.address() as AddressInfo).port;
    const tcp = new dns2.TCPServer();
    tcp.on('request', (req, send) => void send(buildResponse(records, req, 'tcp', queries, opts)));
    tcp.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    try {
      await listenTcp(tcp, port);
    } catch (err) {
      udp.close();
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 20) continue;
      throw err;
    }
    tcp.on('error', () => undefined);

    const entryFor = (name: string): ZoneEntry => {
      const key = normalizeName(name);
      let entry = records.get(key);
      if (!entry) records.set(key, (entry = {}));
      return entry;
    };

    return {
      host: HOST,
      port,
      address: `${HOST}:${port}`,
      queries,
      set(name, type, recs) {
        validate(type, recs);
        (entryFor(name) as Partial<RecordSets>)[type] = recs;
      },
      remove(name, type) {
        if (type === undefined) records.delete(normalizeName(name));
        else delete records.get(normalizeName(name))?.[type];
      },
      setTtl(name, seconds) {
        entryFor(name).ttl = seconds;
      },
      servfail(name, enabled = true) {
        entryFor(name).servfail = enabled;
      },
      close: () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          let pending = 2;
          const done = (): void => void (--pending === 0 && resolve());
          udp.close(done);
          tcp.close(done);
        }),
    };
  }
}

/**
 * A node:dns promises `Resolver` pointed only at the given server.
 * @param address `'127.0.0.1:PORT'` (e.g. `DnsServer.address`).
 */
export function nodeResolver(address: string, opts: ResolverOptions = {}): dnsPromises.Resolver {
  const resolver = new dnsPromises.Resolver({ timeout: opts.timeoutMs ?? 1000, tries: opts.tries ?? 2 });
  resolver.setServers([address]);
  return resolver;
}

/**
 * Adapter for mailauth's `resolver` option: same signature and error codes as
 * `dns.promises.resolve(name, rrtype)`, but querying only the given server.
 * @param address `'127.0.0.1:PORT'` (e.g. `DnsServer.address`).
 */
export function makeResolver(address: string, opts: ResolverOptions = {}): ResolveFn {
  const resolver = nodeResolver(address, opts);
  return ((name: string, rrtype: string) => resolver.resolve(name, rrtype)) as ResolveFn;
}
