/**
 * The real entry point (`npx tsx src/main.ts`) in production mode with the shipped development config:
 * exit 2 before anything listens or is written, every reason printed, no secret value in the output.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dataDir = mkdtempSync(join(tmpdir(), 'kurir-prod-entry-'));

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** The environment of this process without Kurir settings (and vitest's NODE_ENV=test), plus `extra`. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KURIR_') && k !== 'REDIS_URL' && k !== 'NODE_ENV'));
  return { ...env, ...extra };
}

function run(extra: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn('npx', ['--no-install', 'tsx', 'src/main.ts'], { env: cleanEnv(extra), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.once('error', reject);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** Every development credential in config/default.yaml. */
const SHIPPED_SECRETS = ['dev-api-key-change-me-0001', 'dev-admin-key-change-me-0001', 'dev-smtp-password'];

describe('npx tsx src/main.ts in production mode', () => {
  it('with NODE_ENV=production and the default config: exit 2, all eleven reasons, no secret, nothing written', async () => {
    const { code, out } = await run({ NODE_ENV: 'production', KURIR_DATA_DIR: dataDir });
    expect(code).toBe(2);
    expect(out).toMatch(/^config: refusing to start in production mode \(NODE_ENV=production, mode not set; config\/default\.yaml\), 11 problem\(s\):$/m);
    const reasons = out.split('\n').filter((l) => l.startsWith('  '));
    expect(reasons.map((l) => l.trim().split(/[ :]/)[0])).toEqual([
      'hostname',
      'apiKeys.0.key',
      'apiKeys.1.key',
      'smtpAccounts.0.password',
      'domains.0.name',
      'domains.0.dkim.0.generate',
      'domains.0.dkim.1.generate',
      'bounce.domain',
      'smtp.tls',
      'http.trustProxy',
      'redis.manage',
    ]);
    for (const r of reasons) expect(r).toMatch(/; fix: \S/);
    for (const s of SHIPPED_SECRETS) expect(out).not.toContain(s);
    expect(out).not.toContain('kurir started');
    // Refused before anything started: no TLS material, DKIM key or managed Redis in the data dir.
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('secrets given in the environment are not printed either; the smarthost and metrics refusals join the list', async () => {
    const secrets = { KURIR_DELIVERY__SMARTHOST__PASS: 'change-me-relay-s3cret', KURIR_METRICS__TOKEN: 'change-me-metrics-t0ken' };
    const { code, out } = await run({
      NODE_ENV: 'production',
      KURIR_DATA_DIR: dataDir,
      KURIR_DELIVERY__SMARTHOST__HOST: 'smtp.relay-provider.eu',
      KURIR_DELIVERY__SMARTHOST__USER: 'kurir',
      // With credentials TLS is required and verified unless opted out in writing; production refuses even that.
      KURIR_DELIVERY__SMARTHOST__REQUIRE_TLS: 'false',
      KURIR_DELIVERY__SMARTHOST__VERIFY_TLS: 'false',
      KURIR_DELIVERY__SMARTHOST__ALLOW_INSECURE_AUTH: 'true',
      KURIR_METRICS__PORT: '9464',
      KURIR_METRICS__HOST: '0.0.0.0',
      ...secrets,
    });
    expect(code).toBe(2);
    // (Not an exact count: an all-modes check of smarthost credentials may add its own line.)
    expect(out).toMatch(/^config: refusing to start in production mode .*, 1\d problem\(s\):$/m);
    expect(out).toMatch(/^ {2}delivery\.smarthost\.pass: a development credential/m);
    expect(out).toMatch(/^ {2}metrics\.token: a development credential/m);
    expect(out).toMatch(/^ {2}delivery\.smarthost\.verifyTls = false: the certificate of smarthost smtp\.relay-provider\.eu is not verified/m);
    expect(out).toMatch(/^ {2}delivery\.smarthost\.requireTls = false/m);
    for (const s of [...SHIPPED_SECRETS, ...Object.values(secrets)]) expect(out).not.toContain(s);
    expect(readdirSync(dataDir)).toEqual([]);
  });
});
