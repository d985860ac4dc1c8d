import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** What a redacted value is logged as. */
export const LOG_REDACTED = '[redacted]';

/**
 * Log fields whose values are never written, wherever a log line puts them (top level or one object
 * down): credentials (Authorization headers, passwords, API keys, tokens, secrets, signing and private
 * keys) and message content (raw messages, bodies, text and HTML parts, attachments).
 */
export const REDACT_PATHS: readonly string[] = [
  'authorization',
  'cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  ...['password', 'pass', 'apiKey', 'token', 'secret', 'signingKey', 'privateKey', 'verpSecret'].flatMap((f) => [f, `*.${f}`]),
  ...['raw', 'body', 'text', 'html', 'attachments'].flatMap((f) => [f, `*.${f}`]),
];

/**
 * `someone@example.org` → `…@example.org` in free text (URL-encoded `%40` too): the domain stays, the mailbox goes.
 * A quoted local part (`"john doe"@example.org`, accepted since 1 Dec 2026 over SMTP too) goes as a whole, and so
 * does a badly quoted one (`"john doe@…`, `"a"b"@…`, refused but logged): from its first quote to the `@`, as long
 * as no `:`, `,`, `=`, `;`, bracket or angle bracket comes between (which would be the text around it). A stray
 * quote earlier in the text (`refused "x" for bob@…`) takes the words up to the address with it: too much goes,
 * never too little.
 */
export function maskAddresses(text: string): string {
  return text.replace(/("(?:[^"\\\r\n]|\\.)*"|"[^\r\n<>@:,=;()[\]{}]*|[^\s/?&=<>"',;:()[\]{}@%]+)(@|%40)([a-z0-9.-]+\.[a-z]{2,63})/gi, '…$2$3');
}

interface RequestLike {
  method?: string;
  url?: string;
  ip?: string;
  host?: string;
  socket?: { remoteAddress?: string; remotePort?: number };
}

/**
 * The `req` of fastify's request lines: method, URL with addresses masked (a raw submission's `?to=`,
 * `/v1/suppressions/<address>`), client address. Headers are not logged.
 */
export function serializeRequest(req: RequestLike): Record<string, unknown> {
  return {
    method: req.method,
    url: req.url === undefined ? undefined : maskAddresses(req.url),
    host: req.host,
    remoteAddress: req.ip ?? req.socket?.remoteAddress,
    remotePort: req.socket?.remotePort,
  };
}

/**
 * The process logger: JSON lines on stdout (or `destination`), secrets and message content redacted
 * (see {@link REDACT_PATHS}); `silent` for tests. `npm start` pretty-prints it on a terminal
 * (scripts/start.mjs).
 */
export function createLogger(opts: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  const options = {
    name: opts.name ?? 'kurir',
    level: opts.level ?? 'info',
    redact: { paths: [...REDACT_PATHS], censor: LOG_REDACTED },
    serializers: { req: serializeRequest },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
