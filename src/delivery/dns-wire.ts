/**
 * A minimal stub resolver for MX, A, AAAA and TXT that answers with the records' TTLs and, for a name or
 * type that does not exist, the SOA minimum of the authority section (RFC 2308): what node:dns does not
 * expose and the DNS cache (dns-cache.ts) needs. UDP first, TCP when the answer is truncated; the servers
 * in order, `tries` rounds. Errors carry the codes node:dns uses (ENOTFOUND, ENODATA, ESERVFAIL, ETIMEOUT…).
 */
import { createSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { connect, isIPv6 } from 'node:net';

export type WireType = 'MX' | 'A' | 'AAAA' | 'TXT';
const TYPE_CODE: Record<WireType, number> = { A: 1, MX: 15, TXT: 16, AAAA: 28 };
const RCODE_ERROR: Record<number, string> = { 1: 'EFORMERR', 2: 'ESERVFAIL', 3: 'ENOTFOUND', 4: 'ENOTIMP', 5: 'EREFUSED' };

/** An address; an MX record; or a TXT record as its character-strings (as node:dns `resolveTxt` gives them). */
export type WireRecord = string | { exchange: string; priority: number } | string[];

/** An answer: records with the smallest TTL among them (CNAMEs included), or a negative answer. */
export type WireAnswer =
  | { records: WireRecord[]; ttl: number }
  /** NXDOMAIN (ENOTFOUND) or no record of the type (ENODATA); ttl from the SOA, null when none came. */
  | { error: 'ENOTFOUND' | 'ENODATA'; ttl: number | null };

/** An error with a node:dns style `code`. */
export function dnsError(code: string, name: string): Error {
  // No stack trace: NODATA and NXDOMAIN are answers, met on every delivery to a domain without MX or AAAA
  // records (two per message there), and a captured stack was ~1 % of the event loop under load.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return Object.assign(new Error(`DNS ${code} ${name}`), { code, hostname: name });
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function encodeQuery(id: number, name: string, type: WireType): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts = [Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) {
    const b = Buffer.from(l, 'ascii');
    if (b.length > 63) throw dnsError('EBADNAME', name);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0, 0, TYPE_CODE[type], 0, 1]));
  return Buffer.concat(parts);
}

/** Reads a (possibly compressed) name at `offset`; answers it and the offset after it. */
function readName(buf: Buffer, offset: number): [string, number] {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  for (let hops = 0; hops < 64; hops++) {
    const len = buf[pos];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return [labels.join('.'), end < 0 ? pos + 1 : end];
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = pos + 2;
      pos = ((len & 0x3f) << 8) | buf[pos + 1];
      continue;
    }
    labels.push(buf.toString('ascii', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new Error('name loop');
}

function ipv6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // The URL parser prints the canonical compressed form, as node:dns does.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** Parses a response to a question of `type` into records and TTL, or a negative answer. */
export function parseResponse(buf: Buffer, id: number, type: WireType, name: string): WireAnswer | { truncated: true } {
  if (buf.length < 12 || buf.readUInt16BE(0) !== id) throw dnsError('EBADRESP', name);
  const flags = buf.readUInt16BE(2);
  if (flags & 0x0200) return { truncated: true };
  const rcode = flags & 15;
  if (rcode !== 0 && rcode !== 3) throw dnsError(RCODE_ERROR[rcode] ?? 'EBADRESP', name);
  const [qd, an, ns] = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8)];
  let pos = 12;
  for (let i = 0; i < qd; i++) pos = readName(buf, pos)[1] + 4;
  const records: WireRecord[] = [];
  let ttl = Number.POSITIVE_INFINITY;
  let soaTtl: number | null = null;
  for (let i = 0; i < an + ns; i++) {
    pos = readName(buf, pos)[1];
    const rtype = buf.readUInt16BE(pos);
    const rttl = buf.readUInt32BE(pos + 4);
    const len = buf.readUInt16BE(pos + 8);
    const data = pos + 10;
    pos = data + len;
    if (i >= an) {
      // RFC 2308 section 5: a negative answer lives min(SOA TTL, SOA minimum).
      if (rtype === 6) soaTtl = Math.min(rttl, buf.readUInt32BE(readName(buf, readName(buf, data)[1])[1] + 16));
      continue;
    }
    if (rtype === 5) ttl = Math.min(ttl, rttl);
    if (rtype !== TYPE_CODE[type]) continue;
    ttl = Math.min(ttl, rttl);
    if (rtype === 1) records.push([...buf.subarray(data, data + 4)].join('.'));
    else if (rtype === 28) records.push(ipv6(buf.subarray(data, data + 16)));
    else if (rtype === 16) {
      const chunks: string[] = [];
      for (let at = data; at < data + len; at += 1 + buf[at]) chunks.push(buf.toString('utf8', at + 1, at + 1 + buf[at]));
      records.push(chunks);
    } else records.push({ priority: buf.readUInt16BE(data), exchange: readName(buf, data + 2)[0] });
  }
  if (rcode === 3) return { error: 'ENOTFOUND', ttl: soaTtl };
  if (!records.length) return { error: 'ENODATA', ttl: soaTtl };
  return { records, ttl };
}

function parseServer(s: string): { host: string; port: number } {
  const bracket = /^\[(.+)\]:(\d+)$/.exec(s);
  if (bracket) return { host: bracket[1], port: Number(bracket[2]) };
  if (isIPv6(s)) return { host: s, port: 53 };
  const [host, port] = s.split(':');
  return { host, port: port ? Number(port) : 53 };
}

function overUdp(server: { host: string; port: number }, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(isIPv6(server.host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => done(dnsError('ETIMEOUT', '')), timeoutMs);
    const done = (err: Error | null, msg?: Buffer): void => {
      clearTimeout(timer);
      sock.close();
      if (err) reject(err);
      else resolve(msg as Buffer);
    };
    sock.on('error', (err) => done(Object.assign(err, { code: (err as NodeJS.ErrnoException).code ?? 'ECONNREFUSED' })));
    // Only an answer with our id ends the wait: a late answer to an earlier try is ignored.
    sock.on('message', (msg) => msg.length >= 2 && msg.readUInt16BE(0) === query.readUInt16BE(0) && done(null, msg));
    sock.send(query, server.port, server.host);
  });
}

function overTcp(server: { host: string; port: number }, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect(server.port, server.host);
    const chunks: Buffer[] = [];
    sock.setTimeout(timeoutMs, () => sock.destroy(dnsError('ETIMEOUT', '')));
    sock.on('error', reject);
    // A server that closes without a whole answer: no timeout fires on a closed socket, so this must end the wait
    // (else the lookup, every lookup of the name joining it in the cache, and the job waiting on it never end).
    sock.on('close', () => reject(dnsError('ECONNRESET', '')));
    sock.on('data', (d) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) {
        sock.end();
        resolve(all.subarray(2, 2 + all.readUInt16BE(0)));
      }
    });
    const len = Buffer.alloc(2);
    len.writeUInt16BE(query.length);
    sock.write(Buffer.concat([len, query]));
  });
}

/** Asks the servers for `type` records of `name`; throws for SERVFAIL, timeouts and unreachable servers. */
export async function wireQuery(servers: readonly string[], name: string, type: WireType, opts: { timeoutMs: number; tries: number }): Promise<WireAnswer> {
  let last: unknown = dnsError('ECONNREFUSED', name);
  for (let t = 0; t < opts.tries; t++) {
    for (const s of servers) {
      const server = parseServer(s);
      const id = randomInt(0, 65536);
      const query = encodeQuery(id, name, type);
      try {
        let res = parseResponse(await overUdp(server, query, opts.timeoutMs), id, type, name);
        if ('truncated' in res) res = parseResponse(await overTcp(server, query, opts.timeoutMs), id, type, name);
        if ('truncated' in res) throw dnsError('EBADRESP', name);
        return res;
      } catch (err) {
        last = err;
        const code = (err as { code?: string }).code;
        // A definite answer (REFUSED, FORMERR…) from one server: try the next; a timeout: also.
        if (code === 'EBADNAME') throw err;
      }
    }
  }
  const code = (last as { code?: string }).code ?? 'ECONNREFUSED';
  throw dnsError(code, name);
}
