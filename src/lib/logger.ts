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

// Percent-encoded bytes that end an unquoted local part in a URL: the separators and brackets around an address
// (`%2C` `,`, `%3B` `;`, `%3C`/`%3E` angle brackets, `%3A` `:`, `%2F` `/`, `%3F` `?`, `%26` `&`, `%3D` `=`) and `%40` itself.
const ENCODED_STOP = '40|2c|3b|3c|3e|3a|2f|3f|26|3d';
const LOCAL_PART = [
  '"(?:[^"\\\\\\r\\n]|\\\\.)*"', // "john doe"
  '"[^\\r\\n<>@:,=;()[\\]{}]*', // "john doe (badly quoted)
  '%22(?:(?!%22)[^\\s&?#/])*%22', // %22john%20doe%22 (quoted, percent-encoded)
  // jane, j%C3%BCrgen, jürgen, o'brien (URLs do not encode the apostrophe): starts only where a run of such
  // characters starts (the lookbehind), which keeps the scan linear; without it an 8 KB URL with no address took 300 ms.
  `(?<=^|[\\s/?&=<>",;:()[\\]{}@]|%(?:${ENCODED_STOP}|20|22|27|28|29|5b|5d|7b|7d|09|0a|0d))(?:[^\\s/?&=<>",;:()[\\]{}@%]|%(?!${ENCODED_STOP})[0-9a-f]{2}|%(?![0-9a-f]{2}))+`,
].join('|');
// A domain label: ASCII letters and digits, `-`, `_`, any non-ASCII character (IDN), or the percent-encoded bytes of
// a UTF-8 character (%80–%FF: never a separator, so `a%40x.org%2Cb%40y.org` stays two addresses).
const LABEL = '(?:[a-z0-9_\\u0080-\\uffff-]|%[89a-f][0-9a-f])+';
// A domain is dotted labels; or one label, or none (`…@…`), where the text after the `@` ends (end, space, separator):
// `""a@b"@dest.test"` is not taken for a mailbox at `b`.
const DOMAIN = `${LABEL}(?:\\.${LABEL})+|(?:${LABEL})?(?=$|[\\s&#,;>)\\]}]|%(?:2c|3b|3e|26|20))`;
// The lookbehind keeps a match from starting inside a percent escape (the `2Cb` of `%2Cb%40…`).
const ADDRESS = new RegExp(`(?<!%[0-9a-f]?)(${LOCAL_PART})(@|%40)(${DOMAIN})`, 'gi');

/**
 * `someone@example.org` → `…@example.org` in free text and in URLs (percent-encoded `%40` and IDN domains too:
 * `j%C3%BCrgen%40b%C3%BCcher.example` → `…%40b%C3%BCcher.example`, `jürgen@bücher.example` → `…@bücher.example`):
 * the domain stays, the mailbox goes; `…@…` when no domain follows the `@`. A quoted local part
 * (`"john doe"@example.org`, `%22john%20doe%22%40…`) goes as a whole, and so does a badly quoted one
 * (`"john doe@…`, `"a"b"@…`, refused but logged): from its first quote to the `@`, as long as no `:`, `,`, `=`, `;`,
 * bracket or angle bracket comes between (which would be the text around it). A stray quote earlier in the text
 * (`refused "x" for bob@…`) takes the words up to the address with it: too much goes, never too little.
 * Runs on every request log line: text without `@` or `%40` is returned without running the pattern.
 */
export function maskAddresses(text: string): string {
  if (text.indexOf('@') < 0 && text.indexOf('%40') < 0) return text;
  return text.replace(ADDRESS, (_m, _local: string, at: string, domain: string) => `…${at}${domain || '…'}`);
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
