/**
 * The doctor's findings for one sender domain in the console (admin sessions only): the same
 * `Doctor.examine` as `GET /v1/domains/:domain/doctor`, each check with its status, why it matters and
 * the fix. A page of its own, opened from the domain page, because a run asks DNS dozens of questions
 * (blocklists included) and the domain list should not wait for them.
 */
import type { FastifyInstance } from 'fastify';
import type { DoctorReport } from '../../domains/doctor/report.js';
import { KurirError } from '../../lib/errors.js';
import { html, page, when, type Html } from './html.js';
import type { ConsoleOptions } from './options.js';

const WORDS = { pass: 'pass', warn: 'warn', fail: 'fail' } as const;

/** The link to a domain's doctor page. */
export function doctorLink(domain: string): Html {
  return html`<a href="/console/domains/doctor?domain=${encodeURIComponent(domain)}">Doctor for ${domain}</a>`;
}

function report(r: DoctorReport): Html {
  const counts = { pass: 0, warn: 0, fail: 0 };
  for (const c of r.checks) counts[c.status]++;
  const self = r.selfCheck
    ? html`<p>Latest authentication self-check ${when(r.selfCheck.at)}: ${
        r.selfCheck.ok
          ? 'DKIM, SPF and DMARC verified'
          : r.selfCheck.checks
              .filter((c) => !c.ok)
              .map((c) => `${c.check}: ${c.reason ?? 'failed'}`)
              .join('; ')
      }.</p>`
    : '';
  return html`<p class="facts"><span class="status ${r.result}">${WORDS[r.result]}</span> ${r.domain} (${r.source === 'config' ? 'declared in the configuration' : 'runtime-managed'}), checked ${when(r.checkedAt)}: ${counts.pass} passed, ${counts.warn} warning(s), ${counts.fail} failed.</p>
${self}
<table><caption>Checks</caption><thead><tr><th scope="col">Result</th><th scope="col">Check</th><th scope="col">Found</th><th scope="col">Why it matters</th><th scope="col">Fix</th></tr></thead><tbody>
${r.checks.map(
  (
    c,
  ) => html`<tr class="check ${c.status}"><td data-label="Result"><span class="status ${c.status}">${WORDS[c.status]}</span></td><td data-label="Check" class="mono">${c.id}</td>
<td data-label="Found">${c.summary}</td><td data-label="Why it matters">${c.why}</td><td data-label="Fix">${c.fix ?? '—'}</td></tr>`,
)}
</tbody></table>
<p><a href="/console/domains">Back to the domains</a></p>`;
}

/** Registers `GET /console/domains/doctor?domain=` on the console instance. */
export async function consoleDoctorRoutes(app: FastifyInstance, opts: ConsoleOptions): Promise<void> {
  app.get<{ Querystring: { domain?: string } }>('/console/domains/doctor', { schema: { hide: true } }, async (request, reply) => {
    if (!opts.doctor) throw new KurirError('NOT_FOUND', 'The deliverability doctor is not available on this gateway');
    const domain = typeof request.query.domain === 'string' ? request.query.domain : '';
    if (!domain) throw new KurirError('VALIDATION', 'domain: required', { field: 'domain' });
    const result = await opts.doctor.examine(domain);
    const s = request.consoleSession!;
    return reply.type('text/html; charset=utf-8').send(page(`Doctor: ${result.domain}`, report(result), { name: s.name, role: s.role, csrf: s.csrf }));
  });
}
