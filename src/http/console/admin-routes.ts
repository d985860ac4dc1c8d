/**
 * Admin screens of the console (admin sessions only, see session.ts): the incident view
 * (`GET /v1/incidents`'s report), sender domains with their DNS records and verify / rotate buttons, and
 * provider pause / resume. Each button calls the same service function as the admin API route.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { resumeProvider } from '../../admin/delivery-control.js';
import { incidentReport } from '../../admin/incidents.js';
import { KurirError } from '../../lib/errors.js';
import { doctorLink } from './doctor-page.js';
import { dashboardLinks, dashboardUrl } from './grafana.js';
import { html, page, when, type Html } from './html.js';
import type { ConsoleOptions } from './options.js';

const NOTICES: Record<string, string> = {
  verified: 'DNS checked: see the result under the domain.',
  rotated: 'A new DKIM key was created: publish its record, then verify.',
  paused: 'The provider is paused: its messages wait and do not fail.',
  resumed: 'The provider is resumed: held messages run now.',
};

function send(request: FastifyRequest, reply: FastifyReply, title: string, content: Html, done?: string): FastifyReply {
  const s = request.consoleSession!;
  const notice = done && Object.hasOwn(NOTICES, done) ? html`<p class="notice" role="status">${NOTICES[done]}</p>` : '';
  return reply.type('text/html; charset=utf-8').send(page(title, html`${notice}${content}`, { name: s.name, role: s.role, csrf: s.csrf }));
}

function button(action: string, fields: Record<string, string>, label: string, csrf: string, danger = false): Html {
  return html`<form method="post" action="${action}" class="inline">
<input type="hidden" name="csrf" value="${csrf}">${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<button type="submit"${danger ? html` class="danger"` : ''}>${label}</button></form>`;
}

const field = (request: FastifyRequest, name: string): string => {
  const v = (request.body as Record<string, unknown> | undefined)?.[name];
  if (typeof v !== 'string' || !v) throw new KurirError('VALIDATION', `${name}: required`, { field: name });
  return v;
};

/** Registers the admin screens on the console instance. */
export async function consoleAdminRoutes(app: FastifyInstance, opts: ConsoleOptions): Promise<void> {
  const unavailable = (what: string) => new KurirError('NOT_FOUND', `${what} is not available on this gateway`);

  app.get<{ Querystring: { done?: string } }>('/console/incidents', { schema: { hide: true } }, async (request, reply) => {
    if (!opts.incidents) throw unavailable('The incident view');
    const report = await incidentReport(opts.incidents, opts.clock.now());
    const rows = report.providers.map(
      (p) => html`<section class="card"><h2><span class="status ${p.status}">${p.status}</span> ${p.provider}</h2>
<p>Last hour: ${p.facts.delivered} delivered, ${p.facts.deferred} deferred, ${p.facts.bounced} bounced, ${p.facts.expired} expired${
        p.facts.placement?.inboxRate !== undefined && p.facts.placement?.inboxRate !== null
          ? `; seed inbox rate ${Math.round(p.facts.placement.inboxRate * 100)} %`
          : ''
      }.</p>
${p.findings.length ? html`<ul>${p.findings.map((f) => html`<li><span class="status ${f.severity}">${f.severity}</span> ${f.text}</li>`)}</ul>` : html`<p>No finding.</p>`}
${dashboardLinks(opts.grafanaUrl, ['delivery', 'overview'], p.provider)}
</section>`,
    );
    const domains = report.domains.map(
      (d) => html`<section class="card"><h2><span class="status ${d.status}">${d.status}</span> sender domain ${d.domain}</h2>
<ul>${d.findings.map((f) => html`<li><span class="status ${f.severity}">${f.severity}</span> ${f.text}</li>`)}</ul>
${opts.doctor ? html`<p>${doctorLink(d.domain)} for the fix.</p>` : ''}
</section>`,
    );
    const content = html`${dashboardLinks(opts.grafanaUrl, ['overview', 'delivery', 'admin'])}<p>From ${when(report.from)} to ${when(report.to)}. Overall: <span class="status ${report.status}">${report.status}</span></p>
${domains}
${rows.length ? rows : html`<p>No provider had traffic in the last hour and no seed mailbox is configured.</p>`}`;
    return send(request, reply, 'Incidents', content, request.query.done);
  });

  app.get<{ Querystring: { done?: string } }>('/console/domains', { schema: { hide: true } }, async (request, reply) => {
    const domains = opts.domains;
    if (!domains) throw unavailable('Domain management');
    const s = request.consoleSession!;
    const runtime = (await domains.list()).filter((d) => d.state !== 'removed').map((d) => domains.view(d));
    const content = html`${
      runtime.length
        ? runtime.map(
            (d) => html`<section class="card"><h2>${d.name} <span class="status">${d.state}</span></h2>
${d.lastVerification ? html`<p>Last DNS check ${when(d.lastVerification.at)}: ${d.lastVerification.ok ? 'all records found' : d.lastVerification.problems.join('; ')}</p>` : html`<p>Not verified yet.</p>`}
<table><thead><tr><th scope="col">Purpose</th><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Value</th></tr></thead><tbody>
${d.records.map((r) => html`<tr><td data-label="Purpose">${r.purpose}</td><td data-label="Name" class="mono">${r.name}</td><td data-label="Type">${r.type}</td><td data-label="Value" class="mono">${r.value}</td></tr>`)}
</tbody></table>
<p>Keys: ${d.keys.map((k) => `${k.selector} (${k.algorithm}, ${k.status})`).join(', ')}</p>
<p class="row">${button('/console/domains/verify', { domain: d.name }, `Verify DNS of ${d.name}`, s.csrf)} ${button('/console/domains/rotate', { domain: d.name }, `Rotate DKIM key of ${d.name}`, s.csrf)}</p>
${opts.doctor ? html`<p>${doctorLink(d.name)}: SPF, DKIM, DMARC, bounce MX, reverse DNS, MTA-STS, TLS-RPT and blocklists, each with its fix.</p>` : ''}
</section>`,
          )
        : html`<p>No runtime-managed sender domain (domains declared in the configuration are managed there).</p>`
    }
${
  opts.doctor && opts.configuredDomains?.length
    ? html`<h2>Declared in the configuration</h2><ul>${opts.configuredDomains.map((name) => html`<li>${doctorLink(name)}</li>`)}</ul>`
    : ''
}`;
    return send(request, reply, 'Sender domains', content, request.query.done);
  });

  app.post('/console/domains/verify', { schema: { hide: true } }, async (request, reply) => {
    if (!opts.domains) throw unavailable('Domain management');
    const name = field(request, 'domain');
    request.auditDetail = { target: name };
    await opts.domains.verify(name);
    return reply.code(303).header('location', '/console/domains?done=verified').send();
  });

  app.post('/console/domains/rotate', { schema: { hide: true } }, async (request, reply) => {
    if (!opts.domains) throw unavailable('Domain management');
    const name = field(request, 'domain');
    request.auditDetail = { target: name };
    await opts.domains.rotate(name);
    return reply.code(303).header('location', '/console/domains?done=rotated').send();
  });

  app.get<{ Querystring: { done?: string } }>('/console/providers', { schema: { hide: true } }, async (request, reply) => {
    if (!opts.delivery) throw unavailable('Delivery control');
    const s = request.consoleSession!;
    const statuses = await opts.delivery.shaper.status();
    const grafana = opts.grafanaUrl;
    const content = html`<table><thead><tr><th scope="col">Provider</th><th scope="col">Rate / min</th><th scope="col">Paused</th><th scope="col">Held</th><th scope="col">Action</th></tr></thead><tbody>
${statuses.map(
  (
    p,
  ) => html`<tr><td data-label="Provider">${p.provider}${grafana ? html` <a href="${dashboardUrl(grafana, 'delivery', p.provider)}" rel="noopener noreferrer">Delivery dashboard for ${p.provider}</a>` : ''}</td><td data-label="Rate / min">${p.effectivePerMinute ?? 'unlimited'}</td>
<td data-label="Paused">${p.adminPaused ? `${p.adminPaused === 'indefinitely' ? 'until resumed' : `until ${when(p.adminPaused)}`} (by ${p.pausedBy ?? '?'})` : p.backoffUntil ? `backing off until ${when(p.backoffUntil)}` : 'no'}</td>
<td data-label="Held">${p.heldJobs}</td>
<td data-label="Action">${p.adminPaused || p.backoffUntil ? button('/console/providers/resume', { provider: p.provider }, `Resume ${p.provider}`, s.csrf) : button('/console/providers/pause', { provider: p.provider }, `Pause ${p.provider}`, s.csrf, true)}</td></tr>`,
)}
</tbody></table>`;
    return send(request, reply, 'Providers', content, request.query.done);
  });

  const knownProvider = (request: FastifyRequest): string => {
    const provider = field(request, 'provider');
    if (!opts.delivery!.shaper.names().includes(provider))
      throw new KurirError('NOT_FOUND', `provider ${provider} is not in the provider map`, { field: 'provider' });
    request.auditDetail = { target: provider };
    return provider;
  };

  app.post('/console/providers/pause', { schema: { hide: true } }, async (request, reply) => {
    if (!opts.delivery) throw unavailable('Delivery control');
    await opts.delivery.shaper.pause(knownProvider(request), { by: request.consoleSession!.name });
    return reply.code(303).header('location', '/console/providers?done=paused').send();
  });

  app.post('/console/providers/resume', { schema: { hide: true } }, async (request, reply) => {
    if (!opts.delivery) throw unavailable('Delivery control');
    await resumeProvider(opts.delivery, knownProvider(request), request.consoleSession!.name);
    return reply.code(303).header('location', '/console/providers?done=resumed').send();
  });
}
