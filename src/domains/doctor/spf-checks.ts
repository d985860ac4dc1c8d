/** The doctor's SPF checks of the From domain and of the bounce (MAIL FROM) domain. */
import { spf } from 'mailauth/lib/spf/index.js';
import { type DoctorCheck, type DoctorContext, mailauthResolver, proposedSpf, sendingAddresses, spfMechanisms } from './report.js';

const WHY_SPF =
  'Gmail, Yahoo and Microsoft (Outlook.com) require bulk senders to pass SPF for the envelope sender (MAIL FROM) domain and DKIM, and DMARC to pass on one of them; mail failing SPF is spam-foldered or rejected.';
const WHY_SPF_LOOKUPS =
  'RFC 7208 allows at most 10 DNS-querying mechanisms (include, a, mx, ptr, exists, redirect); past that every receiver answers permerror, which counts as an SPF failure at Gmail, Yahoo and Microsoft.';
const WHY_SPF_IPS =
  'SPF passes only for IPs the record authorises: a sending IP left out fails SPF at Gmail, Yahoo and Microsoft, and with DKIM broken too, DMARC fails.';
const WHY_SPF_ALL =
  'SPF says which IPs may send as the domain; a record that passes every IP (+all, or a bare all, whose qualifier defaults to +) lets anyone on the internet pass SPF as it, so spam and phishing forged with the domain pass too, and receivers (Gmail, Microsoft) treat the record as worthless or as a spam signal.';
const WHY_SPF_NEUTRAL =
  'With ?all (or no all mechanism) an IP the record does not list gets neutral, which receivers treat like no SPF at all: forged mail is not flagged, and the domain gets no protection from the record.';

/** The all mechanism of an SPF record as written (`+all`, `all`, `?all`), or undefined. */
function allTerm(rr: string): string | undefined {
  return /(?:^|\s)([+?~-]?all)(?=\s|$)/i.exec(rr)?.[1];
}

/** A quick SPF record check: probing an address no record authorises makes every mechanism be evaluated. */
const PROBE_IP = '100::1';

/** SPF of `spfDomain` (the sender domain, or the bounce domain Kurir uses as MAIL FROM): record, lookups, sending IPs. */
export async function spfChecks(ctx: DoctorContext, spfDomain: string, role: string): Promise<DoctorCheck[]> {
  const resolver = mailauthResolver(ctx.resolver);
  const suffix = spfDomain === ctx.domain ? '' : `:${spfDomain}`;
  const fixRecord = `${spfDomain}. IN TXT "${proposedSpf(ctx.config)}" (merge with any existing SPF record: publish exactly one)`;
  const probe = await spf({ sender: `postmaster@${spfDomain}`, ip: PROBE_IP, mta: ctx.config.hostname, resolver });
  const comment = probe.status.comment ?? '';
  const tooMany = /Too many (DNS requests|void DNS results)/.test(comment);
  const checks: DoctorCheck[] = [];
  const id = `spf${suffix}`;
  if (probe.status.result === 'none') {
    return [{ id, status: 'fail', summary: `${spfDomain} (${role}) publishes no SPF record`, why: WHY_SPF, fix: `publish ${fixRecord}` }];
  }
  if (probe.status.result === 'temperror') {
    return [
      {
        id,
        status: 'warn',
        summary: `SPF of ${spfDomain} could not be read: ${comment}`,
        why: WHY_SPF,
        fix: 'check that the DNS servers of the domain answer, then run the doctor again',
      },
    ];
  }
  if (probe.status.result === 'permerror' && !tooMany) {
    const problem = comment.replace(/^.*?during lookup of \S+: /, '');
    return [{ id, status: 'fail', summary: `SPF record of ${spfDomain} (${role}) is invalid: ${problem}`, why: WHY_SPF, fix: `replace it with ${fixRecord}` }];
  }
  const rr = probe.rr ?? '';
  if (probe.status.result === 'pass') {
    // The probe address is listed by no sensible record: passing it means every address passes.
    const term = allTerm(rr);
    return [
      {
        id,
        status: 'fail',
        summary: `SPF record of ${spfDomain} (${role}) authorises every IP on the internet (${term ? `${term}: ` : `${PROBE_IP} passes: `}${rr})`,
        why: WHY_SPF_ALL,
        fix: `end the record with -all (or ~all) after the mechanisms of your sending IPs: ${fixRecord}`,
      },
    ];
  }
  if (probe.status.result === 'neutral') {
    const term = allTerm(rr);
    checks.push({
      id,
      status: 'warn',
      summary: `SPF record of ${spfDomain} (${role}) ends with ${term ?? 'no all mechanism'}: IPs it does not list get neutral, not fail (${rr})`,
      why: WHY_SPF_NEUTRAL,
      fix: `end it with -all (or ~all while you are still finding your sources): ${fixRecord}`,
    });
  } else {
    checks.push({ id, status: 'pass', summary: `${spfDomain} (${role}) publishes one valid SPF record: ${rr}`.trim(), why: WHY_SPF });
  }
  const count = probe.lookups?.count ?? 0;
  checks.push(
    tooMany
      ? {
          id: `spf-lookups${suffix}`,
          status: 'fail',
          summary: `SPF of ${spfDomain} needs more than 10 DNS lookups (${comment.replace(/^.*: /, '')})`,
          why: WHY_SPF_LOOKUPS,
          fix: 'remove include: mechanisms you no longer send through, or replace them by the ip4:/ip6: ranges they resolve to, until the record needs at most 10 lookups',
        }
      : { id: `spf-lookups${suffix}`, status: 'pass', summary: `SPF of ${spfDomain} needs ${count} of at most 10 DNS lookups`, why: WHY_SPF_LOOKUPS },
  );
  const addresses = sendingAddresses(ctx.config);
  if (!addresses.length) {
    checks.push({
      id: `spf-ips${suffix}`,
      status: 'warn',
      summary: 'domainKeys.sendingIps is empty (and no source-IP pools): cannot check that SPF authorises the sending IPs',
      why: WHY_SPF_IPS,
      fix: 'list the public sending IPs of every gateway in domainKeys.sendingIps',
    });
    return checks;
  }
  const missing: string[] = [];
  for (const { ip } of addresses) {
    const r = await spf({ sender: `postmaster@${spfDomain}`, ip, mta: ctx.config.hostname, resolver });
    if (r.status.result !== 'pass') missing.push(`${ip} (${r.status.result})`);
  }
  checks.push(
    missing.length
      ? {
          id: `spf-ips${suffix}`,
          status: 'fail',
          summary: `SPF of ${spfDomain} does not authorise ${missing.join(', ')}`,
          why: WHY_SPF_IPS,
          fix: `add ${spfMechanisms(ctx.config).join(' ')} before the all mechanism: ${fixRecord}`,
        }
      : { id: `spf-ips${suffix}`, status: 'pass', summary: `SPF of ${spfDomain} authorises ${addresses.map((a) => a.ip).join(', ')}`, why: WHY_SPF_IPS },
  );
  return checks;
}
