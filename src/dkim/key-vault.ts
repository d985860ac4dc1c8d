import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/**
 * DKIM private keys of runtime-managed sender domains are stored in Redis sealed with AES-256-GCM under a
 * master key (32 bytes) that only the gateways hold. A sealed value is `v1:<keyId>:<iv>:<tag>:<ciphertext>`
 * (base64 parts); `keyId` names the master key that sealed it, so a vault holding the current and the
 * previous master key opens both during a master-key rotation, and seals with the current one only.
 * The additional authenticated data binds a ciphertext to its domain and selector: a sealed key copied to
 * another domain's record does not open.
 */
export interface KeyVault {
  /** Id (16 hex digits of SHA-256) of the master key that seals. */
  readonly keyId: string;
  /** Seals a PEM under the current master key, bound to `bind` (the domain and selector): {@link open} needs the same. */
  seal(privateKeyPem: string, bind: string): string;
  /** @throws Error when no master key of this vault sealed it, or it was altered */
  open(sealed: string, bind: string): string;
  /** Whether `sealed` was sealed under the current master key (a rewrap leaves it alone). */
  isCurrent(sealed: string): boolean;
}

/** Where the master keys come from: config `domainKeys` (the config loader reads the environment). */
export interface MasterKeySource {
  masterKey: string;
  masterKeyFile: string;
  previousMasterKey: string;
  previousMasterKeyFile: string;
}

const FORMAT = 'v1';

/** The additional authenticated data binding a sealed key to its domain and selector. */
export const keyBinding = (domain: string, selector: string): string => `${domain}/${selector}`;

/**
 * Parses a master key given as 64 hex digits or as base64 of 32 bytes.
 *
 * @throws Error naming `what` (the config key) without echoing the value
 */
export function parseMasterKey(text: string, what: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-f]{64}$/i.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(t)) {
    const b = Buffer.from(t, 'base64');
    if (b.length === 32) return b;
  }
  throw new Error(`${what}: a master key must be 32 bytes written as 64 hex digits or base64 (e.g. openssl rand -hex 32)`);
}

/** Id of a master key: safe to show and store, it reveals nothing about the key. */
export function masterKeyId(key: Buffer): string {
  return createHash('sha256').update('kurir-dkim-master-key').update(key).digest('hex').slice(0, 16);
}

/** Generates a new master key as 64 hex digits. */
export function generateMasterKey(): string {
  return randomBytes(32).toString('hex');
}

/** Builds a vault from 32-byte master keys: the first seals, every one opens. */
export function createKeyVault(current: Buffer, previous: Buffer[] = []): KeyVault {
  const byId = new Map<string, Buffer>();
  for (const k of [current, ...previous]) byId.set(masterKeyId(k), k);
  const keyId = masterKeyId(current);
  return {
    keyId,
    seal(pem, bind) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', current, iv);
      cipher.setAAD(Buffer.from(bind, 'utf8'));
      const ct = Buffer.concat([cipher.update(pem, 'utf8'), cipher.final()]);
      return [FORMAT, keyId, iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
    },
    open(sealed, bind) {
      const [format, id, iv, tag, ct] = sealed.split(':');
      if (format !== FORMAT || !id || !iv || !tag || !ct) throw new Error('sealed DKIM key has an unknown format');
      const key = byId.get(id);
      if (!key) throw new Error(`sealed under master key ${id}, which this gateway does not hold (domainKeys.masterKey / previousMasterKey)`);
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64'));
      decipher.setAAD(Buffer.from(bind, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      try {
        return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
      } catch (err) {
        throw new Error(`sealed DKIM key of ${bind} does not open under master key ${id}: altered or moved`, { cause: err });
      }
    },
    isCurrent: (sealed) => sealed.split(':')[1] === keyId,
  };
}

async function keyFrom(value: string, file: string, what: string): Promise<Buffer | null> {
  if (value && file) throw new Error(`${what}: set either the key or the key file, not both`);
  if (value) return parseMasterKey(value, what);
  if (!file) return null;
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`${what}File (${file}): ${err.code === 'ENOENT' ? 'file not found' : err.message}`);
  });
  return parseMasterKey(text, `${what}File (${file})`);
}

/**
 * The vault of the configured master keys, or null when none is configured (runtime-managed domains are
 * then refused with a message naming the setting).
 */
export async function loadKeyVault(src: MasterKeySource): Promise<KeyVault | null> {
  const current = await keyFrom(src.masterKey, src.masterKeyFile, 'domainKeys.masterKey');
  const previous = await keyFrom(src.previousMasterKey, src.previousMasterKeyFile, 'domainKeys.previousMasterKey');
  if (!current) {
    if (previous) throw new Error('domainKeys.previousMasterKey is set but domainKeys.masterKey is not');
    return null;
  }
  return createKeyVault(current, previous ? [previous] : []);
}
