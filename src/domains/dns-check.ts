import type { DomainKeyRecord } from '../store/domain-store.js';

/** The lookups a DNS check needs (src/delivery/resolver.ts DnsResolver has them). */
export interface TxtResolver {
  resolveTxt(name: string): Promise<string[][]>;
}

/** Tags of a DKIM key record (`v=DKIM1; k=rsa; p=...`), names lower-cased, whitespace removed from values. */
export function parseTags(text: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of text.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    tags.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).replace(/\s+/g, ''));
  }
  return tags;
}

function lookupProblem(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ENOTFOUND') return 'the name does not exist (NXDOMAIN)';
  if (code === 'ENODATA') return 'no TXT record at this name';
  return `the lookup failed (${code ?? (err as Error).message}); try again`;
}

/** A TXT value as an admin would recognise it in the message, cut at 60 characters. */
function shown(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

/**
 * Whether DNS serves this key's record: exactly one TXT record at `<selector>._domainkey.<domain>`, a DKIM
 * record whose v= (when present) is DKIM1 and its first tag (RFC 6376 3.6.1), whose p= is the key's public
 * key and whose k= (default rsa) its algorithm. Another TXT record at the name fails too: receivers (e.g.
 * mailauth) read the first TXT record they get, which may be that one. Answers null when it matches, else
 * what is wrong in words an admin can act on. `verify` and the doctor's `dkim:<selector>` both use it.
 */
export async function checkDkimRecord(
  resolver: TxtResolver,
  domain: string,
  key: Pick<DomainKeyRecord, 'selector' | 'algorithm' | 'publicKeyBase64'>,
): Promise<string | null> {
  return (await dkimRecordProblem(resolver, domain, key))?.problem ?? null;
}

/**
 * checkDkimRecord with the kind of problem: `lookupFailed` when DNS did not answer (SERVFAIL, timeout, …),
 * so nothing is known about the record and the right advice is to try again, not to publish it.
 */
export async function dkimRecordProblem(
  resolver: TxtResolver,
  domain: string,
  key: Pick<DomainKeyRecord, 'selector' | 'algorithm' | 'publicKeyBase64'>,
): Promise<{ problem: string; lookupFailed: boolean } | null> {
  const name = `${key.selector}._domainkey.${domain}`;
  let answers: string[][];
  try {
    answers = await resolver.resolveTxt(name);
  } catch (err) {
    const code = (err as { code?: string }).code;
    return { problem: `DKIM ${name} TXT: ${lookupProblem(err)}`, lookupFailed: code !== 'ENOTFOUND' && code !== 'ENODATA' };
  }
  const problem = recordProblem(name, answers, key);
  return problem ? { problem, lookupFailed: false } : null;
}

/** What is wrong with the TXT answers at `name` for `key`, or null when they match. */
function recordProblem(name: string, answers: string[][], key: Pick<DomainKeyRecord, 'algorithm' | 'publicKeyBase64'>): string | null {
  const texts = answers.map((chunks) => chunks.join(''));
  const records = texts.filter((t) => /(^|;)\s*(v=DKIM|p=)/i.test(t));
  if (!records.length) return `DKIM ${name} TXT: no DKIM record (v=DKIM1; k=...; p=...) among ${answers.length} TXT record(s)`;
  if (records.length > 1) return `DKIM ${name} TXT: ${records.length} DKIM records; publish exactly one`;
  const others = texts.filter((t) => t !== records[0]);
  if (others.length) {
    return `DKIM ${name} TXT: also publishes ${others.map(shown).join(', ')} besides the DKIM record; receivers may read it instead: remove it (exactly one TXT record at this name)`;
  }
  const tags = parseTags(records[0]);
  const v = tags.get('v');
  if (v !== undefined && v !== 'DKIM1') return `DKIM ${name} TXT: v=${v}, receivers accept only v=DKIM1 (or no v= tag)`;
  if (v !== undefined && [...tags.keys()][0] !== 'v') return `DKIM ${name} TXT: v=DKIM1 must be the record's first tag (RFC 6376 3.6.1)`;
  const p = tags.get('p') ?? '';
  if (!p) return `DKIM ${name} TXT: p= is empty (the key is revoked in DNS)`;
  const k = (tags.get('k') || 'rsa').toLowerCase();
  if (k !== key.algorithm) return `DKIM ${name} TXT: k=${k} but this key is ${key.algorithm}`;
  if (p !== key.publicKeyBase64) return `DKIM ${name} TXT: publishes a different public key than Kurir's private key (p= does not match)`;
  return null;
}
