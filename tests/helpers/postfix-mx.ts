/**
 * A throwaway Postfix (Debian's `postfix` package) as a recipient's MX on loopback: its own config, queue and
 * mailboxes under one temp folder, smtpd on a free 127.0.0.1 port with STARTTLS (self-signed) and PIPELINING
 * (Postfix always offers it), and virtual mailboxes (Maildir) for the listed users of one domain; anyone else
 * is refused at RCPT with 550 5.1.1. Senders listed in `refuseSenders` are refused at MAIL FROM, and a message
 * whose Subject contains `refuseSubject` is refused after its body. Nothing is relayed: mail for other domains
 * is refused (554 5.7.1 relay access denied).
 *
 * Needs root (the master runs as root and drops to the `postfix` user) and `setpriv` (util-linux), so the
 * instance also ends when the test process dies without stopping it.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitForPort } from './ports.js';
import { selfSignedCert } from './tls.js';

const run = promisify(execFile);

export interface PostfixMxOptions {
  domain: string;
  /** Local parts with a mailbox. */
  users: string[];
  /** Envelope senders refused at MAIL FROM (554 5.7.1). */
  refuseSenders?: string[];
  /** A Subject containing this is refused after the body (550 5.7.1). */
  refuseSubject?: string;
}

export interface PostfixMx {
  port: number;
  /** The messages delivered to a user's Maildir so far (raw, as Postfix stored them). */
  mailbox(user: string): string[];
  logTail(lines?: number): string;
  stop(): Promise<void>;
}

/** Why a Postfix MX cannot run here, or null when it can. */
export function postfixMxMissing(): string | null {
  if (spawnSync('postconf', ['-d', 'mail_version']).status !== 0) return 'postfix is not installed (apt-get install postfix)';
  if (spawnSync('setpriv', ['--version']).status !== 0) return 'setpriv (util-linux) is not installed';
  if (process.getuid?.() !== 0) return 'Postfix must be started as root (its master drops privileges itself)';
  return null;
}

/** The main.cf settings every test or benchmark instance shares: its own folders and log, loopback only, no local delivery. */
export function postfixBaseMainCf(dir: string, myhostname: string): Record<string, string | number> {
  return {
    compatibility_level: '3.6',
    queue_directory: join(dir, 'queue'),
    data_directory: join(dir, 'data'),
    maillog_file: join(dir, 'postfix.log'),
    maillog_file_prefixes: dir,
    myhostname,
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mynetworks: '127.0.0.0/8',
    mydestination: '',
    local_recipient_maps: '',
    alias_maps: '',
    alias_database: '',
  };
}

/** The master.cf services every test or benchmark instance needs (none chrooted), then `extra` lines. */
export function postfixServices(extra: readonly string[] = []): string {
  const base = [
    'pickup unix n - n 60 1 pickup',
    'cleanup unix n - n - 0 cleanup',
    'qmgr unix n - n 300 1 qmgr',
    'tlsmgr unix - - n 1000? 1 tlsmgr',
    'rewrite unix - - n - - trivial-rewrite',
    'bounce unix - - n - 0 bounce',
    'defer unix - - n - 0 bounce',
    'trace unix - - n - 0 bounce',
    'verify unix - - n - 1 verify',
    'flush unix n - n 1000? 0 flush',
    'proxymap unix - - n - - proxymap',
    'error unix - - n - - error',
    'retry unix - - n - - error',
    'discard unix - - n - - discard',
    'anvil unix - - n - 1 anvil',
    'scache unix - - n - 1 scache',
    'postlog unix-dgram n - n - 1 postlogd',
  ];
  return `${[...base, ...extra].join('\n')}\n`;
}

/** Starts the instance; resolves once smtpd accepts connections. */
export async function startPostfixMx(o: PostfixMxOptions): Promise<PostfixMx> {
  const dir = mkdtempSync(join(tmpdir(), 'kurir-postfix-mx-'));
  chmodSync(dir, 0o755);
  const conf = join(dir, 'conf');
  for (const d of ['conf', 'queue', 'data', 'mail', 'tls']) mkdirSync(join(dir, d));
  const uid = Number((await run('id', ['-u', 'postfix'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postfix'])).stdout.trim());
  chownSync(join(dir, 'mail'), uid, gid);
  chownSync(join(dir, 'data'), uid, gid);
  const port = await freePort();
  const cert = await selfSignedCert(`mx.${o.domain}`);
  writeFileSync(join(dir, 'tls', 'smtpd.crt'), cert.cert);
  writeFileSync(join(dir, 'tls', 'smtpd.key'), cert.key, { mode: 0o600 });
  writeFileSync(join(conf, 'vmailbox'), o.users.map((u) => `${u}@${o.domain} ${o.domain}/${u}/\n`).join(''));
  writeFileSync(join(conf, 'senders'), (o.refuseSenders ?? []).map((s) => `${s} REJECT sender refused by policy\n`).join(''));
  writeFileSync(join(conf, 'header_checks'), o.refuseSubject ? `/^Subject:.*${o.refuseSubject}/ REJECT content refused by policy\n` : '');
  const main: Record<string, string | number> = {
    ...postfixBaseMainCf(dir, `mx.${o.domain}`),
    local_transport: 'error:local delivery disabled',
    // Nothing leaves: mail that is not for the virtual domain is refused, and no transport can relay.
    relayhost: '',
    default_transport: 'error:no relaying from this test MX',
    relay_transport: 'error:no relaying from this test MX',
    smtp_dns_support_level: 'disabled',
    notify_classes: '',
    biff: 'no',
    virtual_mailbox_domains: o.domain,
    virtual_mailbox_maps: `texthash:${join(conf, 'vmailbox')}`,
    virtual_mailbox_base: join(dir, 'mail'),
    virtual_uid_maps: `static:${uid}`,
    virtual_gid_maps: `static:${gid}`,
    virtual_transport: 'virtual',
    // Decide on the sender at MAIL FROM (Postfix defers it to RCPT by default).
    smtpd_delay_reject: 'no',
    smtpd_sender_restrictions: `check_sender_access texthash:${join(conf, 'senders')}`,
    smtpd_relay_restrictions: 'reject_unauth_destination',
    smtpd_recipient_restrictions: '',
    header_checks: `regexp:${join(conf, 'header_checks')}`,
    smtpd_tls_cert_file: join(dir, 'tls', 'smtpd.crt'),
    smtpd_tls_key_file: join(dir, 'tls', 'smtpd.key'),
    smtpd_tls_security_level: 'may',
    smtpd_client_connection_count_limit: 0,
  };
  writeFileSync(
    join(conf, 'main.cf'),
    `${Object.entries(main)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')}\n`,
  );
  writeFileSync(join(conf, 'master.cf'), `127.0.0.1:${port} inet n - n - - smtpd\n${postfixServices(['virtual unix - n n - - virtual'])}`);
  const logTail = (lines = 30): string => {
    try {
      return readFileSync(join(dir, 'postfix.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };
  let master: ChildProcess | null = null;
  const stop = async (): Promise<void> => {
    if (master && master.exitCode === null && master.signalCode === null) {
      const exited = new Promise((r) => master?.once('exit', r));
      master.kill('SIGTERM'); // the master's `postfix stop`: it ends its children, then itself
      const t = setTimeout(() => master?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // `postfix check` creates the queue's subfolders with their owners.
    await run('postfix', ['-c', conf, 'check']);
    const daemonDir = (await run('postconf', ['-c', conf, '-h', 'daemon_directory'])).stdout.trim();
    master = spawn('setpriv', ['--pdeathsig', 'TERM', join(daemonDir, 'master'), '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    master.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    await waitForPort(port, master, 'postfix master').catch((e: Error) => {
      throw new Error(`${e.message}: ${err}\n${logTail()}`);
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const mailbox = (user: string): string[] => {
    const fresh = join(dir, 'mail', o.domain, user, 'new');
    if (!existsSync(fresh)) return [];
    return readdirSync(fresh).map((f) => readFileSync(join(fresh, f), 'utf8'));
  };
  return { port, mailbox, logTail, stop };
}
