import { createHash } from 'node:crypto';
import { allSendingIps } from '../config/ip-pools-schema.js';
import type { Config } from '../config/schema.js';
import { dnsRecordFor } from '../dkim/keys.js';
import { KurirError } from '../lib/errors.js';
import type { DomainKeyRecord, DomainRecord } from '../store/domain-store.js';

/** One DNS record to publish, in the forms a zone file and a DNS provider's web form need. */
export interface DnsRecordView {
  /** What the record is for: dkim, spf, dmarc, dmarc-report-authorization, bounce-mx, bounce-spf, mta-sts, tls-rpt. */
  purpose: string;
  name: string;
  type: 'TXT' | 'MX';
  /** The record's value (TXT: the whole text, before splitting). */
  value: string;
  /** TXT: the value as character-strings of at most 255 bytes each (RFC 1035 3.3.14). */
  strings?: string[];
  /** The zone-file line. */
  zone: string;
  /** Must be published before the domain (or its next key) becomes active. */
  required: boolean;
  note?: string;
}

/** A file to serve over HTTPS next to the DNS records: the MTA-STS policy. */
export interface PolicyFileView {
  purpose: 'mta-sts-policy';
  url: string;
  contentType: 'text/plain';
  contents: string;
  note: string;
}

/** Splits a TXT value into character-strings of at most 255 bytes (DKIM keys of RSA-2048 need two). */
export function txtStrings(value: string): string[] {
  const out: string[] = [];
  const bytes = Buffer.from(value, 'utf8');
  for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255).toString('utf8'));
  return out.length ? out : [''];
}

function txt(purpose: string, name: string, value: string, required: boolean, note?: string): DnsRecordView {
  const strings = txtStrings(value);
  const quoted = strings.map((s) => `"${s.replace(/(["\\])/g, '\\$1')}"`);
  const zone = `${name}. IN TXT ${quoted.length > 1 ? `( ${quoted.join(' ')} )` : quoted[0]}`;
  return { purpose, name, type: 'TXT', value, strings, zone, required, ...(note ? { note } : {}) };
}

/**
 * Selector names by month, e.g. `k2026m11` (rsa) and `e2026m11` (ed25519), with a letter added when taken.
 * @throws KurirError CONFLICT when all 25 of the month's names (`k2026m11`, `k2026m11b` … `k2026m11z`) are taken
 */
export function nextSelector(algorithm: 'rsa' | 'ed25519', now: number, taken: ReadonlySet<string>): string {
  const d = new Date(now);
  const base = `${algorithm === 'rsa' ? 'k' : 'e'}${d.getUTCFullYear()}m${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
  if (!taken.has(base)) return base;
  for (const suffix of 'bcdefghijklmnopqrstuvwxyz') if (!taken.has(base + suffix)) return base + suffix;
  const next = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString().slice(0, 10);
  throw new KurirError(
    'CONFLICT',
    `selector: no free ${algorithm} selector left this month: ${base} and ${base}b … ${base}z were all used by this domain (selectors are never reused); rotate again from ${next}`,
    { field: 'selector' },
  );
}

/** Every selector the domain has used: its keys' and those of its removed incarnations (usedSelectors). */
export function selectorsUsed(d: Pick<DomainRecord, 'keys' | 'usedSelectors'>): string[] {
  return [...(d.usedSelectors ?? []), ...d.keys.map((k) => k.selector)];
}

/** How many months of used selectors a domain remembers: nextSelector only names the current month's. */
const REMEMBERED_MONTHS = 12;

/**
 * The selectors of `used` that a selector named now could still collide with: those of the last
 * REMEMBERED_MONTHS months (a gateway's clock may lag), sorted; older names are forgotten (bounded).
 */
export function recentSelectors(used: Iterable<string>, now: number): string[] {
  const d = new Date(now);
  const current = d.getUTCFullYear() * 12 + d.getUTCMonth();
  const recent = [...new Set(used)].filter((s) => {
    const m = /^[a-z](\d{4})m(\d{2})/.exec(s);
    return !m || Number(m[1]) * 12 + Number(m[2]) - 1 > current - REMEMBERED_MONTHS;
  });
  return recent.sort();
}

/** The DKIM record of one key. */
export function dkimRecord(domain: string, key: Pick<DomainKeyRecord, 'selector' | 'algorithm' | 'publicKeyBase64' | 'status'>): DnsRecordView {
  const note =
    key.status === 'pending'
      ? 'publish, then verify: signing starts with this key once DNS serves it'
      : key.status === 'retired'
        ? 'keep published (messages signed with it may still be verified)'
        : undefined;
  return txt('dkim', `${key.selector}._domainkey.${domain}`, dnsRecordFor(key.algorithm, key.publicKeyBase64), key.status !== 'retired', note);
}

/**
 * Every record a domain needs: the DKIM record of each pending, active and retired key; SPF with the
 * configured sending IPs; DMARC at p=none with aggregate reports to Kurir's address at the bounce domain
 * (and the authorization record RFC 7489 7.1 requires at the report domain); the bounce domain's MX and SPF
 * (the MAIL FROM domain; not when it is the sender domain itself); MTA-STS and TLS-RPT (reportRecords).
 */
export function recordsFor(d: DomainRecord, config: Config, now: number): DnsRecordView[] {
  const out: DnsRecordView[] = [];
  for (const k of d.keys) {
    if (k.status === 'revoked') continue;
    if (k.status === 'retired' && k.keepPublishedUntil !== undefined && now >= k.keepPublishedUntil) continue;
    out.push(dkimRecord(d.name, k));
  }
  out.push(spfRecord('spf', d.name, config));
  const bounce = config.bounce.domain;
  const rua = `${config.domainKeys.dmarcReportLocalPart}@${bounce}`;
  out.push(txt('dmarc', `_dmarc.${d.name}`, `v=DMARC1; p=none; rua=mailto:${rua}`, false, 'start at p=none; tighten once reports show only your sources'));
  if (bounce !== d.name && !bounce.endsWith(`.${d.name}`)) {
    out.push(txt('dmarc-report-authorization', `${d.name}._report._dmarc.${bounce}`, 'v=DMARC1', false, `lets ${bounce} receive this domain's reports`));
  }
  out.push(bounceMxRecord(config));
  if (bounce !== d.name) out.push(spfRecord('bounce-spf', bounce, config));
  out.push(...reportRecords(d.name, config, mtaStsMxFor(d, config)));
  return out;
}

/**
 * The SPF record of `name` authorising the sending IPs: the sender domain's (`spf`) or the bounce domain's
 * (`bounce-spf`: the MAIL FROM domain, which receivers, the doctor and the self-check evaluate SPF for).
 */
export function spfRecord(purpose: 'spf' | 'bounce-spf', name: string, config: Config): DnsRecordView {
  const ips = allSendingIps(config.domainKeys.sendingIps, config.delivery.ipPools);
  const role = purpose === 'bounce-spf' ? 'the MAIL FROM (bounce) domain: receivers check SPF here; ' : '';
  if (!ips.length) {
    return txt(
      purpose,
      name,
      'v=spf1 -all',
      false,
      `${role}domainKeys.sendingIps is empty (and no source-IP pools): add your sending IPs as ip4:/ip6: mechanisms before publishing`,
    );
  }
  const mechanisms = ips.map((ip) => `${ip.includes(':') ? 'ip6' : 'ip4'}:${ip}`).join(' ');
  return txt(purpose, name, `v=spf1 ${mechanisms} -all`, false, `${role}merge with an existing SPF record: a domain may have only one`);
}

/** The bounce domain's MX: the host running role feedback. */
export function bounceMxRecord(config: Config): DnsRecordView {
  const bounce = config.bounce.domain;
  return {
    purpose: 'bounce-mx',
    name: bounce,
    type: 'MX',
    value: `10 ${config.hostname}`,
    zone: `${bounce}. IN MX 10 ${config.hostname}.`,
    required: false,
    note: 'the host running role feedback (bounce MX) on port 25',
  };
}

/**
 * The mx: lines of a domain's MTA-STS policy: the domain's own list (PATCH mtaStsMx), else domainKeys.mtaSts.mx,
 * else `hostname`, the MX Kurir runs (bounce MX) — right when the domain's mail is received by Kurir's MX host.
 */
export function mtaStsMxFor(d: Pick<DomainRecord, 'mtaStsMx'> | null, config: Config): string[] {
  if (d?.mtaStsMx?.length) return d.mtaStsMx;
  return config.domainKeys.mtaSts.mx.length ? config.domainKeys.mtaSts.mx : [config.hostname];
}

/** The MTA-STS policy (mode testing) for `domain` and its id: a digest of the text, so it changes exactly when the policy does. */
export function mtaStsPolicy(domain: string, mx: string[], config: Config): PolicyFileView & { id: string } {
  const contents = [
    'version: STSv1',
    'mode: testing',
    ...mx.map((m) => `mx: ${m.toLowerCase()}`),
    `max_age: ${config.domainKeys.mtaSts.maxAgeSeconds}`,
    '',
  ].join('\n');
  return {
    purpose: 'mta-sts-policy',
    url: `https://mta-sts.${domain}/.well-known/mta-sts.txt`,
    contentType: 'text/plain',
    contents,
    note: `serve over HTTPS with a certificate for mta-sts.${domain} before publishing _mta-sts.${domain}; mx: must list every MX host of ${domain}; switch to mode: enforce (and a new id) once TLS reports are clean`,
    id: createHash('sha256').update(contents).digest('hex').slice(0, 20),
  };
}

/**
 * MTA-STS (`_mta-sts.<domain>` TXT with the policy id) and TLS-RPT (`_smtp._tls.<domain>` TXT, reports to
 * `<domainKeys.tlsReportLocalPart>@<bounce.domain>`, the same style as the DMARC rua).
 */
export function reportRecords(domain: string, config: Config, mx: string[]): DnsRecordView[] {
  const policy = mtaStsPolicy(domain, mx, config);
  const rua = `${config.domainKeys.tlsReportLocalPart}@${config.bounce.domain}`;
  return [
    txt('mta-sts', `_mta-sts.${domain}`, `v=STSv1; id=${policy.id}`, false, `announces the policy at ${policy.url} (see files); a new id when it changes`),
    txt('tls-rpt', `_smtp._tls.${domain}`, `v=TLSRPTv1; rua=mailto:${rua}`, false, 'SMTP TLS reports (RFC 8460) about mail delivered to this domain'),
  ];
}

/** The files a domain needs served over HTTPS: its MTA-STS policy. */
export function filesFor(d: DomainRecord, config: Config): PolicyFileView[] {
  const { id: _id, ...file } = mtaStsPolicy(d.name, mtaStsMxFor(d, config), config);
  return [file];
}
