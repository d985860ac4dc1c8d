/**
 * `kurir domains add|list|show|set|verify|rotate|revoke|remove|reports` and `kurir doctor DOMAIN` over the admin API
 * (/v1/domains…, docs/domains.md). `domains dns` and `domains rewrap` stay local (domains-cli.ts).
 */
import type { DoctorReport } from '../domains/doctor/report.js';
import type { DomainView } from '../domains/domain-view.js';
import type { DomainReportsView } from '../feedback/aggregate/report-view.js';
import { MAX_RETENTION_DAYS } from '../config/reports-schema.js';
import { MAX_ROTATION_DAYS } from '../domains/domain-settings.js';
import { arg, opt, output, wholeNumberOpt, type CliResult, type Command, type Family, type RemoteContext } from './command-types.js';
import { CliError, EXIT, UsageError } from './errors.js';
import { table } from './table.js';

const enc = encodeURIComponent;

/** A domain as text: state and reason, keys, scheduled rotation, the zone-file lines and the MTA-STS policy file, recent events. */
export function formatDomain(v: DomainView): string {
  const lines = [`${v.name}: ${v.state}${v.reason ? ` (${v.reason})` : ''}`];
  for (const k of v.keys ?? []) {
    const extra =
      k.status === 'revoked'
        ? ': remove its DNS record now'
        : k.keepPublishedUntil
          ? `, keep published until ${k.keepPublishedUntil}${k.removable ? ' (now removable)' : ''}`
          : '';
    lines.push(`  key ${k.selector} ${k.algorithm}${k.bits ? `-${k.bits}` : ''}: ${k.status}${extra}`);
  }
  if (v.lastVerification) {
    lines.push(`  last verification ${v.lastVerification.at}: ${v.lastVerification.ok ? 'ok' : v.lastVerification.problems.join('; ')}`);
  }
  if (v.rotation) {
    const r = v.rotation;
    const schedule = r.everyDays === null ? 'off' : `every ${r.everyDays} days (${r.source})${r.nextRotationAt ? `, next ${r.nextRotationAt}` : ''}`;
    lines.push(`  scheduled rotation: ${schedule}${r.waiting ? `; ${r.waiting.trigger} rotation waiting for DNS since ${r.waiting.since}` : ''}`);
  }
  if (v.records?.length) lines.push('; records to publish');
  for (const r of v.records ?? []) lines.push(`${r.zone}${r.note ? `  ; ${r.note}` : ''}`);
  for (const f of v.files ?? []) {
    lines.push(`; file to serve at ${f.url} (${f.contentType}): ${f.note}`);
    for (const l of f.contents.replace(/\n$/, '').split('\n')) lines.push(`;   ${l}`);
  }
  const recent = (v.events ?? []).slice(-5);
  if (recent.length) lines.push('; recent events');
  for (const e of recent) lines.push(`;   ${e.at} ${e.type} (${e.by}): ${e.message}`);
  return lines.join('\n');
}

const MARK = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' } as const;

/** A doctor report as text: one line per check, then why and the fix for every check that did not pass. */
export function formatDoctor(r: DoctorReport): string {
  const lines = [`${r.domain} (${r.source === 'config' ? 'configured' : 'runtime-managed'}): ${MARK[r.result]}`];
  for (const c of r.checks) {
    lines.push(`${MARK[c.status]}  ${c.id}: ${c.summary}`);
    if (c.status !== 'pass') {
      lines.push(`      why: ${c.why}`);
      if (c.fix) lines.push(`      fix: ${c.fix}`);
    }
  }
  if (r.selfCheck) {
    const failed = r.selfCheck.checks.filter((c) => !c.ok);
    lines.push(`self-check ${r.selfCheck.at}: ${failed.length ? failed.map((c) => `${c.check} FAIL (${c.reason ?? ''})`).join('; ') : 'pass'}`);
  }
  const count = (s: string) => r.checks.filter((c) => c.status === s).length;
  lines.push(`${count('pass')} pass, ${count('warn')} warn, ${count('fail')} fail`);
  return lines.join('\n');
}

const pct = (r: number | null): string => (r === null ? '-' : `${(r * 100).toFixed(1)} %`);

/** What receivers reported about a domain, as text: DMARC per reporter, foreign sources, TLS sessions. */
export function formatReports(v: DomainReportsView): string {
  const d = v.dmarc;
  const lines = [
    `${v.domain}, last ${v.days} day(s) since ${v.since.slice(0, 10)}: ${d.reports} DMARC report(s), ${d.messages} messages; DMARC pass ${pct(d.rates.dmarc)}, DKIM aligned ${pct(d.rates.dkimAligned)}, SPF aligned ${pct(d.rates.spfAligned)}`,
    `own IPs: ${d.ownMessages} messages, DKIM fail ${d.ownDkimFail}, DMARC fail ${d.ownDmarcFail}; other sources: ${d.foreignMessages} messages, DMARC pass ${d.foreignDmarcPass}`,
  ];
  if (d.reporters.length) {
    lines.push(
      table(
        ['REPORTER', 'MESSAGES', 'DMARC', 'DKIM ALIGNED', 'SPF ALIGNED', 'OWN DKIM FAIL', 'OWN DMARC FAIL'],
        d.reporters.map((r) => [
          r.org,
          String(r.messages),
          pct(r.rates.dmarc),
          pct(r.rates.dkimAligned),
          pct(r.rates.spfAligned),
          String(r.ownDkimFail),
          String(r.ownDmarcFail),
        ]),
      ),
    );
  }
  if (d.foreignSources.length) {
    lines.push("sources that are not Kurir's IPs:");
    lines.push(
      table(
        ['IP', 'MESSAGES', 'DMARC PASS'],
        d.foreignSources.slice(0, 20).map((s) => [s.ip, String(s.messages), String(s.dmarcPass)]),
      ),
    );
  }
  const t = v.tlsRpt;
  lines.push(
    `TLS reports: ${t.reports}, sessions ${t.successful} successful, ${t.failed} failed${t.failures.length ? `: ${t.failures.map((f) => `${f.resultType} ${f.sessions}`).join(', ')}` : ''}`,
  );
  return lines.join('\n');
}

/**
 * The exit code of `domains verify`: 0 when this call found every checked record in DNS, else 2, the code of
 * `kurir doctor` for "a check failed" (the view, with the problems, is still printed on stdout; a usage error
 * prints nothing there).
 */
export function verifyExitCode(v: DomainView): number {
  return v.lastVerification?.ok ? EXIT.ok : VERIFY_FAILED;
}

/** `domains verify` when DNS does not serve the records yet: the doctor's "fail" code. */
const VERIFY_FAILED = 2;

/** A command that answers one domain view. */
function domainCommand(usage: string, summary: string, call: (ctx: RemoteContext) => Promise<DomainView>): Command {
  return {
    usage,
    summary,
    async run(ctx) {
      const v = await call(ctx);
      return output(ctx, v, () => formatDomain(v));
    },
  };
}

const domain = (ctx: RemoteContext, command: string): string => enc(arg(ctx, 'the DOMAIN', command));

/** --rotate-every DAYS|never and --mta-sts-mx HOST[,HOST…] as the settings of POST and PATCH /v1/domains. */
function settingsOf(ctx: RemoteContext): { rotationEveryDays?: number | null; mtaStsMx?: string[] } {
  const out: { rotationEveryDays?: number | null; mtaStsMx?: string[] } = {};
  const every = opt(ctx, 'rotate-every');
  if (every !== undefined) {
    // The API's range: 0 or 9999 came back as the gateway's 400, exit 1 (until 2 Dec 2026).
    if (every !== 'never' && !(/^\d{1,4}$/.test(every) && Number(every) >= 1 && Number(every) <= MAX_ROTATION_DAYS)) {
      throw new UsageError(`--rotate-every: a whole number of days from 1 to ${MAX_ROTATION_DAYS}, or never (not ${every})`);
    }
    out.rotationEveryDays = every === 'never' ? null : Number(every);
  }
  const mx = opt(ctx, 'mta-sts-mx');
  if (mx !== undefined)
    out.mtaStsMx = mx
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
  return out;
}

export const domainsCommands: Family = {
  summary: 'sender domains and their DKIM keys',
  commands: {
    add: domainCommand(
      'domains add DOMAIN [--ed25519] [--bits 2048|3072|4096] [--rotate-every DAYS|never] [--mta-sts-mx HOST,…]',
      'add a runtime-managed sender domain; prints the DNS records to publish',
      async (ctx) => {
        const name = arg(ctx, 'the DOMAIN', 'domains add');
        const bits = opt(ctx, 'bits');
        if (bits !== undefined && !['2048', '3072', '4096'].includes(bits)) throw new UsageError('--bits: 2048, 3072 or 4096');
        const body = { name, ...(ctx.opts.ed25519 ? { ed25519: true } : {}), ...(bits ? { rsaBits: Number(bits) } : {}), ...settingsOf(ctx) };
        return ctx.client.post<DomainView>('/v1/domains', body);
      },
    ),
    list: {
      usage: 'domains list',
      summary: 'every sender domain: configured ones (active) and runtime-managed ones with their state',
      async run(ctx) {
        const r = await ctx.client.get<{ domains: Array<{ name: string; source: string; state: string; reason?: string }> }>('/v1/domains');
        return output(ctx, r.domains, () =>
          table(
            ['DOMAIN', 'SOURCE', 'STATE', 'REASON'],
            r.domains.map((d) => [d.name, d.source, d.state, d.reason]),
          ),
        );
      },
    },
    show: domainCommand('domains show DOMAIN', 'state, keys (public), records to publish, last verification', (ctx) =>
      ctx.client.get<DomainView>(`/v1/domains/${domain(ctx, 'domains show')}`),
    ),
    set: domainCommand(
      'domains set DOMAIN [--rotate-every DAYS|never] [--mta-sts-mx HOST,…]',
      "change a domain's scheduled rotation and the mx: lines of its MTA-STS policy (--mta-sts-mx '' = from the configuration)",
      async (ctx) => {
        const d = domain(ctx, 'domains set');
        const body = settingsOf(ctx);
        if (!Object.keys(body).length) throw new UsageError('domains set: give --rotate-every or --mta-sts-mx');
        return (await ctx.client.request('PATCH', `/v1/domains/${d}`, body)).body as DomainView;
      },
    ),
    verify: {
      usage: 'domains verify DOMAIN',
      summary: 'check DNS; activates waiting keys when DNS serves them (else prints why not and exits 2)',
      async run(ctx) {
        const v = await ctx.client.post<DomainView>(`/v1/domains/${domain(ctx, 'domains verify')}/verify`);
        return { output: output(ctx, v, () => formatDomain(v)), exitCode: verifyExitCode(v) };
      },
    },
    rotate: domainCommand('domains rotate DOMAIN', 'create the next key and selector (publish it, then verify)', (ctx) =>
      ctx.client.post<DomainView>(`/v1/domains/${domain(ctx, 'domains rotate')}/rotate`),
    ),
    revoke: domainCommand('domains revoke DOMAIN SELECTOR', 'stop signing with a key at once, on every gateway', (ctx) => {
      const d = domain(ctx, 'domains revoke');
      const selector = ctx.args[1];
      if (!selector) throw new UsageError('domains revoke: the SELECTOR is required');
      return ctx.client.post<DomainView>(`/v1/domains/${d}/keys/${enc(selector)}/revoke`);
    }),
    reports: {
      usage: 'domains reports DOMAIN [--days N]',
      summary: "what receivers reported (DMARC aggregate, TLS-RPT): pass rates per reporter, sources that are not Kurir's IPs",
      async run(ctx) {
        // At most the gateway's feedback.reports.retentionDays, which only it knows: more, up to the most any gateway
        // keeps, is its 400 naming days (exit 1); 0 or more than that is a usage error (exit 1 until 2 Dec 2026).
        const days = wholeNumberOpt(ctx, 'days', 1, MAX_RETENTION_DAYS, 'days');
        const v = await ctx.client.get<DomainReportsView>(`/v1/domains/${domain(ctx, 'domains reports')}/reports${days ? `?days=${days}` : ''}`);
        return output(ctx, v, () => formatReports(v));
      },
    },
    remove: domainCommand('domains remove DOMAIN', 'stop using the domain and delete its private keys', async (ctx) => {
      return (await ctx.client.request('DELETE', `/v1/domains/${domain(ctx, 'domains remove')}`)).body as DomainView;
    }),
  },
};

/** Usage of `kurir doctor`. */
export const DOCTOR_USAGE = 'doctor DOMAIN [--json]';

/**
 * `kurir doctor DOMAIN`: GET /v1/domains/:domain/doctor; the exit code is the worst result (0 pass, 1 warn,
 * 2 fail). A bad or unknown DOMAIN exits 2 like a usage error, never 1, which would read as "a warning".
 */
export async function runDoctorCommand(ctx: RemoteContext): Promise<CliResult> {
  if (ctx.args.length !== 1) throw new UsageError('doctor: exactly one DOMAIN is required');
  const report = await ctx.client.get<DoctorReport>(`/v1/domains/${enc(ctx.args[0])}/doctor`).catch((err: unknown) => {
    if (err instanceof CliError && (err.status === 400 || err.status === 404)) throw new CliError(err.message, EXIT.usage);
    throw err;
  });
  return { output: output(ctx, report, () => formatDoctor(report)), exitCode: report.exitCode };
}
