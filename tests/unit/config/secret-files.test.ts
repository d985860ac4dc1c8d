/**
 * Secret files the configuration names (DKIM keys, the SMTP TLS key, master key files, seed password files) are
 * refused when others may read or change them, or their group change them: real files in a temp folder, real chmod.
 */
import fs, { chmodSync, mkdtempSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import type { SeedConfig } from '../../../src/config/placement-schema.js';
import { refusedModeReason, secretFileProblem, secretFileProblems, secretFiles } from '../../../src/config/secret-files.js';
import { systemClock } from '../../../src/lib/clock.js';
import { SeedLogin, SeedSecretError } from '../../../src/placement/seed-secrets.js';

// realpath: the messages name the file as configured, and a link only when the path resolves elsewhere.
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'kurir-secret-files-')));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** A file holding `text` with exactly `mode` (chmod after the write: the umask filters writeFile's mode). */
function secret(mode: number, text = 'secret\n'): string {
  const p = join(dir, `secret-${++n}`);
  writeFileSync(p, text, { mode });
  chmodSync(p, mode);
  return p;
}

const fix = (p: string) => `fix: run chmod 600 ${p} (0640 with a group that must read it is allowed)`;

describe('secretFileProblem', () => {
  it('refuses 0644: names the key, the file, the mode and the chmod that fixes it', () => {
    const p = secret(0o644);
    expect(secretFileProblem('domains.0.dkim.0.privateKeyFile', p)).toBe(
      `domains.0.dkim.0.privateKeyFile = ${JSON.stringify(p)}: a secret file readable by others (mode 0644); ${fix(p)}`,
    );
  });

  it('refuses 0604 (others may read, the group may not) and 0620 (the group may write)', () => {
    const others = secret(0o604);
    expect(secretFileProblem('smtp.tls.keyFile', others)).toBe(
      `smtp.tls.keyFile = ${JSON.stringify(others)}: a secret file readable by others (mode 0604); ${fix(others)}`,
    );
    const group = secret(0o620);
    expect(secretFileProblem('smtp.tls.keyFile', group)).toBe(
      `smtp.tls.keyFile = ${JSON.stringify(group)}: a secret file writable by its group (mode 0620); ${fix(group)}`,
    );
  });

  it('allows 0600, 0400, 0640 and 0440', () => {
    for (const mode of [0o600, 0o400, 0o640, 0o440]) {
      const p = secret(mode);
      expect({ mode: mode.toString(8), problem: secretFileProblem('k', p) }).toEqual({ mode: mode.toString(8), problem: null });
    }
  });

  it('follows a symbolic link: a link to a 0644 file is refused, a link to a 0600 file allowed', () => {
    const open = secret(0o644);
    const link = join(dir, 'link-to-open');
    symlinkSync(open, link);
    expect(secretFileProblem('domainKeys.masterKeyFile', link)).toBe(
      `domainKeys.masterKeyFile = ${JSON.stringify(link)} (resolves to ${open}): a secret file readable by others (mode 0644); ${fix(link)}`,
    );
    const closed = join(dir, 'link-to-closed');
    symlinkSync(secret(0o600), closed); // the link itself is 0777: its target's mode is what counts
    expect(secretFileProblem('domainKeys.masterKeyFile', closed)).toBeNull();
  });

  it('skips a missing file (whoever reads it reports that) and everything on Windows', () => {
    expect(secretFileProblem('smtp.tls.keyFile', join(dir, 'not-there.pem'))).toBeNull();
    expect(secretFileProblem('smtp.tls.keyFile', secret(0o644), 'win32')).toBeNull();
    expect(secretFileProblem('smtp.tls.keyFile', secret(0o644), 'linux')).toMatch(/readable by others \(mode 0644\)/);
  });

  it('quotes a path the shell would split', () => {
    const p = join(dir, "dkim key's.pem");
    writeFileSync(p, 'k', { mode: 0o644 });
    chmodSync(p, 0o644);
    expect(secretFileProblem('k', p)).toContain(`fix: run chmod 600 '${dir}/dkim key'\\''s.pem' (`);
  });
});

describe('refusedModeReason', () => {
  it('says what others and the group may do, and null for the allowed modes', () => {
    expect(refusedModeReason(0o100644)).toBe('readable by others');
    expect(refusedModeReason(0o606)).toBe('readable and writable by others');
    expect(refusedModeReason(0o601)).toBe('executable by others');
    expect(refusedModeReason(0o666)).toBe('readable and writable by others, and writable by its group');
    expect(refusedModeReason(0o627)).toBe('readable, writable and executable by others, and writable by its group');
    expect([0o600, 0o400, 0o640, 0o440, 0o700, 0o750].map(refusedModeReason)).toEqual([null, null, null, null, null, null]);
  });
});

/** A config with every kind of secret file, on top of config/default.yaml. */
function withSecrets(files: { dkim: string[]; tlsKey?: string; master?: string; previous?: string; password?: string }) {
  return loadConfig({
    file: 'config/default.yaml',
    overrides: {
      domains: [
        {
          name: 'example.test',
          dkim: files.dkim.map((f, i) => ({ selector: `s${i}`, algorithm: i === 0 ? 'rsa' : 'ed25519', privateKeyFile: f, generate: true })),
        },
      ],
      smtp: { tls: files.tlsKey ? { keyFile: files.tlsKey, certFile: join(dir, 'cert.pem') } : null },
      domainKeys: { masterKeyFile: files.master ?? '', previousMasterKeyFile: files.previous ?? '' },
      placement: files.password
        ? { seeds: [{ name: 'seed1', provider: 'gmail', address: 'seed@gmail.test', imap: { host: '127.0.0.1' }, auth: { passwordFile: files.password } }] }
        : {},
    },
  });
}

describe('loadConfig and secret files', () => {
  it('lists every secret file the configuration names, with its key', () => {
    const c = withSecrets({ dkim: ['/k/a.pem', '/k/b.pem'], tlsKey: '/t.key', master: '/m', previous: '/p', password: '/pw' });
    expect(secretFiles(c)).toEqual([
      { key: 'domains.0.dkim.0.privateKeyFile', file: '/k/a.pem' },
      { key: 'domains.0.dkim.1.privateKeyFile', file: '/k/b.pem' },
      { key: 'smtp.tls.keyFile', file: '/t.key' },
      { key: 'domainKeys.masterKeyFile', file: '/m' },
      { key: 'domainKeys.previousMasterKeyFile', file: '/p' },
      { key: 'placement.seeds.0.auth.passwordFile', file: '/pw' },
    ]);
  });

  it('loads when every secret file is 0600, 0400, 0640 or 0440, and when a generated DKIM key does not exist yet', () => {
    const c = withSecrets({
      dkim: [secret(0o600), join(dir, 'generated-later.pem')],
      tlsKey: secret(0o400),
      master: secret(0o640),
      previous: secret(0o440),
      password: secret(0o600),
    });
    expect(secretFileProblems(c)).toEqual([]);
    expect(c.domains[0].dkim[1].privateKeyFile).toBe(join(dir, 'generated-later.pem'));
  });

  it('reports every refused file in one ConfigError, one line each', () => {
    const files = { dkim: [secret(0o600), secret(0o644)], tlsKey: secret(0o604), master: secret(0o620), previous: secret(0o600), password: secret(0o606) };
    let err: unknown;
    try {
      withSecrets(files);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const lines = (err as ConfigError).message.split('\n');
    expect(lines).toEqual([
      'config: invalid configuration (config/default.yaml):',
      `  domains.0.dkim.1.privateKeyFile = ${JSON.stringify(files.dkim[1])}: a secret file readable by others (mode 0644); ${fix(files.dkim[1])}`,
      `  smtp.tls.keyFile = ${JSON.stringify(files.tlsKey)}: a secret file readable by others (mode 0604); ${fix(files.tlsKey)}`,
      `  domainKeys.masterKeyFile = ${JSON.stringify(files.master)}: a secret file writable by its group (mode 0620); ${fix(files.master)}`,
      `  placement.seeds.0.auth.passwordFile = ${JSON.stringify(files.password)}: a secret file readable and writable by others (mode 0606); ${fix(files.password)}`,
    ]);
  });
});

describe('a seed passwordFile is checked again at each read', () => {
  const seedWith = (file: string) =>
    ({
      name: 'seed1',
      provider: 'gmail',
      address: 'seed@gmail.test',
      imap: { host: '127.0.0.1', port: 993, tls: true, verifyTls: true },
      auth: { method: 'password', passwordFile: file, tokenCacheSeconds: 600 },
      intervalSeconds: 600,
    }) satisfies SeedConfig;

  it('a file made readable by others after start is refused at the next login, and read again once fixed', async () => {
    const file = secret(0o600, ' s3cret-pass \n');
    const login = new SeedLogin(seedWith(file), {}, systemClock);
    expect(await login.get()).toEqual({ user: 'seed@gmail.test', pass: 's3cret-pass' });

    chmodSync(file, 0o644);
    const refused = await login.get().catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SeedSecretError);
    expect((refused as Error).message).toBe(`passwordFile = ${JSON.stringify(file)}: a secret file readable by others (mode 0644); ${fix(file)}`);

    chmodSync(file, 0o640);
    expect(await login.get()).toEqual({ user: 'seed@gmail.test', pass: 's3cret-pass' });
  });

  it('catches a mode change that leaves the mtime as it was, and a file replaced by one others may read', async () => {
    // Why the check is not cached per mtime: chmod changes neither the content nor the mtime.
    const file = secret(0o600, 'pass-1\n');
    const login = new SeedLogin(seedWith(file), {}, systemClock);
    expect((await login.get()).pass).toBe('pass-1');
    const { mtimeMs } = statSync(file);
    chmodSync(file, 0o604);
    expect(statSync(file).mtimeMs).toBe(mtimeMs);
    expect(((await login.get().catch((err: unknown) => err)) as Error).message).toMatch(/readable by others \(mode 0604\)/);

    // A rotation that renames a new file into place, with the wrong mode: the new file's mode counts.
    chmodSync(file, 0o600);
    renameSync(secret(0o644, 'pass-2\n'), file);
    expect(((await login.get().catch((err: unknown) => err)) as Error).message).toMatch(/readable by others \(mode 0644\)/);
    chmodSync(file, 0o600);
    expect((await login.get()).pass).toBe('pass-2');
  });

  it('makes no blocking file-system call at a login (until 2 Dec 2026 a statSync of the file at each one)', async () => {
    const file = secret(0o600, 'pass\n');
    const open = secret(0o644, 'pass\n');
    const blocking = ['statSync', 'lstatSync', 'realpathSync', 'readFileSync', 'openSync', 'fstatSync', 'accessSync'] as const;
    const calls: string[] = [];
    const real = new Map(blocking.map((name) => [name, fs[name]]));
    for (const name of blocking) {
      // Counting wrappers around the real functions; syncBuiltinESMExports hands them to the modules' named imports too.
      (fs as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
        calls.push(name);
        return (real.get(name) as (...a: unknown[]) => unknown)(...args);
      };
    }
    syncBuiltinESMExports();
    try {
      expect((await new SeedLogin(seedWith(file), {}, systemClock).get()).pass).toBe('pass');
      await expect(new SeedLogin(seedWith(open), {}, systemClock).get()).rejects.toThrow(/readable by others/);
    } finally {
      for (const name of blocking) (fs as unknown as Record<string, unknown>)[name] = real.get(name);
      syncBuiltinESMExports();
    }
    expect(calls).toEqual([]);
  });
});
