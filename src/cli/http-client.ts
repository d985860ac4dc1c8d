/**
 * The CLI's client of the admin API: one request at a time with the admin key, answers and failures
 * turned into the CLI's exit codes (docs/cli.md): 1 the gateway refused or failed, 3 it could not be
 * reached, 4 the key was refused.
 */
import { CliError, EXIT } from './errors.js';

export interface ApiTarget {
  /** Base URL of the gateway's HTTP API, e.g. https://kurir.example.net:8025 */
  url: string;
  key: string;
  timeoutMs?: number;
}

export interface ApiAnswer {
  status: number;
  /** Parsed JSON, or the text of a non-JSON answer (CSV, JSON lines). */
  body: unknown;
}

/** The `error` of a Kurir error answer, as one line: `404 NOT_FOUND: message 123 not found (field id)`. */
function describeError(status: number, body: unknown): string {
  const e = (body as { error?: { code?: string; message?: string; field?: string; details?: { errors?: Array<{ line: number; message: string }> } } })?.error;
  if (!e) return `HTTP ${status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`;
  const lines = [`${status} ${e.code ?? ''}: ${e.message ?? ''}${e.field ? ` (field ${e.field})` : ''}`];
  for (const x of e.details?.errors ?? []) lines.push(`  line ${x.line}: ${x.message}`);
  return lines.join('\n');
}

/** The CLI's HTTP client of one gateway's admin API: authenticated requests under the target URL's path, failures mapped to CliError exit codes. */
export class AdminClient {
  constructor(private readonly target: ApiTarget) {}

  /**
   * Sends one request; answers 2xx answers, throws CliError otherwise.
   * @throws CliError with EXIT.unreachable, EXIT.auth or EXIT.server.
   */
  async request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiAnswer> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.target.key}`, accept: 'application/json' };
    let payload: string | undefined;
    if (body !== undefined) {
      headers['content-type'] = contentType;
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    // Under the URL's own path (a proxy serving Kurir at /kurir/), not at the host's root: `new URL('/v1/…', base)` drops it.
    const base = new URL(this.target.url);
    const url = new URL(`${base.pathname.replace(/\/+$/, '')}${path}`, base.origin).toString();
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: payload, signal: AbortSignal.timeout(this.target.timeoutMs ?? 15_000) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new CliError(`cannot reach the gateway at ${this.target.url}: ${why}`, EXIT.unreachable);
    }
    const text = await res.text();
    const parsed: unknown = (res.headers.get('content-type') ?? '').startsWith('application/json') && text ? JSON.parse(text) : text;
    if (res.ok) return { status: res.status, body: parsed };
    const code = (parsed as { error?: { code?: string } })?.error?.code;
    const auth = res.status === 401 || res.status === 403 || code === 'AUTH_BLOCKED';
    throw new CliError(describeError(res.status, parsed), auth ? EXIT.auth : EXIT.server, res.status);
  }

  /** GETs `path`; answers the response body (parsed JSON or text). */
  async get<T>(path: string): Promise<T> {
    return (await this.request('GET', path)).body as T;
  }

  /** POSTs `body` as JSON to `path`; answers the response body (parsed JSON or text). */
  async post<T>(path: string, body: unknown = {}): Promise<T> {
    return (await this.request('POST', path, body)).body as T;
  }
}
