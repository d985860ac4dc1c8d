/**
 * A lean SMTP sink acting as the recipients' MX for the benchmark: smtp-server with STARTTLS (self-signed),
 * no AUTH, and only counters kept — no message bodies, no per-stage event log. Each accepted message is
 * checked for a DKIM-Signature header and counted once per Kurir message id (taken from the VERP MAIL FROM,
 * `b+<id>.…@bounce-domain`; other senders' mail by its Message-ID), with the time it first arrived (for
 * per-message latency). A few raw messages are kept so the caller can verify their signatures (`verifyDkim`).
 */
import type { AddressInfo } from 'node:net';
import { authenticate } from 'mailauth';
import { SMTPServer } from 'smtp-server';
import { makeResolver } from '../tests/helpers/dns-server.js';
import { selfSignedCert } from '../tests/helpers/tls.js';

export interface Sink {
  port: number;
  /** Messages accepted at end of DATA since the last reset (duplicates included). */
  readonly received: number;
  /** Distinct Kurir message ids received since the last reset. */
  readonly unique: number;
  /** Accepted messages that carried no DKIM-Signature header. */
  readonly unsigned: number;
  readonly secure: number;
  readonly connections: number;
  /** The first few raw messages since the last reset. */
  readonly samples: Array<{ raw: Buffer; mailFrom: string; helo: string }>;
  reset(): void;
  /** performance.now() when the last new message id arrived. */
  readonly lastUniqueAt: number;
  /** performance.now() when the message with this Kurir id first arrived (end of DATA), if it did since the last reset. */
  arrivedAt(id: string): number | undefined;
  /** Resolves true when `unique` reaches `count`, or false once `timeoutMs` passes. */
  waitForUnique(count: number, timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

const VERP_ID = /^b\+([0-9a-z]+)\./i;
const MESSAGE_ID = /(?:^|\n)message-id:\s*(<[^>\r\n]+>)/i;

export async function startSink(opts: { tls?: boolean; keepSamples?: number } = {}): Promise<Sink> {
  const tls = opts.tls ?? true;
  const keep = opts.keepSamples ?? 3;
  const cert = tls ? await selfSignedCert('mx.dest.test') : undefined;
  let received = 0;
  let unsigned = 0;
  let secure = 0;
  let connections = 0;
  /** Kurir message id → performance.now() of its first arrival. */
  let ids = new Map<string, number>();
  let samples: Sink['samples'] = [];
  let lastUniqueAt = 0;

  const server = new SMTPServer({
    name: 'mx.dest.test',
    key: cert?.key,
    cert: cert?.cert,
    secure: false,
    authOptional: true,
    disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    hideSTARTTLS: !tls,
    disableReverseLookup: true,
    size: 50 * 1024 * 1024,
    logger: false,
    closeTimeout: 1000,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', (err: Error) => callback(err));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        let headerEnd = raw.indexOf('\r\n\r\n');
        if (headerEnd < 0) headerEnd = raw.length;
        if (!/(^|\n)dkim-signature:/i.test(raw.subarray(0, headerEnd).toString('latin1'))) unsigned++;
        received++;
        if (session.secure) secure++;
        const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        // Kurir's VERP return path names its message id; other senders' mail (Postfix's, in the side-by-side
        // phase) is told apart by its Message-ID, so a duplicate delivery is still seen as one.
        const id = VERP_ID.exec(mailFrom)?.[1] ?? MESSAGE_ID.exec(raw.subarray(0, headerEnd).toString('latin1'))?.[1] ?? `anon-${received}`;
        if (!ids.has(id)) {
          lastUniqueAt = performance.now();
          ids.set(id, lastUniqueAt);
        }
        if (samples.length < keep) samples.push({ raw, mailFrom, helo: session.hostNameAppearsAs || '' });
        callback(null, 'OK: queued');
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    get received() {
      return received;
    },
    get unique() {
      return ids.size;
    },
    get unsigned() {
      return unsigned;
    },
    get secure() {
      return secure;
    },
    get connections() {
      return connections;
    },
    get samples() {
      return samples;
    },
    reset() {
      received = unsigned = secure = connections = 0;
      ids = new Map();
      samples = [];
    },
    get lastUniqueAt() {
      return lastUniqueAt;
    },
    arrivedAt: (id) => ids.get(id),
    async waitForUnique(count, timeoutMs) {
      const end = performance.now() + timeoutMs;
      while (ids.size < count) {
        if (performance.now() >= end) return false;
        await new Promise((r) => setTimeout(r, 10));
      }
      return true;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** mailauth's DKIM verdicts for kept samples, against the loopback DNS server: `domain/selector:result` per signature. */
export async function verifyDkim(samples: Sink['samples'], dnsAddress: string): Promise<string> {
  const verdicts: string[] = [];
  for (const s of samples) {
    const auth = await authenticate(s.raw, { ip: '127.0.0.1', helo: s.helo, sender: s.mailFrom, mta: 'mx.dest.test', resolver: makeResolver(dnsAddress) });
    verdicts.push(auth.dkim.results.map((r: any) => `${r.signingDomain}${r.selector ? `/${r.selector}` : ''}:${r.status.result}`).join('+') || 'none');
  }
  return verdicts.join(', ');
}
