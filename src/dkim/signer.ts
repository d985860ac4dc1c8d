import { createSigningKey, type DkimAlgorithm, type SigningKey } from './keys.js';
import { DkimError, type DkimSignatureInfo, normalizeMessage, type PreparedKey, signHeaders } from './sign-core.js';

export {
  DkimError,
  type DkimErrorCode,
  type DkimSignatureAlgorithm,
  type DkimSignatureInfo,
  OVERSIGNED_HEADERS,
  type PreparedKey,
  SIGNED_HEADERS,
} from './sign-core.js';

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

export interface DkimSignResult {
  /** The message with the DKIM-Signature header(s) prepended (line endings normalised to CRLF). */
  message: Buffer;
  signatures: DkimSignatureInfo[];
}

export interface DkimSigner {
  /** Signs `raw` with every key of `domain`: rsa-sha256 first, then ed25519-sha256 if configured. */
  sign(raw: Buffer, domain: string): Promise<DkimSignResult>;
  /** Whether `domain` (any case) has a key to sign with now, configured or runtime-managed. */
  hasKey(domain: string): boolean;
  /** Domains that have at least one key, sorted. */
  domains(): string[];
}

/**
 * Keys that can change while the gateway runs (runtime-managed sender domains, src/domains/): asked on
 * every signature, so it must answer from memory with keys it parsed once.
 */
export interface DkimKeySource {
  /** The keys to sign `domain` with now (rsa first), or undefined when it has none. */
  keysFor(domain: string): readonly PreparedKey[] | undefined;
  /** The domains with at least one key to sign with now. */
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
 * Where signatures are computed: on the calling thread (the default) or in a pool of signing threads
 * (sign-pool.ts). Gets a message already normalised by `normalizeMessage`; answers the DKIM-Signature
 * header lines only. Throws DkimError for refusals; any other error becomes DKIM_SIGN_FAILED.
 */
export interface SigningEngine {
  /** The DKIM-Signature header lines of `message` for each of `keys`, in their order, signed at `signTime` (t=). */
  sign(message: Buffer, domain: string, keys: readonly PreparedKey[], signTime: Date): Promise<{ headers: string; signatures: DkimSignatureInfo[] }>;
}

/** A signer that can list the keys it may sign with now (for a pool to drop revoked ones). */
export interface KeyedDkimSigner extends DkimSigner {
  /** Every key of the configured and runtime domains, as signing would use them now. */
  liveKeys(): PreparedKey[];
}

const mainThread: SigningEngine = {
  sign: async (message, domain, keys, signTime) => signHeaders(message, domain, keys, signTime),
};

/**
 * Creates a signer over a fixed set of keys. Every PEM is parsed and validated here, once, so a bad
 * key fails at startup rather than on the first message.
 *
 * @param opts.keys at most one rsa and one ed25519 key per domain
 * @param opts.source keys that change at run time, asked for domains that `keys` does not cover
 * @param opts.clock source of the t= signing time (defaults to the system clock)
 * @param opts.engine where to compute signatures (defaults to this thread)
 * @throws Error naming the domain and selector of an invalid, mismatched or duplicate key
 */
export function createDkimSigner(opts: { keys: DkimKey[]; clock?: () => Date; source?: DkimKeySource; engine?: SigningEngine }): KeyedDkimSigner {
  const clock = opts.clock ?? (() => new Date());
  const { source } = opts;
  const engine = opts.engine ?? mainThread;
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
  const keysFor = (d: string) => byDomain.get(d) ?? source?.keysFor(d);

  return {
    async sign(raw: Buffer, domain: string): Promise<DkimSignResult> {
      const d = normalizeDomain(domain);
      const keys = keysFor(d);
      if (!keys?.length) {
        throw new DkimError('DKIM_NO_KEY', d, `No DKIM key configured for domain "${d}"`);
      }
      try {
        const message = normalizeMessage(raw);
        const { headers, signatures } = await engine.sign(message, d, keys, clock());
        return { message: Buffer.concat([Buffer.from(headers, 'latin1'), message]), signatures };
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
    liveKeys(): PreparedKey[] {
      return this.domains().flatMap((d) => [...(keysFor(d) ?? [])]);
    },
  };
}

function normalizeDomain(domain: string): string {
  return domain.trim().toLowerCase().replace(/\.$/, '');
}
