/**
 * A throwaway Postfix + OpenDKIM instance for the benchmark's side-by-side phase (bench/postfix-phase.ts):
 * its own config, queue and data folders under one temp folder, smtpd on a loopback port with STARTTLS
 * (self-signed) and SASL AUTH (Cyrus, a sasldb of its own), OpenDKIM as a milter signing the From domain
 * with RSA-2048, and every route out pointing at the loopback sink: nothing can leave 127.0.0.0/8.
 *
 * Needs root (Postfix's master runs as root and drops to the `postfix` user) and the Debian packages
 * postfix, opendkim, sasl2-bin and libsasl2-modules; `postfixMissing()` says what is missing.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitForPort } from '../tests/helpers/ports.js';
import { selfSignedCert } from '../tests/helpers/tls.js';
import { freePort } from './gateway-child.js';
import { startJanitor, type Janitor } from './janitor.js';
import { mainCf, masterCf, opendkimConf, type PostfixOptions } from './postfix-config.js';

export type { PostfixOptions };

const run = promisify(execFile);

export interface PostfixInstance {
  /** smtpd's port on 127.0.0.1. */
  port: number;
  /** The temp folder holding config, queue, data, keys and the log. */
  dir: string;
  masterPid: number;
  opendkimPid: number;
  /** CPU seconds used so far by Postfix (the master, its children and the children it has reaped) and by OpenDKIM. */
  cpu(): { postfix: number; opendkim: number };
  /** Last lines of Postfix's log file (for error messages). */
  logTail(lines?: number): string;
  /** Processes and folders to end with the instance if the benchmark is killed outright (bench/janitor.ts). */
  guard: Pick<Janitor, 'trackPid' | 'trackDir'>;
  /** Stops Postfix and OpenDKIM and removes the temp folder; never throws. */
  stop(): Promise<void>;
}

/** The stop functions of instances started (or starting) and not stopped yet. */
const live = new Set<() => Promise<void>>();

/** Stops every instance still running (for a watchdog or a signal handler). */
export async function stopAllPostfix(): Promise<void> {
  await Promise.all([...live].map((stop) => stop()));
}

let signalsHooked = false;
const onInterruptHooks: Array<() => void | Promise<void>> = [];

/** Adds clean-up to run (after Postfix is stopped) when SIGINT or SIGTERM interrupts a run that started Postfix. */
export function onInterrupt(fn: () => void | Promise<void>): void {
  onInterruptHooks.push(fn);
}

/** Postfix's master is a daemon of its own: an interrupted benchmark must still stop it and remove its folder. */
function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(signal, () => {
      console.error(`${signal}: stopping Postfix and OpenDKIM`);
      void stopAllPostfix()
        .then(() => Promise.allSettled(onInterruptHooks.map((fn) => fn())))
        .finally(() => process.exit(code));
    });
  }
}

/** What is missing to run the phase here, or null when everything is. */
export function postfixMissing(): string | null {
  const missing: string[] = [];
  const onPath = (cmd: string): boolean => (process.env.PATH ?? '/usr/sbin:/usr/bin').split(':').some((d) => existsSync(join(d, cmd)));
  if (!onPath('postfix') && !existsSync('/usr/sbin/postfix')) missing.push('postfix');
  if (!existsSync('/usr/sbin/opendkim')) missing.push('opendkim');
  if (!onPath('saslpasswd2') && !existsSync('/usr/sbin/saslpasswd2')) missing.push('sasl2-bin');
  if (!saslPlainPlugin()) missing.push('libsasl2-modules');
  if (!onPath('setpriv')) missing.push('util-linux (setpriv)');
  if (missing.length) return `not installed: ${missing.join(', ')} (apt-get install postfix opendkim sasl2-bin libsasl2-modules)`;
  if (process.getuid?.() !== 0) return 'Postfix must be started as root (its master drops privileges itself)';
  return null;
}

function saslPlainPlugin(): boolean {
  for (const lib of ['/usr/lib/x86_64-linux-gnu/sasl2', '/usr/lib/aarch64-linux-gnu/sasl2', '/usr/lib/sasl2', '/usr/lib64/sasl2']) {
    if (existsSync(lib) && readdirSync(lib).some((f) => f.startsWith('libplain.so'))) return true;
  }
  return false;
}

/** utime+stime (and with `reaped`, cutime+cstime) of a process in seconds; 0 once it is gone. */
function statSeconds(pid: number, reaped = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // After the comm field: ppid is index 1, utime 11, stime 12, cutime 13, cstime 14.
    return (f[11] + f[12] + (reaped ? f[13] + f[14] : 0)) / 100;
  } catch {
    return 0;
  }
}

/** CPU of a process tree one level deep: the master, its live children, and what its reaped children used. */
function treeSeconds(root: number): number {
  let sum = statSeconds(root, true);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === root) sum += statSeconds(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return sum;
}

/**
 * Spawns a long-running process of the instance under `setpriv --pdeathsig TERM`, so it also ends when this
 * benchmark dies without cleaning up (SIGKILL, a crash); `asUser` drops to that user first.
 */
function spawnBound(cmd: string, args: string[], asUser?: string): ChildProcess {
  const user = asUser ? ['--reuid', asUser, '--regid', asUser, '--init-groups'] : [];
  return spawn('setpriv', ['--pdeathsig', 'TERM', ...user, cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

async function endProcess(proc: ChildProcess | null, graceMs: number): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** Starts OpenDKIM and Postfix as configured above; on any failure stops what started and removes the folder. */
export async function startPostfix(o: PostfixOptions): Promise<PostfixInstance> {
  hookSignals();
  const dir = mkdtempSync(join(o.parent ?? tmpdir(), 'kurir-postfix-'));
  chmodSync(dir, 0o755); // the postfix and opendkim users must reach the folders inside
  const conf = join(dir, 'conf');
  const janitor = startJanitor(`${dir}.janitor`);
  janitor.trackDir(dir);
  let opendkim: ChildProcess | null = null;
  let master: ChildProcess | null = null;
  const logTail = (lines = 20): string => {
    try {
      return readFileSync(join(dir, 'postfix.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };
  let stopping: Promise<void> | undefined;
  // SIGTERM to the master is `postfix stop`: it stops its children and exits.
  const stop = (): Promise<void> =>
    (stopping ??= Promise.resolve(janitor.dispose())
      .then(() => Promise.all([endProcess(master, 10_000), endProcess(opendkim, 3000)]))
      .then(() => {
        live.delete(stop);
        if (!process.env.BENCH_POSTFIX_KEEP) rmSync(dir, { recursive: true, force: true });
      }));
  live.add(stop);
  try {
    for (const d of ['conf', 'conf/sasl', 'queue', 'data', 'tls', 'dkim']) mkdirSync(join(dir, d));
    const [port, milterPort] = [await freePort(), await freePort()];
    const cert = await selfSignedCert('pf.bench.test');
    writeFileSync(join(dir, 'tls', 'smtpd.crt'), cert.cert);
    writeFileSync(join(dir, 'tls', 'smtpd.key'), cert.key, { mode: 0o600 });
    writeFileSync(join(conf, 'main.cf'), mainCf(dir, o, milterPort));
    writeFileSync(join(conf, 'master.cf'), masterCf(port));
    const chownTo = async (user: string, path: string): Promise<void> => {
      const id = (flag: string) => run('id', [flag, user]).then((r) => Number(r.stdout.trim()));
      chownSync(path, await id('-u'), await id('-g'));
    };
    // SASL: smtpd (user postfix) reads the sasldb; the login is user@myhostname, the client sends just the user.
    const sasldb = join(conf, 'sasl', 'sasldb2');
    writeFileSync(join(conf, 'sasl', 'smtpd.conf'), `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: ${sasldb}\n`);
    await new Promise<void>((resolve, reject) => {
      const p = spawn('saslpasswd2', ['-p', '-c', '-f', sasldb, '-u', 'pf.bench.test', o.user], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      p.on('error', reject);
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`saslpasswd2 exited with ${code}: ${err}`))));
      p.stdin?.end(o.pass);
    });
    await chownTo('postfix', sasldb);
    await chownTo('postfix', join(dir, 'data'));
    chmodSync(sasldb, 0o600);
    // OpenDKIM in the foreground, as user opendkim.
    writeFileSync(join(dir, 'dkim', 'signing.key'), o.privateKeyPem, { mode: 0o600 });
    await chownTo('opendkim', join(dir, 'dkim', 'signing.key'));
    writeFileSync(join(dir, 'opendkim.conf'), opendkimConf(dir, milterPort, o));
    let dkimErr = '';
    opendkim = spawnBound('/usr/sbin/opendkim', ['-f', '-x', join(dir, 'opendkim.conf')], 'opendkim');
    janitor.trackPid(opendkim.pid as number);
    opendkim.stderr?.on('data', (d: Buffer) => (dkimErr = (dkimErr + d.toString()).slice(-2000)));
    await waitForPort(milterPort, opendkim, 'opendkim').catch((e: Error) => {
      throw new Error(`${e.message}: ${dkimErr}`);
    });
    // `postfix check` creates the queue's subfolders with their owners; the master then runs as our child
    // (without -w it does not fork into the background).
    await run('postfix', ['-c', conf, 'check']).catch((e: { message: string }) => {
      throw new Error(`postfix -c ${conf} check failed: ${e.message}\n${logTail()}`);
    });
    const daemonDir = (await run('postconf', ['-c', conf, '-h', 'daemon_directory'])).stdout.trim();
    let masterErr = '';
    master = spawnBound(join(daemonDir, 'master'), ['-c', conf]);
    janitor.trackPid(master.pid as number);
    master.stderr?.on('data', (d: Buffer) => (masterErr = (masterErr + d.toString()).slice(-2000)));
    await waitForPort(port, master, 'postfix master').catch((e: Error) => {
      throw new Error(`${e.message}: ${masterErr}\n${logTail()}`);
    });
    const masterPid = master.pid as number;
    const opendkimPid = opendkim.pid as number;
    return {
      port,
      dir,
      masterPid,
      opendkimPid,
      cpu: () => ({ postfix: treeSeconds(masterPid), opendkim: statSeconds(opendkimPid) }),
      logTail,
      guard: janitor,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
