/**
 * The console's credentials screen (admin sessions only): every credential with its role and secrets'
 * validity, and a rotate button for runtime ones. Rotation calls the same function as
 * `POST /v1/credentials/:id/rotate` (default overlap 3600 s) and shows the new secret once, in the answer
 * to the POST itself: it never travels in a URL and is not stored anywhere readable.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MAX_OVERLAP_SECONDS } from '../../admin/credentials.js';
import { KurirError } from '../../lib/errors.js';
import { html, page, when, type Html } from './html.js';
import type { ConsoleOptions } from './options.js';

function send(request: FastifyRequest, reply: FastifyReply, content: Html): FastifyReply {
  const s = request.consoleSession!;
  return reply.type('text/html; charset=utf-8').send(page('Credentials', content, { name: s.name, role: s.role, csrf: s.csrf }));
}

/** Registers the credentials screen on the console instance. */
export async function consoleCredentialRoutes(app: FastifyInstance, opts: ConsoleOptions): Promise<void> {
  const list = async (request: FastifyRequest): Promise<Html> => {
    if (!opts.credentialAdmin) throw new KurirError('NOT_FOUND', 'Credential management is not available on this gateway');
    const csrf = request.consoleSession!.csrf;
    const all = await opts.credentialAdmin.list();
    return html`<table><thead><tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Role</th><th scope="col">Source</th><th scope="col">Secrets valid until</th><th scope="col">Action</th></tr></thead><tbody>
${all.map(
  (
    c,
  ) => html`<tr><td data-label="Name">${c.name}</td><td data-label="Kind">${c.kind}</td><td data-label="Role">${c.role}</td><td data-label="Source">${c.source}</td>
<td data-label="Secrets valid until">${c.secrets ? c.secrets.map((s) => (s.notAfter ? when(s.notAfter) : 'until rotated')).join('; ') : '—'}</td>
<td data-label="Action">${
    c.source === 'runtime'
      ? html`<form method="post" action="/console/credentials/rotate" class="inline"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="id" value="${c.id}">
<label for="overlap-${c.id}">Seconds the old secret of ${c.name} keeps working</label><input id="overlap-${c.id}" name="overlapSeconds" type="text" inputmode="numeric" value="3600">
<button type="submit">Rotate ${c.name}</button></form>`
      : 'in the configuration file'
  }</td></tr>`,
)}
</tbody></table>`;
  };

  app.get('/console/credentials', { schema: { hide: true } }, async (request, reply) => send(request, reply, await list(request)));

  app.post<{ Body: { id?: string; overlapSeconds?: string } }>('/console/credentials/rotate', { schema: { hide: true } }, async (request, reply) => {
    if (!opts.credentialAdmin) throw new KurirError('NOT_FOUND', 'Credential management is not available on this gateway');
    const id = String(request.body?.id ?? '');
    const rawOverlap = String(request.body?.overlapSeconds ?? '3600').trim();
    const overlap = Number(rawOverlap);
    if (!/^[0-9]{1,8}$/.test(rawOverlap) || overlap > MAX_OVERLAP_SECONDS) {
      throw new KurirError('VALIDATION', `overlapSeconds: a whole number of seconds from 0 to ${MAX_OVERLAP_SECONDS}`, { field: 'overlapSeconds' });
    }
    const { before, after, secret } = await opts.credentialAdmin.rotate(id, overlap);
    request.auditDetail = { target: id, before, after };
    const shown = html`<div class="notice" role="status"><p>New secret of <strong>${after.name}</strong>, shown this once: copy it now.</p>
<p><label for="secret">New secret</label><input id="secret" type="text" readonly value="${secret}" class="mono"></p>
<p>The old secret keeps working for ${overlap} seconds.</p></div>`;
    return send(request, reply, html`${shown}${await list(request)}`);
  });
}
