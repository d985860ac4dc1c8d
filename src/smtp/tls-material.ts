/**
 * TLS key and certificate for the SMTP submission listeners (STARTTLS and implicit TLS).
 *
 * Configured files (`smtp.tls.keyFile` / `smtp.tls.certFile`) are used as they are; a file that cannot be
 * read or parsed stops the start with a message naming the config key and the path. Without configured
 * files, a self-signed certificate for `hostname` is generated into `<dataDir>/tls/` on first start
 * (key file mode 0600) and reused afterwards, until it expires or no longer matches its key.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/** PEM-encoded private key and certificate (chain). */
export interface TlsMaterial {
  key: string;
  cert: string;
}

/** Validity of a generated self-signed certificate. */
const SELF_SIGNED_DAYS = 825;

/** Parses the pair, throwing a message naming what is wrong. Returns the certificate's expiry. */
function inspect(material: TlsMaterial, where: { key: string; cert: string }): { validTo: Date; subject: string } {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(material.cert);
  } catch (err) {
    throw new Error(`${where.cert}: not a PEM certificate (${(err as Error).message})`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(material.key));
  } catch (err) {
    throw new Error(`${where.key}: not a PEM private key (${(err as Error).message})`);
  }
  if (!matches) throw new Error(`${where.key} does not belong to the certificate in ${where.cert}`);
  return { validTo: new Date(x509.validTo), subject: x509.subject };
}

async function readConfigured(key: 'smtp.tls.keyFile' | 'smtp.tls.certFile', file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'file not found' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new ConfigError(`${key} = ${JSON.stringify(file)}: cannot read the file (${why})`);
  }
}

/** Reads a file, or returns null when it does not exist. */
async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Writes through a temporary file and a rename, so a crash never leaves half a key behind. */
async function writeAtomic(file: string, content: string, mode: number): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode); // writeFile's mode is filtered by the umask; the key must stay 0600 whatever it is
  await rename(tmp, file);
}

/**
 * Generates a self-signed RSA-2048 / SHA-256 certificate for `hostname`, valid for TLS server use, with
 * subjectAltNames for the host name, `localhost`, 127.0.0.1 and ::1.
 */
export async function generateSelfSigned(hostname: string, now = new Date()): Promise<TlsMaterial> {
  const altNames: Array<{ type: 2; value: string } | { type: 7; ip: string }> = [];
  if (isIP(hostname)) altNames.push({ type: 7, ip: hostname });
  else altNames.push({ type: 2, value: hostname });
  if (hostname !== 'localhost') altNames.push({ type: 2, value: 'localhost' });
  for (const ip of ['127.0.0.1', '::1']) if (ip !== hostname) altNames.push({ type: 7, ip });
  const pems = await generate([{ name: 'commonName', value: hostname }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 5 * 60_000),
    notAfterDate: new Date(now.getTime() + SELF_SIGNED_DAYS * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

/**
 * The key and certificate for the SMTP listeners: from `config.smtp.tls` when set, otherwise from
 * `<dataDir>/tls/smtp.key` and `smtp.crt`, generated (self-signed for `config.hostname`) when missing,
 * expired or not matching each other.
 * @throws Error naming the config key and file when configured material cannot be read or parsed.
 */
export async function loadOrCreateTls(config: Config, logger: Logger): Promise<TlsMaterial> {
  if (config.smtp.tls) {
    const { keyFile, certFile } = config.smtp.tls;
    const material = {
      key: await readConfigured('smtp.tls.keyFile', keyFile),
      cert: await readConfigured('smtp.tls.certFile', certFile),
    };
    try {
      const info = inspect(material, { key: `smtp.tls.keyFile (${keyFile})`, cert: `smtp.tls.certFile (${certFile})` });
      if (info.validTo.getTime() < Date.now()) {
        logger.warn({ certFile, validTo: info.validTo.toISOString() }, 'smtp TLS certificate has expired');
      }
    } catch (err) {
      throw new ConfigError(`smtp.tls: ${(err as Error).message}`);
    }
    logger.debug({ keyFile, certFile }, 'smtp TLS material loaded from configured files');
    return material;
  }

  const dir = join(config.dataDir, 'tls');
  const keyFile = join(dir, 'smtp.key');
  const certFile = join(dir, 'smtp.crt');
  const [key, cert] = await Promise.all([readIfExists(keyFile), readIfExists(certFile)]);
  if (key !== null && cert !== null) {
    try {
      const info = inspect({ key, cert }, { key: keyFile, cert: certFile });
      if (info.validTo.getTime() > Date.now() + 86_400_000) {
        logger.debug({ certFile, validTo: info.validTo.toISOString() }, 'smtp TLS: reusing self-signed certificate');
        return { key, cert };
      }
      logger.info({ certFile, validTo: info.validTo.toISOString() }, 'smtp TLS: self-signed certificate expires, generating a new one');
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'smtp TLS: stored self-signed material unusable, generating a new one');
    }
  }

  const material = await generateSelfSigned(config.hostname);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeAtomic(keyFile, material.key, 0o600);
  await writeAtomic(certFile, material.cert, 0o644);
  logger.info({ certFile, hostname: config.hostname }, 'smtp TLS: generated a self-signed certificate (configure smtp.tls for production)');
  return material;
}
