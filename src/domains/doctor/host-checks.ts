import { parsePolicy, resolvePolicy } from 'mailauth/lib/mta-sts.js';
import { mxMatches } from '../../delivery/mta-sts.js';
import { isDnsNotFound } from '../../delivery/resolver.js';
import { mtaStsMxFor, mtaStsPolicy, reportRecords } from '../records.js';
import { type DoctorCheck, type DoctorContext, dnsProblem, mailauthResolver, reverseName, sendingAddresses } from './report.js';

const WHY_MX =
  'Bounces and feedback reach Kurir only through the bounce domain MX; Gmail and Yahoo expect a working return path, and without one invalid addresses are never suppressed and the bounce rate climbs.';
const WHY_MTA_STS =
  'Not a bulk-sender requirement, but MTA-STS makes senders (Gmail, Microsoft) deliver mail to the domain only over verified TLS; a published but broken policy makes them defer or refuse it.';
const WHY_TLS_RPT = 'TLS-RPT (RFC 8460) makes Gmail and Microsoft report TLS failures delivering to the domain; without it MTA-STS problems go unnoticed.';
const WHY_DNSBL = 'Microsoft, Yahoo and many receivers reject or spam-folder mail from IPs on DNS blocklists; a listing explains a sudden drop in delivery.';

/** The zone-file line Kurir proposes for `purpose` (mta-sts, tls-rpt) of the checked domain. */
function proposed(ctx: DoctorContext, purpose: string): string {
  return reportRecords(ctx.domain, ctx.config, mtaStsMxFor(ctx, ctx.config)).find((r) => r.purpose === purpose)!.zone;
}

/** The bounce domain's MX: present and naming this gateway's hostname (the host running role feedback). */
export async function bounceMxCheck(ctx: DoctorContext): Promise<DoctorCheck> {
  const { domain: bounce } = ctx.config.bounce;
  const host = ctx.config.hostname.toLowerCase();
  const fix = `publish ${bounce}. IN MX 10 ${host}. (the host running role feedback on port 25)`;
  let mx: Array<{ exchange: string; priority: number }>;
  try {
    mx = await ctx.resolver.resolveMx(bounce);
  } catch (err) {
    return {
      id: 'bounce-mx',
      status: isDnsNotFound(err) ? 'fail' : 'warn',
      summary: `MX of the bounce domain ${bounce}: ${dnsProblem(err)}`,
      why: WHY_MX,
      fix,
    };
  }
  const names = mx.map((m) => m.exchange.toLowerCase().replace(/\.$/, ''));
  if (!names.length || names.every((n) => n === '')) {
    return {
      id: 'bounce-mx',
      status: 'fail',
      summary: `the bounce domain ${bounce} has ${names.length ? 'a null MX (accepts no mail)' : 'no MX'}`,
      why: WHY_MX,
      fix,
    };
  }
  if (!names.includes(host)) {
    return {
      id: 'bounce-mx',
      status: 'warn',
      summary: `MX of ${bounce} is ${names.join(', ')}, not this gateway's hostname ${host}`,
      why: WHY_MX,
      fix: `${fix}, or make sure ${names.join(', ')} forwards to it`,
    };
  }
  return { id: 'bounce-mx', status: 'pass', summary: `MX of ${bounce} is ${names.join(', ')}`, why: WHY_MX };
}

/**
 * A `_mta-sts.<domain>` TXT record that names v=STSv1 but that mailauth (and senders) skip, and why
 * (RFC 8461 3.1: v=STSv1 first, then id= of 1 to 32 alphanumerics); undefined when there is none.
 */
async function invalidMtaStsRecord(ctx: DoctorContext): Promise<{ text: string; problem: string } | undefined> {
  const rows = await ctx.resolver.resolveTxt(`_mta-sts.${ctx.domain}`).then(
    (found) => found.map((r) => r.join('').trim()),
    () => [],
  );
  const text = rows.find((r) => /(^|;)\s*v\s*=\s*STSv1\s*(;|$)/i.test(r));
  if (!text) return undefined;
  if (!/^v=STSv1\s*(;|$)/i.test(text)) return { text, problem: 'v=STSv1 must be its first tag' };
  const tagId = /(^|;)\s*id\s*=\s*([^;]*)/i.exec(text)?.[2]?.trim();
  if (tagId === undefined) return { text, problem: 'id= is missing' };
  return { text, problem: `id=${tagId} is not 1 to 32 letters and digits` };
}

/** `_mta-sts.<domain>` TXT, the policy fetched over HTTPS and parsed with mailauth, and whether it lists the domain's MX hosts. */
export async function mtaStsCheck(ctx: DoctorContext): Promise<DoctorCheck> {
  const d = ctx.domain;
  const proposal = mtaStsPolicy(d, mtaStsMxFor(ctx, ctx.config), ctx.config);
  const fix = `serve ${proposal.url} (${proposal.contents.trim().split('\n').join('; ')}; one mx: line per MX host of ${d}), then publish ${proposed(ctx, 'mta-sts')}`;
  let id: string | false;
  try {
    id = await resolvePolicy(d, { resolver: mailauthResolver(ctx.resolver) });
  } catch (err) {
    const several = (err as { code?: string }).code === 'multi_sts_records';
    return {
      id: 'mta-sts',
      status: several ? 'fail' : 'warn',
      summary: `_mta-sts.${d} TXT: ${several ? 'several v=STSv1 records' : dnsProblem(err)}`,
      why: WHY_MTA_STS,
      fix,
    };
  }
  if (!id) {
    const invalid = await invalidMtaStsRecord(ctx);
    if (invalid) {
      return {
        id: 'mta-sts',
        status: 'fail',
        summary: `_mta-sts.${d} publishes an invalid MTA-STS record: ${invalid.problem}, so senders ignore it and apply no policy: "${invalid.text}"`,
        why: WHY_MTA_STS,
        fix: `publish ${proposed(ctx, 'mta-sts')} (v=STSv1 first, then an id= of 1 to 32 letters and digits, changed whenever the policy changes)`,
      };
    }
    return { id: 'mta-sts', status: 'warn', summary: `${d} publishes no MTA-STS policy (_mta-sts.${d} TXT)`, why: WHY_MTA_STS, fix };
  }
  let policy: ReturnType<typeof parsePolicy>;
  try {
    policy = parsePolicy(await ctx.fetchPolicy(d));
  } catch (err) {
    return {
      id: 'mta-sts',
      status: 'fail',
      summary: `_mta-sts.${d} announces policy ${id}, but ${(err as Error).message}`,
      why: WHY_MTA_STS,
      fix: `serve a valid policy (text/plain, over HTTPS with a certificate for mta-sts.${d}), or remove _mta-sts.${d}`,
    };
  }
  if (policy.mode === 'none') return { id: 'mta-sts', status: 'warn', summary: `MTA-STS policy ${id} is mode: none (switched off)`, why: WHY_MTA_STS, fix };
  const mx = await ctx.resolver.resolveMx(d).catch(() => []);
  const unlisted = mx.map((m) => m.exchange).filter((h) => h && !mxMatches(h, policy.mx ?? []));
  if (unlisted.length) {
    return {
      id: 'mta-sts',
      status: policy.mode === 'enforce' ? 'fail' : 'warn',
      summary: `MTA-STS policy (${policy.mode}) does not list the MX host(s) ${unlisted.join(', ')}: ${policy.mode === 'enforce' ? 'senders refuse to deliver to them' : 'TLS reports count failures'}`,
      why: WHY_MTA_STS,
      fix: `add mx: ${unlisted.join(', mx: ')} to the policy and publish a new id in _mta-sts.${d}`,
    };
  }
  return { id: 'mta-sts', status: 'pass', summary: `MTA-STS policy ${id}: mode ${policy.mode}, mx ${(policy.mx ?? []).join(', ')}`, why: WHY_MTA_STS };
}

/** `_smtp._tls.<domain>` TXT: one v=TLSRPTv1 record with a rua= address. */
export async function tlsRptCheck(ctx: DoctorContext): Promise<DoctorCheck> {
  const name = `_smtp._tls.${ctx.domain}`;
  const fix = `publish ${proposed(ctx, 'tls-rpt')}`;
  let rows: string[];
  try {
    rows = (await ctx.resolver.resolveTxt(name)).map((r) => r.join('').trim()).filter((t) => /^v=TLSRPTv1\s*(;|$)/i.test(t));
  } catch (err) {
    return { id: 'tls-rpt', status: 'warn', summary: `${name} TXT: ${dnsProblem(err)}`, why: WHY_TLS_RPT, fix };
  }
  if (!rows.length) return { id: 'tls-rpt', status: 'warn', summary: `${name} has no v=TLSRPTv1 record`, why: WHY_TLS_RPT, fix };
  if (rows.length > 1)
    return {
      id: 'tls-rpt',
      status: 'fail',
      summary: `${name} has ${rows.length} v=TLSRPTv1 records: reporters ignore them all`,
      why: WHY_TLS_RPT,
      fix: `keep exactly one: ${fix}`,
    };
  const rua = /(^|;)\s*rua=([^;]+)/i.exec(rows[0])?.[2]?.trim();
  if (!rua || !rua.split(',').every((u) => /^(mailto:\S+@\S+|https:\/\/\S+)$/i.test(u.trim()))) {
    return { id: 'tls-rpt', status: 'fail', summary: `${name} has no valid rua= (mailto: or https:): ${rows[0]}`, why: WHY_TLS_RPT, fix };
  }
  return { id: 'tls-rpt', status: 'pass', summary: `TLS reports go to ${rua}`, why: WHY_TLS_RPT };
}

/** Each sending IP in each configured DNS blocklist zone (A lookup of the reversed address under the zone). */
export async function blocklistChecks(ctx: DoctorContext): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  for (const { ip, range } of sendingAddresses(ctx.config)) {
    if (range) continue;
    const listed: string[] = [];
    const unknown: string[] = [];
    for (const zone of ctx.config.doctor.blocklists) {
      try {
        const answers = await ctx.resolver.resolve4(reverseName(ip, zone));
        // 127.255.255.x: the list refused the query (e.g. Spamhaus through a public resolver), not a listing.
        if (answers.some((a) => a.startsWith('127.255.255.'))) unknown.push(`${zone} (refused the query: ${answers.join(', ')})`);
        else if (answers.some((a) => a.startsWith('127.'))) listed.push(`${zone} (${answers.join(', ')})`);
      } catch (err) {
        if (!isDnsNotFound(err)) unknown.push(`${zone} (${dnsProblem(err)})`);
      }
    }
    const id = `blocklist:${ip}`;
    if (listed.length) {
      checks.push({
        id,
        status: 'fail',
        summary: `${ip} is listed in ${listed.join(', ')}`,
        why: WHY_DNSBL,
        fix: `find and stop the cause (compromised account, purchased list, spam trap hits), then request delisting at each list's lookup page (e.g. https://check.spamhaus.org/ for ${listed[0].split(' ')[0]})`,
      });
    } else if (unknown.length) {
      checks.push({
        id,
        status: 'warn',
        summary: `${ip}: no answer from ${unknown.join(', ')}`,
        why: WHY_DNSBL,
        fix: 'query the lists through your own recursive resolver (dns.servers), not a public one',
      });
    } else {
      checks.push({ id, status: 'pass', summary: `${ip} is on none of ${ctx.config.doctor.blocklists.join(', ')}`, why: WHY_DNSBL });
    }
  }
  return checks;
}
