/**
 * Who may call a route is decided by the scope it is registered in, once per scope: each scope is a
 * fastify plugin with one `onRequest` hook that authenticates and authorizes every route registered
 * inside it, so a route cannot forget its check and no route carries an auth hook of its own.
 *
 * - {@link publicScope}: no credential (health, readiness; ESP notifications, which prove themselves by
 *   the provider's signature in their handlers);
 * - {@link metricsScope}: the metrics token (`metrics.token`), when one is configured;
 * - {@link sendScope}: any API key;
 * - {@link adminScope}: an admin API key (`apiKeys[].admin`); other keys get 403 FORBIDDEN.
 *
 * The hooks run before the body is read, so a client without a valid key never gets its body parsed
 * or validated: 401 comes before 400, 413 and 415 (and the error handler closes the connection instead
 * of waiting for that body). Route-level `onRequest` hooks (the intake admission on POST /v1/messages)
 * run after the scope's.
 *
 * Wrong keys are throttled per client IP through the `authThrottle` decorator (src/intake/auth-throttle.ts,
 * set by buildApp): each is answered after a short delay, and once the IP is blocked every request,
 * even with a valid key, gets 429 AUTH_BLOCKED with Retry-After.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { AuthThrottle } from '../intake/auth-throttle.js';
import type { Credential, CredentialRegistry } from '../intake/credentials.js';
import { KurirError } from '../lib/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key's credential in the send and admin scopes; null elsewhere. */
    credential: Credential | null;
  }
  interface FastifyInstance {
    /** Failed-key throttling for the key scopes; null turns it off (an app built without one). */
    authThrottle: AuthThrottle | null;
  }
}

/** The access scopes; every route of the API is registered in exactly one. */
export const SCOPES = ['public', 'metrics', 'send', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What every scope plugin is given: the routes to register inside it. */
export interface ScopeOptions {
  /** Registers the scope's routes (plugins or single routes) on the scoped instance. */
  routes: (scoped: FastifyInstance) => Promise<void>;
}

/**
 * The token of an `Authorization: Bearer <token>` header. Throws AUTH_REQUIRED when the header is
 * missing or uses another scheme.
 */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') {
    throw new KurirError('AUTH_REQUIRED', 'Authorization: Bearer <api key> is required');
  }
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!m) throw new KurirError('AUTH_REQUIRED', 'Authorization must use the Bearer scheme: Bearer <api key>');
  return m[1];
}

/** Adds the `authThrottle` instance property (call once on the root instance; children inherit it). */
export function decorateAuthThrottle(app: FastifyInstance, throttle: AuthThrottle | null): void {
  if (!app.hasDecorator('authThrottle')) app.decorate('authThrottle', throttle);
  if (!app.hasRequestDecorator('credential')) app.decorateRequest('credential', null);
}

/**
 * Resolves the Bearer key to its credential: missing → 401 AUTH_REQUIRED, unknown → 401 AUTH_FAILED
 * (both with `WWW-Authenticate: Bearer`, set by the error handler), client IP blocked after repeated
 * unknown keys → 429 AUTH_BLOCKED with Retry-After, whatever the key.
 */
async function authenticate(request: FastifyRequest, credentials: CredentialRegistry): Promise<Credential> {
  const token = bearerToken(request.headers.authorization);
  const throttle = request.server.authThrottle ?? null;
  const attempt = { iface: 'http' as const, ip: request.ip };
  await throttle?.check(attempt);
  const credential = credentials.byApiKey(token);
  if (!credential) {
    if (!throttle) throw new KurirError('AUTH_FAILED', 'Unknown API key');
    const err = await throttle.fail({ ...attempt, reason: 'unknown-key' });
    throw err.code === 'AUTH_FAILED' ? new KurirError('AUTH_FAILED', 'Unknown API key') : err;
  }
  request.credential = credential;
  return credential;
}

/** The credential of a request in the send or admin scope; a route outside them asking is a bug, reported as 401. */
export function credentialOf(request: FastifyRequest): Credential {
  if (!request.credential) throw new KurirError('AUTH_REQUIRED');
  return request.credential;
}

/** Whether an Authorization header carries the metrics token (constant time); any header when there is no token. */
export function metricsAuthorized(header: string | undefined, token: string | null): boolean {
  if (token === null) return true;
  const given = Buffer.from(header ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A scope plugin: its one `onRequest` hook (if any), then its routes, which all inherit the hook. */
function scope<O extends ScopeOptions>(name: Scope, hook: (opts: O) => onRequestHookHandler | null): FastifyPluginAsync<O> {
  const plugin: FastifyPluginAsync<O> = async (app, opts) => {
    const onRequest = hook(opts);
    if (onRequest) app.addHook('onRequest', onRequest);
    await opts.routes(app);
  };
  Object.defineProperty(plugin, 'name', { value: `${name}Scope` });
  return plugin;
}

/** Routes anyone may call (their handlers verify what they need, e.g. an ESP signature). */
export const publicScope = scope<ScopeOptions>('public', () => null);

/** `/metrics`: the Bearer metrics token when `metrics.token` is set (401 AUTH_REQUIRED otherwise), open without one. */
export const metricsScope = scope<ScopeOptions & { token: string | null }>('metrics', ({ token }) =>
  token === null
    ? null
    : async (request) => {
        if (!metricsAuthorized(request.headers.authorization, token)) throw new KurirError('AUTH_REQUIRED', 'Bearer token required for /metrics');
      },
);

/** Routes for any API key. */
export const sendScope = scope<ScopeOptions & { credentials: CredentialRegistry }>('send', ({ credentials }) => async (request) => {
  await authenticate(request, credentials);
});

/** Routes for admin API keys only; other keys get 403 FORBIDDEN before their body is read. */
export const adminScope = scope<ScopeOptions & { credentials: CredentialRegistry }>('admin', ({ credentials }) => async (request) => {
  const credential = await authenticate(request, credentials);
  if (!credential.admin) throw new KurirError('FORBIDDEN', 'This endpoint needs an admin API key');
});
