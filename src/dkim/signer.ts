import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { dkimBody } from 'mailauth/lib/dkim/body/index.js';
import { generateCanonicalizedHeader } from 'mailauth/lib/dkim/header/index.js';
import { formatSignatureHeaderLine, getSigningHeaderLines, parseHeaders } from 'mailauth/lib/tools.js';
import { createSigningKey, type DkimAlgorithm, type SigningKey } from './keys.js';

/*
 * Why this does not call mailauth's dkimSign:
 * - dkimSign derives h= from the fields present in the message, so it cannot over-sign (list a
 *   field one more time than it occurs); duplicated names in headerList are ignored.
 * - dkimSign accepts only PEM and re-parses it for every signature (a KeyObject ends up in
 *   `errors`), which costs roughly 3x the RSA signing itself.
 * So the signer composes mailauth's own header parser, relaxed body hasher, header canonicalizer
 * and header formatter (the same code dkimSign runs) and signs with a KeyObject parsed once.
 */

/** A signing key for one domain and selector, as configured. */
export interface DkimKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKeyPem: string;
}

export type DkimSignatureAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

/** One DKIM-Signature header that was added. */
export interface DkimSignatureInfo {
  domain: string;
  selector: string;
  algorithm: DkimSignatureAlgorithm;
}

export interface DkimSignResult {
  /** The message with the DKIM-Signature header(s) prepended (line endings normalised to CRLF). */
  message: Buffer;
  signatures: DkimSignatureInfo[];
}

export interface DkimSigner {
  /** Signs `raw` with every key of `domain`: rsa-sha256 first, then ed25519-sha256 if configured. */
  sign(raw: Buffer, domain: string): Promise<DkimSignResult>;
  hasKey(domain: string): boolean;
  /** Domains that have at least one key, sorted. */
  domains(): string[];
}

export type DkimErrorCode = 'DKIM_NO_KEY' | 'DKIM_SIGN_FAILED';

/** A signing refusal; the caller maps `code` to its own error registry. */
export class DkimError extends Error {
  readonly code: DkimErrorCode;
  readonly domain: string;

  constructor(code: DkimErrorCode, domain: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DkimError';
    this.code = code;
    this.domain = domain;
  }
}

/** Header fields signed when present (every instance), in h= order. */
export const SIGNED_HEADERS = [
  'From',
  'To',
  'Cc',
  'Subject',
  'Date',
  'Message-ID',
  'Reply-To',
  'MIME-Version',
  'Content-Type',
  'Content-Transfer-Encoding',
  'In-Reply-To',
  'References',
  'Feedback-ID',
] as const;

/**
 * Fields listed once more in h= than they occur. A verifier binds the surplus entry to a missing
 * field (the empty string), so any From or Subject added after signing, wherever it is inserted,
 * changes the signed data and breaks the signature.
 */
export const OVERSIGNED_HEADERS = ['From', 'Subject'] as const;

const CANONICALIZATION = 'relaxed/relaxed';
const SIGNED_HEADER_LIST = SIGNED_HEADERS.join(':');
const CRLF = Buffer.from('\r\n');

/** A key parsed once, ready to sign with. */
export interface PreparedKey {
  selector: string;
  algorithm: DkimSignatureAlgorithm;
  keyObject: KeyObject;
}

/**
 * Keys that can change while the gateway runs (runtime-managed sender domains, src/domains/): asked on
 * every signature, so it must answer from memory with keys it parsed once.
 */
export interface DkimKeySource {
  /** The keys to sign `domain` with now (rsa first), or undefined when it has none. */
  keysFor(domain: string): readonly PreparedKey[] | undefined;
  domains(): string[];
}

/**
 * Parses and validates one key for signing.
 *
 * @throws Error naming the domain and selector of an invalid or mismatched key
 */
export function prepareKey(key: DkimKey): PreparedKey {
  const where = `DKIM key ${key.selector}._domainkey.${normalizeDomain(key.domain)}`;
  let parsed: SigningKey;
  try {
    parsed = createSigningKey(key.privateKeyPem);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
  }
  if (parsed.algorithm !== key.algorithm) {
    throw new Error(`${where}: configured as ${key.algorithm} but the private key is ${parsed.algorithm}`);
  }
  return { selector: key.selector, algorithm: key.algorithm === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256', keyObject: parsed.keyObject };
}

/**
 * Creates a signer over a fixed set of keys. Every PEM is parsed and validated here, once, so a bad
 * key fails at startup rather than on the first message.
 *
 * @param opts.keys at most one rsa and one ed25519 key per domain
 * @param opts.source keys that change at run time, asked for domains that `keys` does not cover
 * @param opts.clock source of the t= signing time (defaults to the system clock)
 * @throws Error naming the domain and selector of an invalid, mismatched or duplicate key
 */
export function createDkimSigner(opts: { keys: DkimKey[]; clock?: () => Date; source?: DkimKeySource }): DkimSigner {
  const clock = opts.clock ?? (() => new Date());
  const { source } = opts;
  const byDomain = new Map<string, PreparedKey[]>();

  for (const key of opts.keys) {
    const domain = normalizeDomain(key.domain);
    const prepared = prepareKey(key);
    const list = byDomain.get(domain) ?? [];
    if (list.some((k) => k.algorithm.startsWith(key.algorithm))) {
      throw new Error(`DKIM key ${key.selector}._domainkey.${domain}: domain already has an ${key.algorithm} key`);
    }
    list.push(prepared);
    // RSA first: it is the signature every receiver can verify.
    list.sort((a, b) => (a.algorithm === b.algorithm ? 0 : a.algorithm === 'rsa-sha256' ? -1 : 1));
    byDomain.set(domain, list);
  }

  return {
    async sign(raw: Buffer, domain: string): Promise<DkimSignResult> {
      const d = normalizeDomain(domain);
      const keys = byDomain.get(d) ?? source?.keysFor(d);
      if (!keys?.length) {
        throw new DkimError('DKIM_NO_KEY', d, `No DKIM key configured for domain "${d}"`);
      }
      try {
        return signWith(raw, d, keys, clock());
      } catch (err) {
        if (err instanceof DkimError) throw err;
        throw new DkimError('DKIM_SIGN_FAILED', d, `DKIM signing failed for "${d}": ${(err as Error).message}`, {
          cause: err,
        });
      }
    },
    hasKey(domain: string): boolean {
      const d = normalizeDomain(domain);
      return byDomain.has(d) || Boolean(source?.keysFor(d)?.length);
    },
    domains(): string[] {
      return [...new Set([...byDomain.keys(), ...(source?.domains() ?? [])])].sort();
    },
  };
}

function signWith(raw: Buffer, domain: string, keys: readonly PreparedKey[], signTime: Date): DkimSignResult {
  let message = toCrlf(raw);
  let split = message.indexOf('\r\n\r\n');
  if (split === -1) {
    // Header-only message: add the empty body so signer and verifiers agree on where headers end.
    message = Buffer.concat(message.subarray(-2).equals(CRLF) ? [message, CRLF] : [message, CRLF, CRLF]);
    split = message.length - 4;
  }
  const headerBlock = message.subarray(0, split + 2);
  const body = message.subarray(split + 4);

  const { parsed } = parseHeaders(headerBlock);
  if (!parsed.some((h) => h.key === 'from')) {
    throw new DkimError('DKIM_SIGN_FAILED', domain, 'Message has no From header; DKIM requires it to be signed');
  }

  const bodyHasher = dkimBody('relaxed', 'sha256', false);
  bodyHasher.update(body);
  const bodyHash = bodyHasher.digest('base64');

  const selection = getSigningHeaderLines(parsed, SIGNED_HEADER_LIST);
  // h= comes from `keys` alone, so appending names adds entries that match no field.
  const signingHeaderLines = { headers: selection.headers, keys: [selection.keys, ...OVERSIGNED_HEADERS].join(': ') };

  const headerLines: string[] = [];
  const signatures: DkimSignatureInfo[] = [];
  for (const key of keys) {
    const { canonicalizedHeader, dkimHeaderOpts } = generateCanonicalizedHeader('DKIM', signingHeaderLines, {
      signingDomain: domain,
      selector: key.selector,
      algorithm: key.algorithm,
      canonicalization: CANONICALIZATION,
      bodyHash,
      signTime,
    });
    // RFC 8463: Ed25519 signs the SHA-256 digest of the canonicalized header (PureEdDSA over the hash).
    const signature =
      key.algorithm === 'rsa-sha256'
        ? cryptoSign('sha256', canonicalizedHeader, key.keyObject)
        : cryptoSign(null, createHash('sha256').update(canonicalizedHeader).digest(), key.keyObject);
    headerLines.push(formatSignatureHeaderLine('DKIM', { ...dkimHeaderOpts, b: signature.toString('base64') }, true));
    signatures.push({ domain, selector: key.selector, algorithm: key.algorithm });
  }

  return { message: Buffer.concat([Buffer.from(`${headerLines.join('\r\n')}\r\n`, 'latin1'), message]), signatures };
}

/** Returns `buf` itself when it has no bare LF, else a copy with every bare LF turned into CRLF. */
function toCrlf(buf: Buffer): Buffer {
  let bare = 0;
  for (let i = buf.indexOf(0x0a); i !== -1; i = buf.indexOf(0x0a, i + 1)) {
    if (i === 0 || buf[i - 1] !== 0x0d) bare++;
  }
  if (bare === 0) return buf;
  const out = Buffer.allocUnsafe(buf.length + bare);
  let o = 0;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]!;
    if (c === 0x0a && (i === 0 || buf[i - 1] !== 0x0d)) out[o++] = 0x0d;
    out[o++] = c;
  }
  return out;
}

function normalizeDomain(domain: string): string {
  return domain.trim().toLowerCase().replace(/\.$/, '');
}
