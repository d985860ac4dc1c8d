/**
 * Who may call a route is decided by the scope it is registered in, once per scope: each scope is a
 * fastify plugin with one `onRequest` hook that authenticates and authorizes every route registered
 * inside it, so a route cannot forget its check and no route carries an auth hook of its own.
 *
 * - {@link publicScope}: no credential (health, readiness; ESP notifications, which prove themselves by
 *   the provider's signature in their handlers);
 * - {@link metricsScope}: the metrics token (`metrics.token`), when one is configured;
 * - {@link sendScope}: keys of role `send` or `admin` (submit, webhooks, confirmations);
 * - {@link readScope}: keys of role `send`, `support` or `admin` (read a message: its own for `send`);
 * - {@link supportScope}: keys of role `support` or `admin` (message search, suppression look-up and removal);
 * - {@link adminScope}: keys of role `admin` (config `admin: true`).
 * The web console (`/console`, src/http/console/) is outside these scopes: browsers carry a session cookie,
 * not a key; its own hook enforces CONSOLE_ACCESS (src/http/console/session.ts).
 * A key of another role gets 403 FORBIDDEN. Roles: src/store/credential-store.ts; config credentials are
 * `admin` with `admin: true`, else `send`.
 *
 * Audit (src/store/audit-store.ts, written through src/http/audit-trail.ts): every request in the support
 * scope; in the admin scope every request other than GET, and the GETs of routes marked `auditRead` (they
 * return recipient addresses); in the read scope the reads by `support` and `admin` keys (a `send` key reading
 * its own messages is not audited). Each is appended once answered (who, role, client IP, action, target,
 * status, and the `before` / `after` a handler sets in `request.auditDetail`).
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
import { roleOf, type Credential, type CredentialRegistry } from '../intake/credentials.js';
import { KurirError } from '../lib/errors.js';
import type { Role } from '../store/credential-store.js';
import { auditReadOf, recordAudit } from './audit-trail.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key's credential in the key scopes; null elsewhere. */
    credential: Credential | null;
  }
  interface FastifyInstance {
    /** Failed-key throttling for the key scopes; null turns it off (an app built without one). */
    authThrottle: AuthThrottle | null;
  }
}

/** The access scopes; every route of the API is registered in exactly one. */
export const SCOPES = ['public', 'metrics', 'send', 'read', 'support', 'admin'] as const;
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

/** Adds the `authThrottle` and `audit` instance properties (call once on the root instance; children inherit them). */
export function decorateAuth(app: FastifyInstance, throttle: AuthThrottle | null, audit: FastifyInstance['audit'] = null): void {
  if (!app.hasDecorator('authThrottle')) app.decorate('authThrottle', throttle);
  if (!app.hasDecorator('audit')) app.decorate('audit', audit);
  if (!app.hasRequestDecorator('credential')) app.decorateRequest('credential', null);
  if (!app.hasRequestDecorator('auditDetail')) app.decorateRequest('auditDetail', null);
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
  const credential = await credentials.resolveApiKey(token);
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

/** Which requests of a scope go to the audit log. */
type AuditRule = (request: FastifyRequest, credential: Credential) => boolean;

/** A scope plugin: its one `onRequest` hook (if any), the audit hook (if any), then its routes, which all inherit them. */
function scope<O extends ScopeOptions>(name: Scope, hook: (opts: O) => onRequestHookHandler | null, audited?: AuditRule): FastifyPluginAsync<O> {
  const plugin: FastifyPluginAsync<O> = async (app, opts) => {
    const onRequest = hook(opts);
    if (onRequest) app.addHook('onRequest', onRequest);
    if (audited) {
      app.addHook('onResponse', async (request, reply) => {
        const credential = request.credential;
        if (!credential || !request.server.audit || !audited(request, credential)) return;
        await recordAudit(request, { actor: `${credential.kind}:${credential.name}`, role: roleOf(credential) }, reply.statusCode);
      });
    }
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

type KeyScopeOptions = ScopeOptions & { credentials: CredentialRegistry };

/** The hook of a key scope: authenticate, then 403 FORBIDDEN unless the key's role is one of `roles`. */
function requireRole(roles: readonly Role[], what: string): (opts: KeyScopeOptions) => onRequestHookHandler {
  return ({ credentials }) =>
    async (request) => {
      const credential = await authenticate(request, credentials);
      if (!roles.includes(roleOf(credential))) throw new KurirError('FORBIDDEN', `This endpoint needs ${what}`);
    };
}

/** Submission, webhooks and confirmations: `send` and `admin` keys. */
export const sendScope = scope<KeyScopeOptions>('send', requireRole(['send', 'admin'], 'a send or admin API key'));

/** Reading a message: `send` keys (their own), `support` and `admin` keys (all); support and admin reads are audited. */
export const readScope = scope<KeyScopeOptions>(
  'read',
  requireRole(['send', 'support', 'admin'], 'an API key'),
  (request, credential) => roleOf(credential) !== 'send' && auditReadOf(request) !== null,
);

/** Support work (message search, suppression look-up and removal): `support` and `admin` keys; every request audited. */
export const supportScope = scope<KeyScopeOptions>('support', requireRole(['support', 'admin'], 'a support or admin API key'), () => true);

/** Administration: `admin` keys only; every request but GET audited, and the GETs that return personal data (`auditRead`). */
export const adminScope = scope<KeyScopeOptions>(
  'admin',
  requireRole(['admin'], 'an admin API key'),
  (request) => request.method !== 'GET' || auditReadOf(request) !== null,
);
