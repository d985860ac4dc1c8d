import { createPublicKey } from 'node:crypto';
import getDmarcRecord from 'mailauth/lib/dmarc/get-dmarc-record.js';
import { getAlignment } from 'mailauth/lib/tools.js';
import { dkimRecordProblem } from '../dns-check.js';
import { dkimRecord } from '../records.js';
import { type DoctorCheck, type DoctorContext, dnsProblem, mailauthResolver } from './report.js';

const WHY_DKIM =
  'Gmail, Yahoo and Microsoft require a valid DKIM signature from bulk senders; Gmail and Yahoo ask for keys of at least 1024 bits and recommend 2048, and RFC 8301 verifiers ignore shorter ones.';
const WHY_DMARC =
  'Gmail, Yahoo and Microsoft require bulk senders to publish a DMARC record (p=none at least) at the From domain; rua= aggregate reports show who sends as the domain and whether it authenticates.';
const WHY_DMARC_RUA =
  'rua= lists URIs (RFC 7489 6.2): receivers (Gmail, Yahoo, Microsoft) send aggregate reports only to mailto: URIs and ignore a bare address, so no report arrives and nobody sees who sends as the domain.';
const WHY_ALIGN =
  'DMARC passes only when the From domain aligns with the DKIM d= domain or the SPF (MAIL FROM) domain; Gmail and Yahoo require that alignment from bulk senders.';

/** The rua= entries that are not `mailto:` URIs (RFC 7489 6.2: receivers send aggregate reports only to mailto:). */
function notMailto(rua: string): string[] {
  return rua
    .split(',')
    .map((u) => u.trim())
    .filter((u) => !/^mailto:[^@\s]+@[^@\s]+$/i.test(u));
}

/** Why none of the domain's keys signs: it has no active key yet (pending-dns) or was suspended. */
function notSigning(ctx: DoctorContext): string {
  return ctx.state === 'suspended'
    ? `${ctx.domain} is suspended (no active key; intake refuses it)`
    : `${ctx.domain} has no active key yet (${ctx.state ?? 'pending-dns'}; intake refuses it)`;
}

/** RSA modulus length of a published SPKI key, or undefined when it cannot be read. */
function rsaBits(publicKeyBase64: string): number | undefined {
  try {
    return createPublicKey({ key: Buffer.from(publicKeyBase64, 'base64'), format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength;
  } catch {
    return undefined;
  }
}

/** Each active DKIM selector (else the pending ones): published, the public key of Kurir's private key, key size. */
export async function dkimChecks(ctx: DoctorContext): Promise<DoctorCheck[]> {
  if (ctx.keyProblem || !ctx.keys.length) {
    return [
      {
        id: 'dkim',
        status: 'fail',
        summary: ctx.keyProblem ?? `${ctx.domain} has no active DKIM key`,
        why: WHY_DKIM,
        fix: ctx.keyProblem
          ? 'fix the key file named above (kurir dkim generate, or generate: true)'
          : `rotate (kurir domains rotate ${ctx.domain}), publish the record and verify`,
      },
    ];
  }
  const checks: DoctorCheck[] = [];
  for (const key of ctx.keys) {
    const id = `dkim:${key.selector}`;
    const record = dkimRecord(ctx.domain, { ...key, status: key.status });
    const found = await dkimRecordProblem(ctx.resolver, ctx.domain, key);
    const waiting = key.status === 'pending' ? ` (waiting for DNS: ${notSigning(ctx)})` : '';
    if (found?.lookupFailed) {
      // Nothing is known about the record: as for SPF and DMARC, a DNS failure warns.
      checks.push({
        id,
        status: 'warn',
        summary: found.problem + waiting,
        why: WHY_DKIM,
        fix: `check that the DNS servers of ${ctx.domain} answer, then run the doctor again (the record to serve: ${record.zone})`,
      });
      continue;
    }
    if (found) {
      checks.push({ id, status: 'fail', summary: found.problem + waiting, why: WHY_DKIM, fix: `publish exactly this record: ${record.zone}` });
      continue;
    }
    const bits = key.algorithm === 'rsa' ? rsaBits(key.publicKeyBase64) : undefined;
    const size = key.algorithm === 'ed25519' ? 'Ed25519' : `RSA-${bits ?? '?'}`;
    if (bits !== undefined && bits < 1024) {
      checks.push({
        id,
        status: 'fail',
        summary: `${key.selector}: published and matching, but ${size} is under 1024 bits`,
        why: WHY_DKIM,
        fix: `kurir domains rotate ${ctx.domain} (RSA-2048), publish and verify`,
      });
    } else if (bits !== undefined && bits < 2048) {
      checks.push({
        id,
        status: 'warn',
        summary: `${key.selector}: published and matching, ${size} (2048 bits recommended)`,
        why: WHY_DKIM,
        fix: `rotate to a 2048-bit key: kurir domains rotate ${ctx.domain} (configured domains: kurir dkim generate --bits 2048 and a new selector)`,
      });
    } else {
      checks.push(
        key.status === 'pending'
          ? {
              id,
              status: 'warn',
              summary: `${key.selector}._domainkey.${ctx.domain} publishes Kurir's ${size} public key, but the key does not sign yet: ${notSigning(ctx)}`,
              why: WHY_DKIM,
              fix: `kurir domains verify ${ctx.domain} (POST /v1/domains/${ctx.domain}/verify): signing starts once verify sees the record`,
            }
          : { id, status: 'pass', summary: `${key.selector}._domainkey.${ctx.domain} publishes Kurir's ${size} public key`, why: WHY_DKIM },
      );
    }
  }
  return checks;
}

/** The DMARC record of the domain (present, one, policy, rua) and its alignment modes against what Kurir sends. */
export async function dmarcChecks(ctx: DoctorContext): Promise<DoctorCheck[]> {
  const bounce = ctx.config.bounce.domain;
  const proposed = `_dmarc.${ctx.domain}. IN TXT "v=DMARC1; p=none; rua=mailto:${ctx.config.domainKeys.dmarcReportLocalPart}@${bounce}"`;
  let record: Awaited<ReturnType<typeof getDmarcRecord>>;
  const checks: DoctorCheck[] = [];
  try {
    record = await getDmarcRecord(ctx.domain, mailauthResolver(ctx.resolver));
  } catch (err) {
    return [
      {
        id: 'dmarc',
        status: 'warn',
        summary: `_dmarc.${ctx.domain} TXT: ${dnsProblem(err)}`,
        why: WHY_DMARC,
        fix: 'check that the DNS servers of the domain answer, then run the doctor again',
      },
    ];
  }
  if (!record) {
    const rows = await ctx.resolver.resolveTxt(`_dmarc.${ctx.domain}`).then(
      (found) => found.map((r) => r.join('').trim()),
      () => [],
    );
    const several = rows.filter((r) => /^v=DMARC1\b/i.test(r)).length > 1;
    // A record naming v=DMARC1 elsewhere than first: receivers skip it (RFC 7489 6.4), as if there were none.
    const misplaced = rows.find((r) => /(^|;)\s*v\s*=\s*DMARC1\s*(;|$)/i.test(r) && !/^v=DMARC1\b/i.test(r));
    if (!several && misplaced) {
      const rest = misplaced
        .split(';')
        .map((t) => t.trim())
        .filter((t) => t && !/^v\s*=/i.test(t));
      checks.push({
        id: 'dmarc',
        status: 'fail',
        summary: `_dmarc.${ctx.domain} publishes an invalid DMARC record: v=DMARC1 must be its first tag (RFC 7489 6.4), so receivers ignore it: "${misplaced}"`,
        why: WHY_DMARC,
        fix: `put v=DMARC1 first: _dmarc.${ctx.domain}. IN TXT "v=DMARC1; ${rest.join('; ')}"`,
      });
    } else {
      checks.push({
        id: 'dmarc',
        status: 'fail',
        summary: several ? `_dmarc.${ctx.domain} publishes several DMARC records: receivers ignore them all` : `${ctx.domain} publishes no DMARC record`,
        why: WHY_DMARC,
        fix: `${several ? 'keep exactly one record: ' : 'publish '}${proposed}`,
      });
    }
  } else {
    const p = String(record.p ?? '').toLowerCase();
    const where = record.isOrgRecord ? ' (inherited from the organizational domain)' : '';
    if (!['none', 'quarantine', 'reject'].includes(p)) {
      checks.push({
        id: 'dmarc',
        status: 'fail',
        summary: `DMARC record${where} has no valid p= policy: ${record.rr}`,
        why: WHY_DMARC,
        fix: `publish ${proposed}`,
      });
    } else if (!record.rua) {
      checks.push({
        id: 'dmarc',
        status: 'warn',
        summary: `DMARC p=${p}${where}, but no rua= address: nobody receives aggregate reports`,
        why: WHY_DMARC,
        fix: `add rua=mailto:${ctx.config.domainKeys.dmarcReportLocalPart}@${bounce}: ${proposed.replace('p=none', `p=${p}`)}`,
      });
    } else if (notMailto(String(record.rua)).length) {
      const bad = notMailto(String(record.rua));
      checks.push({
        id: 'dmarc',
        status: 'warn',
        summary: `DMARC p=${p}${where}, but rua= ${bad.join(', ')} ${bad.length > 1 ? 'are not mailto: URIs' : 'is not a mailto: URI'}: receivers send no reports to ${bad.length > 1 ? 'them' : 'it'}`,
        why: WHY_DMARC_RUA,
        fix: `write each rua= address as a mailto: URI, e.g. rua=mailto:${ctx.config.domainKeys.dmarcReportLocalPart}@${bounce}: ${proposed.replace('p=none', `p=${p}`)}`,
      });
    } else {
      const note = p === 'none' ? '; p=none meets the requirement, move to quarantine once the reports show only your sources' : '';
      checks.push({ id: 'dmarc', status: 'pass', summary: `DMARC p=${p}${where}, reports to ${record.rua}${note}`, why: WHY_DMARC });
    }
  }
  const adkim = record && String(record.adkim ?? 'r').toLowerCase() === 's' ? 's' : 'r';
  const aspf = record && String(record.aspf ?? 'r').toLowerCase() === 's' ? 's' : 'r';
  // Kurir signs with d=<the From domain> and sends with MAIL FROM at the bounce domain (VERP).
  // Strict: the identifiers are equal; relaxed: same organizational domain (mailauth's tldts lookup).
  const aligns = (id: string, strict: boolean): boolean => (strict ? id === ctx.domain : Boolean(getAlignment(ctx.domain, [id])));
  // Only an active key signs: waiting keys of a pending-dns or suspended domain do not count.
  const signing = ctx.keys.some((k) => k.status === 'active');
  const dkimAligned = signing && !ctx.keyProblem && aligns(ctx.domain, adkim === 's');
  const spfAligned = aligns(bounce, aspf === 's');
  const modes = `adkim=${adkim}, aspf=${aspf}`;
  const spfNote = spfAligned
    ? `SPF aligns too (MAIL FROM @${bounce})`
    : `SPF does not align (MAIL FROM @${bounce}${aspf === 's' ? ', strict aspf' : ''}): DMARC rests on DKIM alone`;
  checks.push(
    dkimAligned
      ? { id: 'dmarc-alignment', status: 'pass', summary: `DKIM d=${ctx.domain} aligns (${modes}); ${spfNote}`, why: WHY_ALIGN }
      : {
          id: 'dmarc-alignment',
          status: spfAligned ? 'warn' : 'fail',
          summary: `no active DKIM key signs as ${ctx.domain}${ctx.state && !signing ? ` (${notSigning(ctx)})` : ''}; ${spfNote}`,
          why: WHY_ALIGN,
          fix: `activate a DKIM key for ${ctx.domain} (publish its record, then run kurir domains verify ${ctx.domain})${spfAligned ? '' : `, or put bounce.domain under ${ctx.domain} with aspf=r`}`,
        },
  );
  return checks;
}
