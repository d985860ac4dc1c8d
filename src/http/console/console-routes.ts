/**
 * The web console at `/console` (docs/console.md): server-rendered HTML, plain forms and full page loads,
 * no script. Login takes a `support` or `admin` API key, checked with the API's credential registry and
 * failed-key throttle; the session lives in Redis behind an HttpOnly, SameSite=Strict cookie. Access per
 * route: src/http/console/session.ts. Console actions are audited like the API's: every request of a
 * support session, every POST of an admin session.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { roleOf } from '../../intake/credentials.js';
import { KurirError, toKurirError } from '../../lib/errors.js';
import { randomToken } from '../../store/console-session-store.js';
import { consoleAdminRoutes } from './admin-routes.js';
import { consoleCredentialRoutes } from './credentials-routes.js';
import { consoleDoctorRoutes } from './doctor-page.js';
import { html, page } from './html.js';
import type { ConsoleOptions } from './options.js';
import { auditReadOf, recordAudit } from '../audit-trail.js';
import { CONSOLE_ACCESS, LOGIN_COOKIE, SESSION_COOKIE, cookieHeader, cookies, csrfCheck, sameToken, sessionGuard } from './session.js';
import { CONSOLE_CSS } from './styles.js';
import { consoleSupportRoutes } from './support-routes.js';

export type { ConsoleOptions } from './options.js';

const FORM_BODY_LIMIT = 16 * 1024;

/** The status and sentence of an error page. */
function errorPage(err: unknown): { status: number; text: string; retryAfter?: number } {
  const e = err instanceof KurirError ? err : (err as { statusCode?: number }).statusCode ? null : toKurirError(err);
  if (!e) {
    const status = (err as { statusCode: number }).statusCode;
    return { status, text: status === 413 ? 'The form is too large.' : 'The request was not understood.' };
  }
  return { status: e.httpStatus, text: e.message, retryAfter: e.retryAfterSeconds };
}

function loginForm(request: FastifyRequest, reply: FastifyReply, error: string | null, status: number): FastifyReply {
  const token = randomToken();
  reply.header('set-cookie', cookieHeader(request, LOGIN_COOKIE, token, 600));
  const body = html`${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/console/login">
  <input type="hidden" name="login" value="${token}">
  <label for="key">API key (role support or admin)</label>
  <input id="key" name="key" type="password" autocomplete="current-password" required>
  <p><button type="submit">Log in</button></p>
</form>
<p>The key is checked like an API request and is not stored: the session ends after a period without use, or with Log out.</p>`;
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .send(page('Log in', body, null));
}

/** Registers the console (outside the API key scopes: it has its own session access, see session.ts). */
export const consoleRoutes: FastifyPluginAsync<ConsoleOptions> = async (app: FastifyInstance, opts) => {
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method === 'HEAD') continue;
      if (!(`${method} ${route.url}` in CONSOLE_ACCESS)) throw new Error(`console route ${method} ${route.url} has no entry in CONSOLE_ACCESS`);
    }
  });
  app.decorateRequest('consoleSession', null);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });
  app.addHook('onRequest', sessionGuard(opts));
  app.addHook('preHandler', csrfCheck);
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('cache-control', 'no-store');
    reply.header('x-frame-options', 'DENY');
    reply.header(
      'content-security-policy',
      "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    reply.header('referrer-policy', 'same-origin');
    return payload;
  });
  app.addHook('onResponse', async (request, reply) => {
    const session = request.consoleSession;
    if (!session || !request.server.audit) return;
    // An admin's page views are audited when they showed personal data: a route marked auditRead whose handler
    // named what it read (a search, the suppression on the removal page); the bare search form shows none.
    if (session.role === 'admin' && request.method === 'GET' && !(auditReadOf(request) && request.auditDetail)) return;
    await recordAudit(request, { actor: `${session.kind}:${session.name}`, role: session.role }, reply.statusCode, false);
  });
  app.setErrorHandler(async (err, request, reply) => {
    const { status, text, retryAfter } = errorPage(err);
    if (status >= 500) request.log.error({ err, component: 'console' }, 'console: request failed');
    if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
    const session = request.consoleSession;
    const user = session ? { name: session.name, role: session.role, csrf: session.csrf } : null;
    const back = session ? html`<p><a href="/console">Back to the console</a></p>` : html`<p><a href="/console/login">Log in</a></p>`;
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(page(status === 403 ? 'Not allowed' : 'Error', html`<p class="error" role="alert">${text}</p>${back}`, user));
  });

  app.get('/console/console.css', { schema: { hide: true } }, async (_request, reply) => reply.type('text/css; charset=utf-8').send(CONSOLE_CSS));

  app.get('/console/login', { schema: { hide: true } }, async (request, reply) => loginForm(request, reply, null, 200));

  app.post<{ Body: { key?: string; login?: string } }>('/console/login', { schema: { hide: true } }, async (request, reply) => {
    const body = request.body ?? {};
    const expected = cookies(request)[LOGIN_COOKIE];
    if (!expected || !sameToken(body.login, expected)) return loginForm(request, reply, 'The login form expired: please try again.', 403);
    const key = typeof body.key === 'string' ? body.key.trim() : '';
    if (!key) return loginForm(request, reply, 'Enter an API key.', 400);
    const throttle = request.server.authThrottle;
    const attempt = { iface: 'http' as const, ip: request.ip };
    try {
      await throttle?.check(attempt);
    } catch (err) {
      const e = toKurirError(err);
      if (e.retryAfterSeconds !== undefined) reply.header('retry-after', String(e.retryAfterSeconds));
      return loginForm(request, reply, e.message, e.httpStatus);
    }
    const credential = await opts.credentials.resolveApiKey(key, opts.clock.now());
    if (!credential) {
      const e = throttle ? await throttle.fail({ ...attempt, reason: 'unknown-key' }) : new KurirError('AUTH_FAILED');
      if (e.retryAfterSeconds !== undefined) reply.header('retry-after', String(e.retryAfterSeconds));
      return loginForm(request, reply, e.code === 'AUTH_FAILED' ? 'Unknown API key.' : e.message, e.httpStatus);
    }
    const role = roleOf(credential);
    if (role !== 'support' && role !== 'admin')
      return loginForm(request, reply, `This key has the role ${role}; the console needs a support or admin key.`, 403);
    const { id, session } = await opts.sessions.create({
      kind: credential.kind,
      name: credential.name,
      ...(credential.id ? { credentialId: credential.id } : {}),
      role,
      createdAt: opts.clock.now(),
    });
    request.consoleSession = session;
    reply.header('set-cookie', [cookieHeader(request, SESSION_COOKIE, id, null), cookieHeader(request, LOGIN_COOKIE, '', 0)]);
    return reply.code(303).header('location', '/console').send();
  });

  app.post('/console/logout', { schema: { hide: true } }, async (request, reply) => {
    const id = cookies(request)[SESSION_COOKIE];
    if (id) await opts.sessions.end(id);
    reply.header('set-cookie', cookieHeader(request, SESSION_COOKIE, '', 0));
    return reply.code(303).header('location', '/console/login').send();
  });

  await consoleSupportRoutes(app, opts);
  await consoleAdminRoutes(app, opts);
  await consoleCredentialRoutes(app, opts);
  await consoleDoctorRoutes(app, opts);
};
