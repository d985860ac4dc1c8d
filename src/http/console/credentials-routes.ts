/**
 * The console's credentials screen (admin sessions only): every credential with its role and secrets'
 * validity; create a runtime one, rotate it, revoke it (after a confirmation page). Each calls the same
 * CredentialAdmin function as `/v1/credentials` and is audited like it. A new secret (create, rotate) is
 * shown once, in the answer to the POST itself: it never travels in a URL and is not stored anywhere readable.
 * Because that answer cannot be a redirect, each create and rotate form carries a one-time token: a reload of the
 * answer page (which re-posts the form) or a second click changes nothing and says so, instead of rotating again,
 * which would end the secret just shown after its overlap (a re-posted create would meet its own name, taken).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type CredentialAdmin, type CredentialView, MAX_OVERLAP_SECONDS } from '../../admin/credentials.js';
import { KurirError } from '../../lib/errors.js';
import { isToken, randomToken } from '../../store/console-session-store.js';
import { ROLES, type Role } from '../../store/credential-store.js';
import { html, page, when, type Html } from './html.js';
import type { ConsoleOptions } from './options.js';

const NOTICES: Record<string, string> = { revoked: 'The credential is revoked: its secrets stop working on every gateway within seconds.' };

function send(request: FastifyRequest, reply: FastifyReply, content: Html, title = 'Credentials'): FastifyReply {
  const s = request.consoleSession!;
  return reply.type('text/html; charset=utf-8').send(page(title, content, { name: s.name, role: s.role, csrf: s.csrf }));
}

function secretShown(what: string, name: string, secret: string, extra = ''): Html {
  return html`<div class="notice" role="status"><p>${what} of <strong>${name}</strong>, shown this once: copy it now.</p>
<p><label for="secret">New secret</label><input id="secret" type="text" readonly value="${secret}" class="mono"></p>${extra ? html`<p>${extra}</p>` : ''}</div>`;
}

/** The hidden one-time token of a form that makes a new secret (see the module comment). */
const onceField = (): Html => html`<input type="hidden" name="form" value="${randomToken()}">`;

function createForm(csrf: string): Html {
  return html`<form method="post" action="/console/credentials/create"><fieldset><legend>Create a credential</legend>
<input type="hidden" name="csrf" value="${csrf}">${onceField()}
<label for="new-kind">Kind</label><select id="new-kind" name="kind"><option value="api-key">API key</option><option value="smtp-account">SMTP account (role send)</option></select>
<label for="new-name">Name</label><input id="new-name" name="name" type="text" required autocomplete="off" pattern="[A-Za-z0-9][A-Za-z0-9._@\\-]{0,63}">
<label for="new-role">Role</label><select id="new-role" name="role">${ROLES.map((r) => html`<option value="${r}">${r}</option>`)}</select>
<label for="new-domains">Sender domains (comma-separated; * for all)</label><input id="new-domains" name="domains" type="text" value="*" autocomplete="off">
<p><button type="submit">Create credential</button></p></fieldset></form>`;
}

function row(c: CredentialView, csrf: string): Html {
  const action =
    c.source === 'runtime'
      ? html`<form method="post" action="/console/credentials/rotate" class="inline"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="id" value="${c.id}">${onceField()}
<label for="overlap-${c.id}">Seconds the old secret of ${c.name} keeps working</label><input id="overlap-${c.id}" name="overlapSeconds" type="text" inputmode="numeric" value="3600">
<button type="submit">Rotate ${c.name}</button></form>
<p><a href="/console/credentials/revoke?id=${encodeURIComponent(c.id)}" class="danger">Revoke ${c.name}…</a></p>`
      : 'in the configuration file';
  return html`<tr><td data-label="Name">${c.name}</td><td data-label="Kind">${c.kind}</td><td data-label="Role">${c.role}</td><td data-label="Source">${c.source}</td>
<td data-label="Secrets valid until">${c.secrets ? c.secrets.map((s) => (s.notAfter ? when(s.notAfter) : 'until rotated')).join('; ') : '—'}</td>
<td data-label="Action">${action}</td></tr>`;
}

const field = (request: FastifyRequest, name: string): string => String((request.body as Record<string, unknown> | undefined)?.[name] ?? '').trim();

/** Registers the credentials screen on the console instance. */
export async function consoleCredentialRoutes(app: FastifyInstance, opts: ConsoleOptions): Promise<void> {
  const admin = (): CredentialAdmin => {
    if (!opts.credentialAdmin) throw new KurirError('NOT_FOUND', 'Credential management is not available on this gateway');
    return opts.credentialAdmin;
  };
  const list = async (request: FastifyRequest): Promise<Html> => {
    const csrf = request.consoleSession!.csrf;
    const all = await admin().list();
    return html`<table><thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Role</th><th scope="col">Source</th><th scope="col">Secrets valid until</th><th scope="col">Action</th></tr></thead><tbody>
${all.map((c) => row(c, csrf))}
</tbody></table>
${createForm(csrf)}`;
  };
  const by = (request: FastifyRequest): string => `${request.consoleSession!.kind}:${request.consoleSession!.name}`;
  /** Runs `action` once per form token; a repeat is a 409 that changed nothing. A failed action gives the token back. */
  const once = async <T>(request: FastifyRequest, action: () => Promise<T>): Promise<T> => {
    const token = field(request, 'form');
    if (!isToken(token)) {
      throw new KurirError('VALIDATION', 'form: this form is out of date; open the credentials page again and submit from there', { field: 'form' });
    }
    if (!(await opts.sessions.claimForm(token))) {
      throw new KurirError(
        'CONFLICT',
        'This form was already submitted (a reload of the answer page, or a second click), so nothing was changed now. A new secret is shown only once, in the answer to the first submit; if it is lost, rotate the credential again from the credentials page.',
        { field: 'form' },
      );
    }
    try {
      return await action();
    } catch (err) {
      await opts.sessions.releaseForm(token).catch(() => undefined);
      throw err;
    }
  };

  app.get<{ Querystring: { done?: string } }>('/console/credentials', { schema: { hide: true } }, async (request, reply) => {
    const notice =
      request.query.done && Object.hasOwn(NOTICES, request.query.done) ? html`<p class="notice" role="status">${NOTICES[request.query.done]}</p>` : '';
    return send(request, reply, html`${notice}${await list(request)}`);
  });

  app.post('/console/credentials/create', { schema: { hide: true } }, async (request, reply) => {
    const kind = field(request, 'kind');
    const role = field(request, 'role') || 'send';
    const domains = field(request, 'domains')
      .split(',')
      .map((d) => d.trim())
      .filter(Boolean);
    if (kind !== 'api-key' && kind !== 'smtp-account') throw new KurirError('VALIDATION', 'kind: api-key or smtp-account', { field: 'kind' });
    const created = await once(request, () =>
      admin().create({ kind, name: field(request, 'name'), role: role as Role, domains: domains.length ? domains : ['*'] }, by(request)),
    );
    request.auditDetail = { target: created.credential.id, after: created.credential };
    return send(
      request,
      reply,
      html`${secretShown(`Secret of the new ${created.credential.kind}`, created.credential.name, created.secret)}${await list(request)}`,
    );
  });

  app.post<{ Body: { id?: string; overlapSeconds?: string } }>('/console/credentials/rotate', { schema: { hide: true } }, async (request, reply) => {
    const id = field(request, 'id');
    const rawOverlap = String(request.body?.overlapSeconds ?? '3600').trim();
    const overlap = Number(rawOverlap);
    if (!/^[0-9]{1,8}$/.test(rawOverlap) || overlap > MAX_OVERLAP_SECONDS) {
      throw new KurirError('VALIDATION', `overlapSeconds: a whole number of seconds from 0 to ${MAX_OVERLAP_SECONDS}`, { field: 'overlapSeconds' });
    }
    const { before, after, secret } = await once(request, () => admin().rotate(id, overlap));
    request.auditDetail = { target: id, before, after };
    return send(
      request,
      reply,
      html`${secretShown('New secret', after.name, secret, `The old secret keeps working for ${overlap} seconds.`)}${await list(request)}`,
    );
  });

  // Revoking asks first: the GET shows what will stop working and the button that does it.
  app.get<{ Querystring: { id?: string } }>('/console/credentials/revoke', { schema: { hide: true } }, async (request, reply) => {
    const c = await admin().get(String(request.query.id ?? ''));
    if (c.source !== 'runtime') throw new KurirError('CONFLICT', `${c.name} is declared in the configuration file; change it there`, { field: 'id' });
    const content = html`<p class="error">Revoke <strong>${c.name}</strong> (${c.kind}, role ${c.role})? Every secret of it stops working on every gateway within seconds, and console sessions made with it end. This cannot be undone: a new credential gets a new secret.</p>
<form method="post" action="/console/credentials/revoke"><input type="hidden" name="csrf" value="${request.consoleSession!.csrf}"><input type="hidden" name="id" value="${c.id}"><input type="hidden" name="confirm" value="yes">
<p class="row"><button type="submit" class="danger">Revoke ${c.name} now</button> <a href="/console/credentials">Cancel, keep ${c.name}</a></p></form>`;
    return send(request, reply, content, `Revoke ${c.name}?`);
  });

  app.post('/console/credentials/revoke', { schema: { hide: true } }, async (request, reply) => {
    const id = field(request, 'id');
    if (field(request, 'confirm') !== 'yes') throw new KurirError('VALIDATION', 'confirm: revoke from the confirmation page', { field: 'confirm' });
    const { before } = await admin().revoke(id);
    request.auditDetail = { target: id, before };
    request.log.info({ id, by: request.consoleSession!.name, via: 'console' }, 'credential revoked');
    return reply.code(303).header('location', '/console/credentials?done=revoked').send();
  });
}
