/**
 * File modes of the secret files the configuration names: DKIM private keys, the SMTP TLS key, the master key
 * files of runtime-managed domains and the seed mailboxes' password files. Like OpenSSH with a private key, Kurir
 * refuses to start when one of them is open to others: any permission bit for others, or write for the group.
 * Allowed are 0600, 0400, 0640 and 0440 (a group that may read, e.g. for a key managed by another service).
 *
 * Symbolic links are followed (the mode of the target counts). A file that is missing or cannot be examined is
 * not checked here: the code that reads it reports that, naming the key. Windows has no such modes: no check.
 */
import { realpathSync, statSync, type Stats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Config } from './schema.js';

/** A secret file the configuration names: the config key that names it and its path as written. */
export interface SecretFile {
  key: string;
  file: string;
}

/** Mode bits that refuse a secret file: every bit for others (read, write, execute) and write for the group. */
const REFUSED_MODE_BITS = 0o027;

type SecretConfig = Pick<Config, 'domains' | 'smtp' | 'domainKeys' | 'placement'>;

/**
 * Every secret file the configuration names, with its config key (`domains.0.dkim.1.privateKeyFile`, the form
 * the other configuration errors use). Unset optional files (an empty `masterKeyFile`, no `smtp.tls`) are left out.
 */
export function secretFiles(config: SecretConfig): SecretFile[] {
  const out: SecretFile[] = [];
  config.domains.forEach((d, i) => {
    d.dkim.forEach((k, j) => {
      out.push({ key: `domains.${i}.dkim.${j}.privateKeyFile`, file: k.privateKeyFile });
    });
  });
  if (config.smtp.tls?.keyFile) out.push({ key: 'smtp.tls.keyFile', file: config.smtp.tls.keyFile });
  if (config.domainKeys.masterKeyFile) out.push({ key: 'domainKeys.masterKeyFile', file: config.domainKeys.masterKeyFile });
  if (config.domainKeys.previousMasterKeyFile) {
    out.push({ key: 'domainKeys.previousMasterKeyFile', file: config.domainKeys.previousMasterKeyFile });
  }
  config.placement.seeds.forEach((s, i) => {
    if (s.auth.passwordFile) out.push({ key: `placement.seeds.${i}.auth.passwordFile`, file: s.auth.passwordFile });
  });
  return out;
}

/**
 * What is wrong with a secret file's mode, e.g. `readable by others` or `readable by others, and writable by its
 * group`; null when the mode is allowed (no bit for others, no group write).
 */
export function refusedModeReason(mode: number): string | null {
  if (!(mode & REFUSED_MODE_BITS)) return null;
  const others = [mode & 0o004 && 'readable', mode & 0o002 && 'writable', mode & 0o001 && 'executable'].filter((w): w is string => !!w);
  const parts: string[] = [];
  if (others.length) parts.push(`${others.length > 1 ? `${others.slice(0, -1).join(', ')} and ${others.at(-1)}` : others[0]} by others`);
  if (mode & 0o020) parts.push('writable by its group');
  return parts.join(', and ');
}

/** `0644`: the permission bits (and setuid, setgid, sticky when set) in octal, as chmod takes them. */
function octalMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

/** The path as a shell word: unchanged when it holds only safe characters, else in single quotes. */
function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

/**
 * The problem with one secret file, naming `key`, the file, its mode and the fix; null when the mode is allowed,
 * when the file does not exist, is not a file or cannot be examined (whoever reads it reports that), and on
 * Windows.
 *
 * @param key the config key naming the file, e.g. `smtp.tls.keyFile`
 * @param file the path as configured (relative paths are resolved from the working directory, as when it is read)
 * @param platform `process.platform` unless a test says otherwise
 */
export function secretFileProblem(key: string, file: string, platform: NodeJS.Platform = process.platform): string | null {
  if (platform === 'win32') return null;
  let stats: Stats;
  try {
    stats = statSync(file); // follows symbolic links: the target's mode is what protects the secret
  } catch {
    return null;
  }
  if (!stats.isFile() || !refusedModeReason(stats.mode)) return null;
  let real: string | undefined;
  try {
    real = realpathSync(file);
  } catch {
    // removed meanwhile: the path as written is enough to act on
  }
  return problemText(key, file, stats.mode, real);
}

/**
 * {@link secretFileProblem} for a file already opened, from its handle's Stats (`FileHandle.stat()`), without a
 * blocking call: the mode checked is that of the very file then read, even when the path is replaced meanwhile.
 * Only a refusal resolves the path (to name a link's target).
 */
export async function openedSecretFileProblem(key: string, file: string, stats: Stats, platform: NodeJS.Platform = process.platform): Promise<string | null> {
  if (platform === 'win32' || !stats.isFile() || !refusedModeReason(stats.mode)) return null;
  const real = await realpath(file).catch(() => undefined); // removed meanwhile: the path as written is enough to act on
  return problemText(key, file, stats.mode, real);
}

/** The refusal of a secret file: key, file (and the file a link resolves to), what is wrong, the mode and the chmod that fixes it. */
function problemText(key: string, file: string, mode: number, real: string | undefined): string {
  const target = real !== undefined && real !== resolve(file) ? ` (resolves to ${real})` : '';
  return `${key} = ${JSON.stringify(file)}${target}: a secret file ${refusedModeReason(mode)} (mode ${octalMode(mode)}); fix: run chmod 600 ${shellWord(file)} (0640 with a group that must read it is allowed)`;
}

/**
 * Start-up check (src/config/load.ts): one problem per secret file of `config` that others may read or change, or
 * its group change; [] when every existing one is safe. A `generate: true` DKIM key not created yet is skipped
 * (Kurir creates it with mode 0600, src/dkim/keys.ts).
 */
export function secretFileProblems(config: SecretConfig, platform: NodeJS.Platform = process.platform): string[] {
  return secretFiles(config)
    .map(({ key, file }) => secretFileProblem(key, file, platform))
    .filter((p): p is string => p !== null);
}
