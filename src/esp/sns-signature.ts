/**
 * Amazon SNS message authenticity (https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):
 * the envelope SNS POSTs to an HTTP(S) subscriber, the canonical string it signs, where the signing
 * certificate may come from, and the check itself (SignatureVersion 1 = SHA1withRSA, 2 = SHA256withRSA).
 *
 * The certificate is fetched from `SigningCertURL` only when that URL is https and its host matches the
 * configured pattern (by default `sns.<region>.amazonaws.com`), so a forged message cannot bring its own
 * certificate. Fetching is injected (`HttpGet`) and cached in process (`createCertFetcher`): tests serve a
 * self-signed certificate from a local HTTPS server; production uses fetch.
 *
 * Nothing here throws on bad input: a message that does not verify is a result with a reason.
 */
import { X509Certificate, createVerify } from 'node:crypto';

export const SNS_MESSAGE_TYPES = ['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'] as const;
export type SnsMessageType = (typeof SNS_MESSAGE_TYPES)[number];

/** The JSON body of an SNS HTTP(S) delivery (the fields that are signed, and the signature). */
export interface SnsMessage {
  Type: SnsMessageType;
  MessageId: string;
  TopicArn: string;
  Message: string;
  Timestamp: string;
  SignatureVersion: string;
  Signature: string;
  SigningCertURL: string;
  Subject?: string;
  /** SubscriptionConfirmation / UnsubscribeConfirmation only. */
  SubscribeURL?: string;
  Token?: string;
  UnsubscribeURL?: string;
}

/** Why a message did not verify (also a metric label). `cert-unavailable` is ours to retry, not the sender's fault. */
export type SnsRejectReason = 'malformed' | 'unsupported-version' | 'bad-cert-url' | 'cert-unavailable' | 'cert-expired' | 'bad-signature';

export type SnsVerification = { ok: true } | { ok: false; reason: SnsRejectReason; detail: string };

/** A minimal HTTP GET: status and body text. Injected so tests stay on loopback. */
export type HttpGet = (url: string) => Promise<{ status: number; body: string }>;

/** The PEM certificate at a URL (already allowed by the caller). Rejects when it cannot be had. */
export type CertFetcher = (url: string) => Promise<string>;

const REQUIRED = ['Type', 'MessageId', 'TopicArn', 'Message', 'Timestamp', 'SignatureVersion', 'Signature', 'SigningCertURL'] as const;
const OPTIONAL = ['Subject', 'SubscribeURL', 'Token', 'UnsubscribeURL'] as const;

/** The SNS envelope of a request body, or a reason it is not one. */
export function parseSnsMessage(body: unknown): { message: SnsMessage } | { error: string } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return { error: 'body is not a JSON object' };
  const b = body as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const k of REQUIRED) {
    if (typeof b[k] !== 'string' || b[k] === '') return { error: `${k}: required string` };
    out[k] = b[k] as string;
  }
  for (const k of OPTIONAL) {
    if (b[k] === undefined || b[k] === null) continue;
    if (typeof b[k] !== 'string') return { error: `${k}: must be a string` };
    out[k] = b[k] as string;
  }
  if (!(SNS_MESSAGE_TYPES as readonly string[]).includes(out.Type))
    return { error: `Type: ${out.Type.slice(0, 40)} is not one of ${SNS_MESSAGE_TYPES.join(', ')}` };
  if (out.Type !== 'Notification' && (!out.SubscribeURL || !out.Token)) return { error: `${out.Type} without SubscribeURL and Token` };
  return { message: out as unknown as SnsMessage };
}

/** The string SNS signs: each field as `Name\nValue\n`, in byte order of the names, for the fields of its type. */
export function canonicalString(m: SnsMessage): string {
  const fields: Array<keyof SnsMessage> =
    m.Type === 'Notification'
      ? ['Message', 'MessageId', ...(m.Subject !== undefined ? (['Subject'] as const) : []), 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return fields.map((f) => `${f}\n${m[f] ?? ''}\n`).join('');
}

/** Null when `url` is an https URL whose host matches `hostPattern` (no credentials in it); otherwise why not. */
export function checkSnsUrl(url: string, hostPattern: RegExp, opts: { pem?: boolean } = {}): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'https:') return `${u.protocol} is not https:`;
  if (u.username || u.password) return 'credentials in the URL';
  if (!hostPattern.test(u.hostname)) return `host ${u.hostname.slice(0, 100)} is not an allowed SNS host`;
  if (opts.pem && !u.pathname.toLowerCase().endsWith('.pem')) return 'not a .pem certificate path';
  return null;
}

/** GET with global fetch: no redirects, bounded time and size. */
export function fetchHttpGet(opts: { timeoutMs?: number; maxBytes?: number } = {}): HttpGet {
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  return async (url) => {
    const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) });
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > maxBytes) throw new Error(`response larger than ${maxBytes} bytes`);
        chunks.push(chunk);
      }
    }
    return { status: res.status, body: Buffer.concat(chunks).toString('utf8') };
  };
}

/**
 * A certificate fetcher over `get` with an in-process cache (per URL, at most `maxEntries`, each for
 * `ttlMs`). Concurrent requests for one URL share a download; failures are not cached.
 */
export function createCertFetcher(get: HttpGet, opts: { maxEntries?: number; ttlMs?: number; now?: () => number } = {}): CertFetcher {
  const maxEntries = opts.maxEntries ?? 32;
  const ttlMs = opts.ttlMs ?? 24 * 3_600_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { pem: Promise<string>; at: number }>();
  const download = async (url: string): Promise<string> => {
    const res = await get(url);
    if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`);
    const pem = res.body.trim();
    if (!pem.startsWith('-----BEGIN CERTIFICATE-----')) throw new Error(`${url} is not a PEM certificate`);
    new X509Certificate(pem); // throws on garbage
    return pem;
  };
  return (url) => {
    const hit = cache.get(url);
    if (hit && now() - hit.at < ttlMs) return hit.pem;
    const pem = download(url);
    cache.set(url, { pem, at: now() });
    pem.catch(() => {
      if (cache.get(url)?.pem === pem) cache.delete(url);
    });
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value as string);
    return pem;
  };
}

export interface VerifyOptions {
  fetchCert: CertFetcher;
  /** Allowed hosts of SigningCertURL (and SubscribeURL). */
  certHost: RegExp;
  /** For the certificate's validity period. */
  now: number;
}

/** Checks an SNS message's signature against the certificate its (allowed) SigningCertURL serves. */
export async function verifySnsMessage(m: SnsMessage, opts: VerifyOptions): Promise<SnsVerification> {
  const algorithm = m.SignatureVersion === '1' ? 'RSA-SHA1' : m.SignatureVersion === '2' ? 'RSA-SHA256' : null;
  if (!algorithm) return { ok: false, reason: 'unsupported-version', detail: `SignatureVersion ${m.SignatureVersion.slice(0, 10)}` };
  const urlProblem = checkSnsUrl(m.SigningCertURL, opts.certHost, { pem: true });
  if (urlProblem) return { ok: false, reason: 'bad-cert-url', detail: `SigningCertURL: ${urlProblem}` };
  let pem: string;
  try {
    pem = await opts.fetchCert(m.SigningCertURL);
  } catch (err) {
    return { ok: false, reason: 'cert-unavailable', detail: `signing certificate: ${String((err as Error)?.message ?? err).slice(0, 200)}` };
  }
  try {
    const cert = new X509Certificate(pem);
    if (opts.now < Date.parse(cert.validFrom) || opts.now > Date.parse(cert.validTo)) {
      return { ok: false, reason: 'cert-expired', detail: `signing certificate valid ${cert.validFrom} – ${cert.validTo}` };
    }
    const signature = Buffer.from(m.Signature, 'base64');
    const ok = signature.length > 0 && createVerify(algorithm).update(canonicalString(m), 'utf8').verify(cert.publicKey, signature);
    return ok ? { ok: true } : { ok: false, reason: 'bad-signature', detail: `${algorithm} signature does not verify` };
  } catch (err) {
    return { ok: false, reason: 'bad-signature', detail: `signature check failed: ${String((err as Error)?.message ?? err).slice(0, 200)}` };
  }
}
