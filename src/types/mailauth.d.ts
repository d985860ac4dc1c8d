/**
 * Ambient declarations for the parts of `mailauth` (4.13.x, CommonJS) that Kurir uses.
 *
 * mailauth ships its own index.d.ts, but an ambient `declare module` takes precedence over it, so
 * these declarations are what the project type-checks against. They describe the runtime behaviour
 * observed in node_modules/mailauth/lib, which differs from the shipped typings in places:
 * - `headerList` must be a colon-separated string; an array (as the README says) is silently
 *   ignored and mailauth's default header list is signed instead.
 * - dkimSign never throws for a bad key: the failure lands in `errors` and `signatures` is "\r\n".
 * - verification results carry `algo` and `format`, not `algorithm` and `canonicalization`.
 *
 * The `mailauth/lib/tools.js` and `mailauth/lib/dkim/{body,header}/index.js` modules are internal
 * (the package has no "exports" map, so they are reachable). The DKIM signer composes them because
 * the public dkimSign can neither over-sign header fields nor reuse a parsed private key.
 */

declare module 'mailauth' {
  import type { Readable } from 'node:stream';

  /** A message: the whole RFC 5322 text as a Buffer or string, or a stream of it. */
  export type MessageInput = Readable | Buffer | string;

  /**
   * DNS lookup used instead of node:dns. Called as `resolver(name, 'TXT')` for DKIM keys and must
   * resolve like `dns.promises.resolve` (TXT → string[][]), or reject with an Error whose `code` is
   * ENOTFOUND / ENODATA when the name has no record.
   */
  export type DnsResolver = (name: string, rrtype: string) => Promise<unknown>;
  /** Same as {@link DnsResolver}; the name mailauth's own typings use. */
  export type DNSResolver = DnsResolver;

  export interface DkimSignatureData {
    signingDomain: string;
    selector: string;
    /** PEM text (or a Buffer of it), or a raw 32-byte ed25519 seed. A KeyObject is refused. */
    privateKey: string | Buffer;
    /** 'rsa-sha256', 'rsa-sha1' or 'ed25519-sha256'; derived from the key when omitted. */
    algorithm?: string;
    canonicalization?: string;
    maxBodyLength?: number;
  }

  export interface DkimSignOptions {
    signatureData: DkimSignatureData[];
    /** Ignored at runtime (only signatureData is read); accepted because mailauth's own typings require them. */
    signingDomain?: string;
    selector?: string;
    privateKey?: string | Buffer;
    canonicalization?: string;
    algorithm?: string;
    /** Colon-separated header names, e.g. "From:To:Subject". Only names present in the message land in h=. */
    headerList?: string;
    signTime?: Date | number | string;
    expires?: Date | number | string;
  }

  export interface DkimSignError {
    err: Error & { code?: string };
    type?: string;
    algorithm?: string;
    canonicalization?: string;
    selector?: string;
    signingDomain?: string;
  }

  export interface DkimSignResult {
    /** The DKIM-Signature header lines joined and terminated by CRLF ("\r\n" alone when nothing was signed). */
    signatures: string;
    errors: DkimSignError[];
    arc?: unknown;
  }

  export interface DkimVerifyOptions {
    resolver?: DnsResolver;
    /** Envelope sender; defaults to the Return-Path header. */
    sender?: string;
    /** Keys shorter than this (bits) give result "policy" (default 1024). */
    minBitLength?: number;
    /** "Now" for t=/x= checks. */
    curTime?: Date;
  }

  export type DkimResultValue = 'pass' | 'fail' | 'neutral' | 'none' | 'policy' | 'temperror' | 'permerror';

  export interface DkimVerifyEntry {
    id: string;
    signingDomain: string;
    selector: string;
    signature: string;
    /** The a= tag, e.g. "rsa-sha256". */
    algo: string;
    /** The c= tag, e.g. "relaxed/relaxed". */
    format: string;
    bodyHash: string;
    bodyHashExpecting: string;
    signingHeaders: { keys: string; headers: string[]; canonicalizedHeader: string };
    status: {
      result: DkimResultValue;
      comment: string | false;
      header: { i: string | false; s: string; a: string; b: string | false };
      aligned?: string | false;
      underSized?: number;
    };
    info: string;
    signTime: string | null;
    expiresAfter: string | null;
    signatureTimeValid: boolean;
    publicKey?: string;
    modulusLength?: number;
    rr?: string;
  }

  export interface DkimVerifyResult {
    headerFrom: string[];
    envelopeFrom: string | false;
    results: DkimVerifyEntry[];
  }

  export interface AuthenticateOptions {
    resolver?: DnsResolver;
    sender?: string;
    ip?: string;
    helo?: string;
    mta?: string;
    trustReceived?: boolean;
    minBitLength?: number;
    disableArc?: boolean;
    disableDmarc?: boolean;
    disableBimi?: boolean;
  }

  export interface AuthenticateResult {
    dkim: DkimVerifyResult;
    spf: { status: { result: string; comment?: string }; header?: string; info?: string } | false;
    dmarc: { status: { result: string; comment?: string }; policy?: string; info?: string } | false;
    arc: unknown;
    bimi: unknown;
    receivedChain?: unknown[];
    /** Authentication-Results (and Received-SPF) header lines, CRLF-terminated. */
    headers: string;
  }

  export interface DmarcOptions {
    /** The From address (or its domain). */
    headerFrom: string | string[];
    /** MAIL FROM domains whose SPF passed. */
    spfDomains: string[];
    /** Domains of passing DKIM signatures. */
    dkimDomains: Array<{ id?: string; domain: string; aligned?: string | false; underSized?: number }>;
    resolver?: DnsResolver;
  }

  export interface DmarcVerifyResult {
    status: { result: 'pass' | 'fail' | 'none' | 'temperror' | 'neutral'; comment?: string };
    domain: string;
    policy?: string;
    p?: string;
    rr?: string;
    error?: string;
  }

  /** DMARC (RFC 7489) of the From domain from SPF and DKIM results already computed; false for several From addresses. */
  export function dmarc(opts: DmarcOptions): Promise<DmarcVerifyResult | false>;
  /** Computes DKIM signature header(s) for a message; the caller prepends `signatures` to it. */
  export function dkimSign(input: MessageInput, options: DkimSignOptions): Promise<DkimSignResult>;
  /** Verifies every DKIM-Signature header of a message. */
  export function dkimVerify(input: MessageInput, options?: DkimVerifyOptions): Promise<DkimVerifyResult>;
  /** Runs DKIM, SPF, DMARC, ARC and BIMI checks for a received message. */
  export function authenticate(input: MessageInput, options?: AuthenticateOptions): Promise<AuthenticateResult>;
}

declare module 'mailauth/lib/dkim/sign.js' {
  export { dkimSign } from 'mailauth';
}

declare module 'mailauth/lib/dkim/verify.js' {
  export { dkimVerify } from 'mailauth';
}

declare module 'mailauth/lib/tools.js' {
  /** One header field as parsed by mailauth: `line` is the raw field including folded continuation lines. */
  export interface ParsedHeaderLine {
    key: string;
    casedKey: string;
    line: Buffer;
  }

  /** The header fields chosen for signing (bottom-up, every instance) and the h= value (names joined by ": "). */
  export interface SigningHeaderLines {
    keys: string;
    headers: ParsedHeaderLine[];
  }

  /** Splits a header block (without the blank separator line) into fields. */
  export function parseHeaders(buf: Buffer): { parsed: ParsedHeaderLine[]; original: Buffer };
  /** With `verify` unset: picks every field whose name is in the colon-separated list. */
  export function getSigningHeaderLines(parsed: ParsedHeaderLine[], fieldNames?: string, verify?: boolean): SigningHeaderLines;
  /** Serialises tag values (v, a, c, d, s, t, h, bh, b, …) into a `DKIM-Signature:` header, folded when asked. */
  export function formatSignatureHeaderLine(type: 'DKIM' | 'ARC' | 'AS', values: Record<string, string | number | false | undefined>, folded?: boolean): string;
  export const defaultDKIMFieldNames: string;
  /**
   * DMARC identifier alignment as mailauth's DMARC evaluation does it (organizational domains through tldts):
   * the first entry of `domainList` aligned with `fromDomain`, or false.
   */
  export function getAlignment(fromDomain: string, domainList: Array<string | { domain: string }>): { domain: string } | false;
}

declare module 'mailauth/lib/dkim/body/index.js' {
  /** Incremental body hasher applying simple or relaxed canonicalization. */
  export interface BodyHasher {
    update(chunk: Buffer): void;
    digest(encoding: 'base64'): string;
  }
  export function dkimBody(canonicalization: 'simple' | 'relaxed', hashAlgo: 'sha256' | 'sha1', maxBodyLength: number | false): BodyHasher;
}

declare module 'mailauth/lib/dkim/header/index.js' {
  import type { SigningHeaderLines } from 'mailauth/lib/tools.js';

  export interface CanonicalizeHeaderOptions {
    signingDomain: string;
    selector: string;
    algorithm: string;
    canonicalization: string;
    bodyHash: string;
    signTime?: Date;
    expires?: Date;
  }

  /**
   * Builds the bytes a DKIM signature covers (the signed fields, then the DKIM-Signature header with
   * an empty b=) and the tag values to put in the header once b= is known. h= is taken verbatim from
   * `signingHeaderLines.keys`, independently of which fields are in `signingHeaderLines.headers`.
   */
  export function generateCanonicalizedHeader(
    type: 'DKIM',
    signingHeaderLines: SigningHeaderLines,
    options: CanonicalizeHeaderOptions,
  ): { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, string | number | false | undefined> };
}

declare module 'mailauth/lib/spf/index.js' {
  import type { DnsResolver } from 'mailauth';

  export type SpfResultValue = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'permerror' | 'temperror';

  export interface SpfCheckResult {
    domain: string;
    'client-ip': string;
    status: { result: SpfResultValue; comment?: string };
    /** The SPF record evaluated (absent when there is none). */
    rr?: string;
    /** DNS-querying mechanisms counted against the RFC 7208 limit of 10 (the first TXT lookup is not counted). */
    lookups?: { limit: number; count: number; void: number };
  }

  /** Evaluates SPF (RFC 7208) of the sender's domain for `ip`; never throws (errors are permerror/temperror results). */
  export function spf(opts: {
    sender: string;
    ip: string;
    helo?: string;
    mta?: string;
    resolver?: DnsResolver;
    maxResolveCount?: number;
    maxVoidCount?: number;
  }): Promise<SpfCheckResult>;
}

declare module 'mailauth/lib/dmarc/get-dmarc-record.js' {
  import type { DnsResolver } from 'mailauth';

  /** The DMARC record's tags (names lower-cased; pct and ri as numbers), `rr` the record text. */
  export interface DmarcRecord {
    v?: string;
    p?: string;
    sp?: string;
    adkim?: string;
    aspf?: string;
    rua?: string;
    ruf?: string;
    pct?: number;
    rr: string;
    /** True when the record was found at the organizational domain, not at the domain itself. */
    isOrgRecord: boolean;
    [tag: string]: unknown;
  }

  /** The one v=DMARC1 record of `_dmarc.<domain>` (else of the organizational domain); false for none or several. */
  const getDmarcRecord: (domain: string, resolver?: DnsResolver) => Promise<DmarcRecord | false>;
  export default getDmarcRecord;
}
