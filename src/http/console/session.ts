/**
 * The console's own access control, separate from the API key scopes (src/http/auth.ts) because a browser
 * carries a session cookie, not a Bearer key: every `/console` route is listed in {@link CONSOLE_ACCESS}
 * with who may use it, and one `onRequest` hook enforces it (a route missing from the table refuses to
 * register). State-changing POSTs carry the session's CSRF token in a hidden field, checked in a
 * `preHandler` hook once the form is parsed.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CredentialAdmin } from '../../admin/credentials.js';
import { roleOf, type CredentialRegistry } from '../../intake/credentials.js';
import { KurirError } from '../../lib/errors.js';
import type { ConsoleSession, ConsoleSessionStore } from '../../store/console-session-store.js';

/** Who may use a console route: `open` (login page, style sheet), `session` (support or admin), `admin`. */
export type ConsoleAccess = 'open' | 'session' | 'admin';

/** Every console route and who may use it; tests/integration/console-access.test.ts checks each for each role. */
export const CONSOLE_ACCESS: Record<string, ConsoleAccess> = {
  'GET /console/console.css': 'open',
  'GET /console/login': 'open',
  'POST /console/login': 'open',
  'POST /console/logout': 'session',
  'GET /console': 'session',
  'GET /console/suppressions/remove': 'session',
  'POST /console/suppressions/remove': 'session',
  'GET /console/incidents': 'admin',
  'GET /console/domains': 'admin',
  'POST /console/domains/verify': 'admin',
  'POST /console/domains/rotate': 'admin',
  'GET /console/domains/doctor': 'admin',
  'GET /console/providers': 'admin',
  'POST /console/providers/pause': 'admin',
  'POST /console/providers/resume': 'admin',
  'GET /console/credentials': 'admin',
  'POST /console/credentials/rotate': 'admin',
  'POST /console/credentials/create': 'admin',
  'GET /console/credentials/revoke': 'admin',
  'POST /console/credentials/revoke': 'admin',
};

export const SESSION_COOKIE = 'kurir_console';
/** Login CSRF: a random value in a cookie and in the login form, which must match (double submit). */
export const LOGIN_COOKIE = 'kurir_console_login';

declare module 'fastify' {
  interface FastifyRequest {
    /** The console session of a request to a `session` or `admin` console route; null elsewhere. */
    consoleSession: ConsoleSession | null;
  }
}

/** The cookies of a request by name (first occurrence wins). */
export function cookies(request: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of String(request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name && !(name in out)) out[name] = part.slice(eq + 1).trim();
  }
  return out;
}

/** A Set-Cookie value: HttpOnly, SameSite=Strict, path /console, Secure when the request came over TLS. */
export function cookieHeader(request: FastifyRequest, name: string, value: string, maxAgeSeconds: number | null): string {
  const parts = [`${name}=${value}`, 'Path=/console', 'HttpOnly', 'SameSite=Strict'];
  if (maxAgeSeconds !== null) parts.push(`Max-Age=${maxAgeSeconds}`);
  if (request.protocol === 'https') parts.push('Secure');
  return parts.join('; ');
}

/** Constant-time comparison of two tokens. */
export function sameToken(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface SessionGuardDeps {
  sessions: ConsoleSessionStore;
  credentials: CredentialRegistry;
  credentialAdmin?: CredentialAdmin;
}

/**
 * Whether the credential behind a session still exists with a console role: a revoked runtime key, or a
 * config key removed or demoted, ends every session made with it at the next request.
 */
async function stillValid(session: ConsoleSession, deps: SessionGuardDeps): Promise<boolean> {
  if (session.credentialId) {
    if (!deps.credentialAdmin) return false;
    const view = await deps.credentialAdmin.get(session.credentialId).catch(() => null);
    return view !== null && view.role === session.role;
  }
  const cred = deps.credentials.configCredentials().find((c) => c.kind === session.kind && c.name === session.name);
  return cred !== undefined && roleOf(cred) === session.role;
}

/** The access key of a request: `METHOD /route` as registered. */
export function routeKey(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`;
}

/**
 * The console's onRequest hook: open routes pass; others need a live session (GET without one is sent to
 * the login page, anything else is 401), admin routes need an admin session (403).
 */
export function sessionGuard(deps: SessionGuardDeps) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const access = CONSOLE_ACCESS[routeKey(request)];
    if (access === undefined || access === 'open') return;
    const id = cookies(request)[SESSION_COOKIE];
    let session = id ? await deps.sessions.touch(id) : null;
    if (session && !(await stillValid(session, deps))) {
      await deps.sessions.end(id!);
      session = null;
    }
    if (!session) {
      if (request.method === 'GET') {
        await reply.code(303).header('location', '/console/login').send();
        return;
      }
      throw new KurirError('AUTH_REQUIRED', 'Your console session has ended: log in again');
    }
    request.consoleSession = session;
    if (access === 'admin' && session.role !== 'admin') throw new KurirError('FORBIDDEN', 'This page needs an admin login');
  };
}

/** The preHandler of state-changing console routes: the form's `csrf` field must be the session's token (403 otherwise). */
export async function csrfCheck(request: FastifyRequest): Promise<void> {
  const session = request.consoleSession;
  if (request.method !== 'POST' || !session) return;
  const body = (request.body ?? {}) as Record<string, unknown>;
  if (!sameToken(body.csrf, session.csrf)) throw new KurirError('FORBIDDEN', 'The form is missing its security token (CSRF): reload the page and try again');
}
