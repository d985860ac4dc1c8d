/**
 * A real Dovecot (Debian `dovecot-imapd`, `dovecot-lmtpd`, `dovecot-sieve`) on loopback for seed-mailbox
 * tests: its own config, base_dir, state and mail in a temp folder, run in the foreground as a child of
 * the test (never the system instance). IMAP without TLS on a free port, LMTP for delivery on another,
 * `passwd-file` users, a `Junk` folder marked SPECIAL-USE \Junk, and a Sieve script run before delivery;
 * optionally an `oauth2` passdb for XOAUTH2 / OAUTHBEARER logins.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oauth2PassdbConfig } from './dovecot-oauth2.js';
import { freePort, waitForPort } from './ports.js';

export interface Dovecot {
  imapPort: number;
  lmtpPort: number;
  dir: string;
  close(): Promise<void>;
}

/** Whether dovecot can run here; `reason` says why not (CI installs it: .ci/run). */
export function dovecotAvailable(): { ok: boolean; reason: string } {
  const r = spawnSync('dovecot', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { ok: false, reason: 'dovecot is not installed (apt-get install dovecot-imapd dovecot-lmtpd dovecot-sieve)' };
  const sieve = spawnSync('sh', ['-c', 'ls /usr/lib/dovecot/modules/lib90_sieve_plugin.so'], { encoding: 'utf8' });
  if (sieve.status !== 0) return { ok: false, reason: 'dovecot-sieve is not installed' };
  return { ok: true, reason: '' };
}

/**
 * Starts Dovecot with `users` (full addresses as user names) and `sieve` as the sieve_before script.
 * Resolves once IMAP and LMTP accept connections.
 */
export async function startDovecot(opts: {
  users: Array<{ user: string; pass: string }>;
  sieve: string;
  /**
   * Also accept OAuth2 logins (default mechanisms: xoauth2 and oauthbearer), each token checked against the
   * introspection URL (tests/helpers/dovecot-oauth2.ts).
   */
  oauth2?: { introspectionUrl: string; mechanisms?: Array<'xoauth2' | 'oauthbearer'> };
}): Promise<Dovecot> {
  const oauth2Mechs = opts.oauth2 ? (opts.oauth2.mechanisms ?? ['xoauth2', 'oauthbearer']).join(' ') : '';
  const dir = mkdtempSync(join(tmpdir(), 'kurir-dovecot-'));
  chmodSync(dir, 0o755);
  for (const d of ['run', 'state', 'mail']) mkdirSync(join(dir, d));
  chmodSync(join(dir, 'mail'), 0o777);
  writeFileSync(join(dir, 'users'), `${opts.users.map((u) => `${u.user}:{PLAIN}${u.pass}`).join('\n')}\n`);
  writeFileSync(join(dir, 'before.sieve'), opts.sieve);
  if (opts.oauth2) writeFileSync(join(dir, 'oauth2.conf.ext'), oauth2PassdbConfig(opts.oauth2.introspectionUrl));
  // A port freePort chose can be taken before Dovecot binds it (by a parallel test file's client socket, say):
  // Dovecot then exits at once, and is started again on other ports.
  for (let attempt = 1; ; attempt++) {
    const [imapPort, lmtpPort] = [await freePort(), await freePort()];
    writeFileSync(join(dir, 'dovecot.conf'), dovecotConf(dir, imapPort, lmtpPort, oauth2Mechs));
    const child: ChildProcess = spawn('dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      await waitForPort(imapPort, child, 'dovecot (imap)');
      await waitForPort(lmtpPort, child, 'dovecot (lmtp)');
    } catch (err) {
      const exitedByItself = child.exitCode !== null;
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      if (exitedByItself && attempt < 3) continue;
      throw new Error(`${(err as Error).message}\n${logTail(dir)}`);
    }
    return {
      imapPort,
      lmtpPort,
      dir,
      async close() {
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

/** The instance's dovecot.conf: loopback IMAP and LMTP on the given ports, everything else in `dir`. */
function dovecotConf(dir: string, imapPort: number, lmtpPort: number, oauth2Mechs: string): string {
  return `base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login${oauth2Mechs ? ` ${oauth2Mechs}` : ''}
auth_failure_delay = 0
mail_location = maildir:${dir}/mail/%d/%n
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 0
default_internal_user = nobody
default_login_user = nobody
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
${oauth2Mechs ? `passdb {\n  driver = oauth2\n  mechanisms = ${oauth2Mechs}\n  args = ${dir}/oauth2.conf.ext\n}\n` : ''}userdb {
  driver = static
  args = uid=nobody gid=nogroup home=${dir}/mail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${imapPort}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${lmtpPort}
  }
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Junk {
    special_use = \\Junk
    auto = subscribe
  }
}
protocol lmtp {
  mail_plugins = sieve
  postmaster_address = postmaster@localhost
}
plugin {
  sieve_before = ${dir}/before.sieve
}
`;
}

/** The last lines of the instance's log, for a failure to start. */
function logTail(dir: string): string {
  try {
    return readFileSync(join(dir, 'dovecot.log'), 'utf8').trimEnd().split('\n').slice(-15).join('\n');
  } catch {
    return '(no dovecot.log)';
  }
}
