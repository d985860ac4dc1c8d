import { Agent, request } from 'node:http';

// rspamd's normal worker answers every request with `Connection: close` (3.4, checked against the real one),
// so each check opens a connection; a keep-alive pool would only add bookkeeping for sockets that never return.
const agent = new Agent({ keepAlive: false });

/** The URL a check is POSTed to, from the configured base URL (compute it once, not per message). */
export function checkUrl(base: string): URL {
  return new URL('/checkv2', base);
}

/** What Kurir knows about the SMTP transaction the message will be sent in (rspamd's request headers). */
export interface ScanEnvelope {
  /** The public address receivers see the mail come from (rspamd `IP`). */
  ip: string;
  /** Kurir's EHLO name, also the host name of `ip` (rspamd `Helo`, `Hostname`). */
  helo: string;
  /** MAIL FROM: the VERP return path delivery will use (rspamd `From`). */
  mailFrom: string;
  /** RCPT TO addresses (one rspamd `Rcpt` header each). */
  recipients: string[];
  /** Kurir's message id (rspamd `Queue-Id`: it names the message in rspamd's log). */
  queueId: string;
}

export interface RspamdSymbol {
  name: string;
  score: number;
}

/** rspamd's verdict on one message. */
export interface RspamdVerdict {
  score: number;
  /** rspamd's reject threshold, when it said. */
  requiredScore?: number;
  /** `no action`, `greylist`, `add header`, `rewrite subject`, `soft reject` or `reject`. */
  action: string;
  /** Every symbol that matched, highest score first. */
  symbols: RspamdSymbol[];
}

/** Why rspamd gave no verdict. */
export type RspamdFailure = 'timeout' | 'unreachable' | 'bad-answer';

/** rspamd did not answer with a verdict; `reason` is the metric label. */
export class RspamdUnavailable extends Error {
  constructor(
    readonly reason: RspamdFailure,
    message: string,
  ) {
    super(message);
    this.name = 'RspamdUnavailable';
  }
}

/**
 * Asks rspamd's normal worker (`POST <url>/checkv2`) about a signed message. Resolves with the verdict;
 * rejects with RspamdUnavailable when the worker does not answer in time, refuses the connection or
 * answers something that is not a verdict.
 */
export function checkWithRspamd(url: string | URL, timeoutMs: number, message: Buffer, env: ScanEnvelope): Promise<RspamdVerdict> {
  const target = typeof url === 'string' ? checkUrl(url) : url;
  return new Promise((resolve, reject) => {
    try {
      send(resolve, reject);
    } catch (err) {
      // request() throws synchronously on a bad URL or header value: no verdict, the message goes on unscored.
      reject(new RspamdUnavailable('unreachable', `rspamd request not sent: ${(err as Error).message}`));
    }
  });

  function send(resolve: (v: RspamdVerdict) => void, reject: (e: unknown) => void): void {
    const req = request(
      target,
      {
        method: 'POST',
        agent,
        // An array value sends the header once per element: rspamd takes one Rcpt header per recipient.
        headers: {
          'Content-Length': String(message.length),
          IP: env.ip,
          Helo: env.helo,
          Hostname: env.helo,
          From: utf8(env.mailFrom),
          Rcpt: env.recipients.map(utf8),
          'Queue-Id': env.queueId,
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(deadline);
          try {
            resolve(parseVerdict(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', (err) => reject(new RspamdUnavailable('unreachable', `rspamd: ${err.message}`)));
      },
    );
    // `timeout` above bounds idle time on the socket; this bounds the whole exchange.
    const deadline = setTimeout(() => req.destroy(new RspamdUnavailable('timeout', `rspamd did not answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new RspamdUnavailable('timeout', `rspamd did not answer within ${timeoutMs} ms`)));
    req.on('error', (err) => {
      clearTimeout(deadline);
      reject(err instanceof RspamdUnavailable ? err : new RspamdUnavailable('unreachable', `rspamd at ${target.host}: ${err.message}`));
    });
    req.end(message);
  }
}

/** Node writes header values as latin1: this makes an internationalised address go out as its UTF-8 bytes. */
function utf8(value: string): string {
  return Buffer.from(value, 'utf8').toString('latin1');
}

function parseVerdict(status: number, text: string): RspamdVerdict {
  if (status !== 200) throw new RspamdUnavailable('bad-answer', `rspamd answered HTTP ${status}: ${text.slice(0, 200)}`);
  let body: { score?: unknown; required_score?: unknown; action?: unknown; symbols?: Record<string, { name?: string; score?: unknown }> };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new RspamdUnavailable('bad-answer', 'rspamd answered something that is not JSON');
  }
  if (typeof body.score !== 'number' || typeof body.action !== 'string') {
    throw new RspamdUnavailable('bad-answer', `rspamd answered without score or action: ${text.slice(0, 200)}`);
  }
  const symbols = Object.entries(body.symbols ?? {})
    .map(([name, s]) => ({ name, score: typeof s.score === 'number' ? s.score : 0 }))
    .sort((a, b) => b.score - a.score || a.name.localeCompare(b.name));
  const requiredScore = typeof body.required_score === 'number' ? body.required_score : undefined;
  return { score: body.score, ...(requiredScore !== undefined ? { requiredScore } : {}), action: body.action, symbols };
}
