/**
 * A production-ready configuration for tests (config/default.yaml plus what docs/production.md asks
 * for) and real key and certificate files for it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dkimKeyPair, selfSignedCert } from './tls.js';

export const PROD_HOSTNAME = 'mail.kurir-mail.eu';
export const PROD_DOMAIN = 'kurir-mail.eu';
export const PROD_API_KEY = 'a3f1c09e7b2d45e8a3f1c09e7b2d45e8';
export const PROD_METRICS_TOKEN = 'f2b9c61d0e8a47f3b5d2c7e1';

/** Paths of the TLS and DKIM files the configuration names. */
export interface ProductionFiles {
  tlsKey: string;
  tlsCert: string;
  dkimKey: string;
}

/** Overrides of config/default.yaml that make it production-ready; `files` default to paths that need not exist. */
export function productionReadyOverrides(
  files: ProductionFiles = { tlsKey: '/etc/kurir/tls/key.pem', tlsCert: '/etc/kurir/tls/cert.pem', dkimKey: '/etc/kurir/dkim/k2025.pem' },
): Record<string, any> {
  return {
    hostname: PROD_HOSTNAME,
    redis: { manage: 'never' },
    // Behind a TLS-terminating proxy (docs/production.md), so console cookies are Secure.
    http: { trustProxy: true },
    smtp: { tls: { keyFile: files.tlsKey, certFile: files.tlsCert } },
    domains: [{ name: PROD_DOMAIN, dkim: [{ selector: 'k2025', algorithm: 'ed25519', privateKeyFile: files.dkimKey }] }],
    apiKeys: [
      { name: 'booking', key: PROD_API_KEY, domains: [PROD_DOMAIN] },
      { name: 'ops', key: `sha256:${'ab'.repeat(32)}`, domains: ['*'], admin: true },
    ],
    smtpAccounts: [{ name: 'booking', username: 'booking', password: 'Zq8-vT2m-Lx4-Rp7w', domains: [PROD_DOMAIN] }],
    bounce: { domain: `bounce.${PROD_DOMAIN}` },
  };
}

/** Writes a self-signed certificate for PROD_HOSTNAME and an Ed25519 DKIM key under `dir`. */
export async function writeProductionFiles(dir: string): Promise<ProductionFiles> {
  mkdirSync(join(dir, 'etc'), { recursive: true });
  const files = { tlsKey: join(dir, 'etc/tls.key'), tlsCert: join(dir, 'etc/tls.crt'), dkimKey: join(dir, 'etc/dkim.pem') };
  const cert = await selfSignedCert(PROD_HOSTNAME);
  writeFileSync(files.tlsKey, cert.key, { mode: 0o600 });
  writeFileSync(files.tlsCert, cert.cert);
  writeFileSync(files.dkimKey, (await dkimKeyPair({ algorithm: 'ed25519', label: 'production' })).privateKey, { mode: 0o600 });
  return files;
}

/** Deep merge of plain objects; arrays and scalars of `b` replace those of `a`. */
export function mergeConfig(a: Record<string, any>, b: Record<string, any>): Record<string, any> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b))
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? mergeConfig(out[k], v) : v;
  return out;
}
