import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { dkimBody } from 'mailauth/lib/dkim/body/index.js';
import { generateCanonicalizedHeader } from 'mailauth/lib/dkim/header/index.js';
import { formatSignatureHeaderLine, getSigningHeaderLines, parseHeaders } from 'mailauth/lib/tools.js';

/*
 * The signing itself, shared by the main-thread signer (signer.ts) and the signing threads
 * (sign-worker.ts), so both produce the same bytes. Why it does not call mailauth's dkimSign: see signer.ts.
 */

export type DkimSignatureAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

/** One DKIM-Signature header that was added. */
export interface DkimSignatureInfo {
  domain: string;
  selector: string;
  algorithm: DkimSignatureAlgorithm;
}

/** DKIM_UNAVAILABLE: a signing thread stopped with the signature in flight; the caller may retry. */
export type DkimErrorCode = 'DKIM_NO_KEY' | 'DKIM_SIGN_FAILED' | 'DKIM_UNAVAILABLE';

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

/** A key parsed once, ready to sign with. */
export interface PreparedKey {
  selector: string;
  algorithm: DkimSignatureAlgorithm;
  keyObject: KeyObject;
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

/**
 * The message as it will be signed and stored: bare LF turned into CRLF, and the empty body added to a
 * header-only message so signer and verifiers agree on where the headers end. Returns `raw` itself when
 * nothing changes.
 */
export function normalizeMessage(raw: Buffer): Buffer {
  const message = toCrlf(raw);
  if (message.indexOf('\r\n\r\n') !== -1) return message;
  return Buffer.concat(message.subarray(-2).equals(CRLF) ? [message, CRLF] : [message, CRLF, CRLF]);
}

/**
 * Signs a message already passed through `normalizeMessage` with each of `keys`, in order.
 *
 * @returns the DKIM-Signature header lines, each ending in CRLF, to prepend to `message`
 * @throws DkimError DKIM_SIGN_FAILED when the message has no From header
 */
export function signHeaders(
  message: Uint8Array,
  domain: string,
  keys: readonly PreparedKey[],
  signTime: Date,
): { headers: string; signatures: DkimSignatureInfo[] } {
  const buf = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  const split = buf.indexOf('\r\n\r\n');
  const headerBlock = buf.subarray(0, split + 2);
  const body = buf.subarray(split + 4);

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
  return { headers: `${headerLines.join('\r\n')}\r\n`, signatures };
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
