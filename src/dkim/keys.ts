import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Key types DKIM defines: RSA (RFC 6376) and Ed25519 (RFC 8463). */
export type DkimAlgorithm = 'rsa' | 'ed25519';

/** RFC 8301 forbids verifiers from accepting RSA keys shorter than 1024 bits. */
export const MIN_RSA_BITS = 1024;

/** A freshly generated key pair in the forms operators need: PEM to store, base64 to publish. */
export interface GeneratedDkimKey {
  privateKeyPem: string;
  /** SPKI DER in base64 for rsa; the raw 32-byte public key in base64 for ed25519 (RFC 8463). */
  publicKeyBase64: string;
}

/** A validated private key and what DNS must publish for it. */
export interface LoadedDkimKey {
  pem: string;
  algorithm: DkimAlgorithm;
  /** RSA modulus length; absent for ed25519. */
  bits?: number;
  publicKeyBase64: string;
}

/** A validated private key parsed once, ready for crypto.sign. */
export interface SigningKey {
  keyObject: KeyObject;
  algorithm: DkimAlgorithm;
  bits?: number;
}

/**
 * Generates a DKIM key pair.
 *
 * @param algorithm `rsa` or `ed25519`
 * @param bits RSA modulus length (ignored for ed25519); at least 1024, 2048 recommended
 * @returns the PKCS#8 PEM private key and the base64 public key for the DNS record's p= tag
 */
export function generateDkimKey(algorithm: DkimAlgorithm, bits = 2048): GeneratedDkimKey {
  if (algorithm === 'rsa') {
    if (!Number.isInteger(bits) || bits < MIN_RSA_BITS) {
      throw new Error(`DKIM RSA key size must be an integer of at least ${MIN_RSA_BITS} bits, got ${bits}`);
    }
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: bits,
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    return { privateKeyPem: privateKey, publicKeyBase64: publicKey.toString('base64') };
  }
  if (algorithm === 'ed25519') {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519', {
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    return { privateKeyPem: privateKey, publicKeyBase64: publicKeyBase64Of(createPublicKey(publicKey), 'ed25519') };
  }
  throw new Error(`Unsupported DKIM algorithm "${String(algorithm)}" (expected "rsa" or "ed25519")`);
}

/**
 * Builds the TXT record value to publish at `<selector>._domainkey.<domain>`.
 * RSA-2048 values exceed 255 bytes, so the DNS zone must split them into several character-strings.
 *
 * @example dnsRecordFor('rsa', 'MIIBIjAN...') // 'v=DKIM1; k=rsa; p=MIIBIjAN...'
 */
export function dnsRecordFor(algorithm: DkimAlgorithm, publicKeyBase64: string): string {
  if (algorithm !== 'rsa' && algorithm !== 'ed25519') {
    throw new Error(`Unsupported DKIM algorithm "${String(algorithm)}" (expected "rsa" or "ed25519")`);
  }
  const p = publicKeyBase64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(p)) {
    throw new Error('DKIM public key must be non-empty base64');
  }
  return `v=DKIM1; k=${algorithm}; p=${p}`;
}

/**
 * Parses and validates a PEM private key for DKIM signing, keeping the parsed KeyObject so signing
 * does not re-parse the PEM for every message.
 *
 * @throws Error naming the problem: not PEM, a public key, encrypted, unsupported type, or RSA < 1024 bits
 */
export function createSigningKey(pem: string): SigningKey {
  if (typeof pem !== 'string' || !/-----BEGIN [A-Z0-9 ]+-----/.test(pem)) {
    throw new Error('DKIM private key is not PEM text (expected "-----BEGIN PRIVATE KEY-----")');
  }
  if (/-----BEGIN (RSA )?PUBLIC KEY-----/.test(pem) && !/PRIVATE KEY-----/.test(pem)) {
    throw new Error('DKIM private key PEM holds a public key, not a private key');
  }
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    throw new Error('DKIM private key is encrypted; store it unencrypted with file mode 0600');
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new Error(`DKIM private key could not be parsed: ${(err as Error).message}`, { cause: err });
  }
  const type = keyObject.asymmetricKeyType;
  if (type === 'ed25519') return { keyObject, algorithm: 'ed25519' };
  if (type === 'rsa') {
    const bits = keyObject.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) {
      throw new Error(`DKIM RSA private key is ${bits} bits; at least ${MIN_RSA_BITS} are required`);
    }
    return { keyObject, algorithm: 'rsa', bits };
  }
  // rsa-pss keys cannot produce the RSASSA-PKCS1-v1_5 signatures rsa-sha256 requires.
  throw new Error(`DKIM private key type "${type ?? 'unknown'}" is not supported (expected rsa or ed25519)`);
}

/**
 * Parses and validates a PEM private key and derives the public key to publish.
 *
 * @throws Error naming the problem if it is not an rsa (≥1024 bits) or ed25519 private key
 */
export function loadPrivateKey(pem: string): LoadedDkimKey {
  const { keyObject, algorithm, bits } = createSigningKey(pem);
  const publicKeyBase64 = publicKeyBase64Of(createPublicKey(keyObject), algorithm);
  return bits === undefined ? { pem, algorithm, publicKeyBase64 } : { pem, algorithm, bits, publicKeyBase64 };
}

/**
 * Reads a PEM private key file, or generates one when the file does not exist (creating parent
 * directories; the file is written with mode 0600 and never overwritten).
 *
 * @throws Error if the file exists but holds a key of another algorithm, or is not a valid key
 */
export async function loadOrCreateKeyFile(path: string, algorithm: DkimAlgorithm): Promise<LoadedDkimKey & { created: boolean }> {
  let pem: string | undefined;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }

  if (pem === undefined) {
    const generated = generateDkimKey(algorithm);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    try {
      // 'wx' so that a concurrent starter's key is never clobbered.
      await writeFile(path, generated.privateKeyPem, { mode: 0o600, flag: 'wx' });
      return { ...loadPrivateKey(generated.privateKeyPem), created: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      pem = await readFile(path, 'utf8');
    }
  }

  let loaded: LoadedDkimKey;
  try {
    loaded = loadPrivateKey(pem);
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
  }
  if (loaded.algorithm !== algorithm) {
    throw new Error(`${path}: holds an ${loaded.algorithm} key but ${algorithm} is configured`);
  }
  return { ...loaded, created: false };
}

function publicKeyBase64Of(publicKey: KeyObject, algorithm: DkimAlgorithm): string {
  if (algorithm === 'rsa') {
    return publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  }
  // RFC 8463 publishes the bare 32-byte key, not the SPKI wrapper; JWK "x" is exactly that key.
  const x = publicKey.export({ format: 'jwk' }).x;
  if (!x) throw new Error('ed25519 public key export returned no key material');
  return Buffer.from(x, 'base64url').toString('base64');
}
