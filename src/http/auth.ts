/**
 * Bearer API-key authentication. Runs as an `onRequest` hook, before the body is read, so a client
 * without a valid key never gets its body parsed or validated: 401 comes before 400, 413 and 415 (and
 * the error handler closes the connection instead of waiting for that body).
 *
 * Wrong keys are throttled per client IP through the `authThrottle` decorator (src/intake/auth-throttle.ts,
 * set by buildApp): each is answered after a short delay, and once the IP is blocked every request,
 * even with a valid key, gets 429 AUTH_BLOCKED with Retry-After.
 */
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { AuthThrottle } from '../intake/auth-throttle.js';
import type { Credential, CredentialRegistry } from '../intake/credentials.js';
import { KurirError } from '../lib/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key's credential once `authenticate` ran; null on unauthenticated routes. */
    credential: Credential | null;
  }
  interface FastifyInstance {
    /** Failed-key throttling for `authenticate`; null turns it off (an app built without one). */
    authThrottle: AuthThrottle | null;
  }
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

/** Adds the `credential` request property (call once on the instance that carries authenticated routes). */
export function decorateCredential(app: FastifyInstance): void {
  if (!app.hasRequestDecorator('credential')) app.decorateRequest('credential', null);
}

/** Adds the `authThrottle` instance property (call once on the root instance; children inherit it). */
export function decorateAuthThrottle(app: FastifyInstance, throttle: AuthThrottle | null): void {
  if (!app.hasDecorator('authThrottle')) app.decorate('authThrottle', throttle);
}

/**
 * An `onRequest` hook resolving the Bearer key to its credential: missing → 401 AUTH_REQUIRED,
 * unknown → 401 AUTH_FAILED (both with `WWW-Authenticate: Bearer`, set by the error handler), client
 * IP blocked after repeated unknown keys → 429 AUTH_BLOCKED with Retry-After, whatever the key.
 */
export function authenticate(credentials: CredentialRegistry): onRequestHookHandler {
  return async function authenticateHook(request: FastifyRequest): Promise<void> {
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
  };
}

/** The credential of an authenticated request; a route without the hook is a bug, reported as 401. */
export function credentialOf(request: FastifyRequest): Credential {
  if (!request.credential) throw new KurirError('AUTH_REQUIRED');
  return request.credential;
}

/**
 * An `onRequest` hook (after `authenticate`) admitting admin credentials only: others get 403 FORBIDDEN
 * before their body is read.
 */
export async function requireAdmin(request: FastifyRequest): Promise<void> {
  if (!credentialOf(request).admin) throw new KurirError('FORBIDDEN', 'This endpoint needs an admin API key');
}
