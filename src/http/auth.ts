/**
 * Bearer API-key authentication. Runs as an `onRequest` hook, before the body is read, so a client
 * without a valid key never gets its body parsed or validated: 401 comes before 400, 413 and 415.
 */
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Credential, CredentialRegistry } from '../intake/credentials.js';
import { KurirError } from '../lib/errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The API key's credential once `authenticate` ran; null on unauthenticated routes. */
    credential: Credential | null;
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

/**
 * An `onRequest` hook resolving the Bearer key to its credential: missing → 401 AUTH_REQUIRED,
 * unknown → 401 AUTH_FAILED (both with `WWW-Authenticate: Bearer`, set by the error handler).
 */
export function authenticate(credentials: CredentialRegistry): onRequestHookHandler {
  return async function authenticateHook(request: FastifyRequest): Promise<void> {
    const token = bearerToken(request.headers.authorization);
    const credential = credentials.byApiKey(token);
    if (!credential) throw new KurirError('AUTH_FAILED', 'Unknown API key');
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
