/**
 * Key material for tests: self-signed TLS certificates for test servers
 * (STARTTLS receivers, HTTPS stubs) and DKIM key pairs with their DNS TXT value.
 *
 * Certificates are generated with the `selfsigned` package (v5, async API) as
 * RSA-2048 / SHA-256 (~130 ms) and carry SANs for the common name, `localhost`
 * and 127.0.0.1. Results are cached per common name for the lifetime of the
 * process (i.e. one vitest worker), so tests asking for the same name share one
 * key pair. EC keys are NOT used on purpose: with the currently installed tree
 * (two copies of @peculiar/asn1-schema, 2.6.0 and 2.11.1) selfsigned's EC path
 * throws "Cannot get schema for 'AlgorithmIdentifier' target".
 */
import { generateKeyPair, X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import { generate } from 'selfsigned';

/** PEM-encoded private key and certificate. */
export interface CertPair {
  key: string;
  cert: string;
}

const cache = new Map<string, Promise<CertPair>>();

async function create(commonName: string): Promise<CertPair> {
  const now = new Date();
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + 7 * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: commonName },
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}

/**
 * Get a self-signed certificate for `commonName` (cached per name).
 * @param commonName subject CN, also added as a DNS subjectAltName.
 * @returns PEM `key` and `cert`; pass `rejectUnauthorized: false` on clients.
 */
export function selfSignedCert(commonName = 'localhost'): Promise<CertPair> {
  const name = commonName.toLowerCase();
  let pending = cache.get(name);
  if (!pending) {
    pending = create(name);
    pending.catch(() => cache.delete(name));
    cache.set(name, pending);
  }
  return pending;
}

/**
 * Describe a PEM certificate (subject, SANs, validity) — handy in assertions.
 * @param certPem PEM certificate as returned by {@link selfSignedCert}.
 */
export function describeCert(certPem: string): { subject: string; subjectAltName: string; validTo: Date } {
  const x = new X509Certificate(certPem);
  return { subject: x.subject, subjectAltName: x.subjectAltName ?? '', validTo: new Date(x.validTo) };
}

/** The test certificate authority: a self-signed CA certificate (PEM) and its key. */
export interface TestCa {
  key: string;
  cert: string;
}

let caPending: Promise<TestCa> | undefined;
const caSignedCache = new Map<string, Promise<CertPair>>();

/**
 * The test CA (one per process, RSA-2048, valid for a week). Clients that verify certificates trust it by
 * having its `cert` in their CA list, e.g. `trustedCa: [ca.cert]` of the gateway.
 */
export function testCa(): Promise<TestCa> {
  caPending ??= generate([{ name: 'commonName', value: 'Kurir Test CA' }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + 7 * 24 * 3600_000),
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  }).then((p) => ({ key: p.private, cert: p.cert }));
  return caPending;
}

/**
 * A server certificate for `hostName` (DNS subjectAltName, and 127.0.0.1) signed by {@link testCa}; cached per
 * name. A client verifying against the test CA accepts it for `hostName` and refuses it for any other name.
 */
export function caSignedCert(hostName: string): Promise<CertPair> {
  const name = hostName.toLowerCase();
  let pending = caSignedCache.get(name);
  if (!pending) {
    pending = testCa().then(async (ca) => {
      const pems = await generate([{ name: 'commonName', value: name }], {
        keyType: 'rsa',
        keySize: 2048,
        algorithm: 'sha256',
        notBeforeDate: new Date(Date.now() - 60_000),
        notAfterDate: new Date(Date.now() + 7 * 24 * 3600_000),
        ca,
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true },
          {
            name: 'subjectAltName',
            altNames: [
              { type: 2, value: name },
              { type: 7, ip: '127.0.0.1' },
            ],
          },
        ],
      });
      return { key: pems.private, cert: pems.cert };
    });
    pending.catch(() => caSignedCache.delete(name));
    caSignedCache.set(name, pending);
  }
  return pending;
}

/** A DKIM signing key and the matching `<selector>._domainkey` TXT value. */
export interface DkimKey {
  algorithm: 'rsa' | 'ed25519';
  /** PKCS#8 PEM private key, as accepted by mailauth's dkimSign `privateKey`. */
  privateKey: string;
  /** Base64 `p=` value: SPKI DER for RSA, the raw 32-byte key for Ed25519 (RFC 8463). */
  publicKey: string;
  /** Full TXT record value, e.g. `v=DKIM1; k=rsa; p=MIIB...`. */
  txt: string;
}

const generateKeyPairAsync = promisify(generateKeyPair);
const dkimCache = new Map<string, Promise<DkimKey>>();

async function createDkimKey(algorithm: 'rsa' | 'ed25519', bits: number): Promise<DkimKey> {
  const { privateKey, publicKey } = algorithm === 'rsa' ? await generateKeyPairAsync('rsa', { modulusLength: bits }) : await generateKeyPairAsync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const p = (algorithm === 'rsa' ? spki : spki.subarray(spki.length - 32)).toString('base64');
  return {
    algorithm,
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: p,
    txt: `v=DKIM1; k=${algorithm}; p=${p}`,
  };
}

/**
 * Generate (or reuse, per `label`) a DKIM key pair. An RSA-2048 TXT value is
 * ~410 characters, i.e. it needs splitting into 255-byte strings, which
 * dns-server.ts does automatically.
 * @param opts algorithm (default 'rsa'), RSA bits (default 2048), cache label.
 */
export function dkimKeyPair(opts: { algorithm?: 'rsa' | 'ed25519'; bits?: number; label?: string } = {}): Promise<DkimKey> {
  const algorithm = opts.algorithm ?? 'rsa';
  const bits = opts.bits ?? 2048;
  const key = `${algorithm}:${bits}:${opts.label ?? 'default'}`;
  let pending = dkimCache.get(key);
  if (!pending) {
    pending = createDkimKey(algorithm, bits);
    pending.catch(() => dkimCache.delete(key));
    dkimCache.set(key, pending);
  }
  return pending;
}
