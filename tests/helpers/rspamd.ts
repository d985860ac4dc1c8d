/**
 * A real rspamd (Debian `rspamd` 3.4) on loopback for pre-send scoring tests: the packaged rules from
 * /etc/rspamd, with LOCAL_CONFDIR, DBDIR, RUNDIR and LOGDIR in a temp folder of the test's own, DNS from
 * the test's loopback server (rspamd blocks at start-up on the system resolver otherwise), and only the
 * normal worker, bound to a free loopback port. Run in the foreground as a child of the test, never the
 * system service.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface Rspamd {
  /** Base URL of the normal worker, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  dir: string;
  /** rspamd's own log (console output), for failure messages. */
  log(): string;
  close(): Promise<void>;
}

/** Whether rspamd can run here; `reason` says why not (CI installs it: .ci/run). */
export function rspamdAvailable(): { ok: boolean; reason: string } {
  const r = spawnSync('rspamd', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { ok: false, reason: 'rspamd is not installed (apt-get install rspamd)' };
  const conf = spawnSync('sh', ['-c', 'test -r /etc/rspamd/rspamd.conf'], { encoding: 'utf8' });
  if (conf.status !== 0) return { ok: false, reason: '/etc/rspamd/rspamd.conf is missing (the rspamd package installs it)' };
  return { ok: true, reason: '' };
}

/** Starts rspamd with DNS from `dnsAddress` (`127.0.0.1:PORT`); resolves once `/ping` answers. */
export async function startRspamd(opts: { dnsAddress: string; timeoutMs?: number }): Promise<Rspamd> {
  const dir = mkdtempSync(join(tmpdir(), 'kurir-rspamd-'));
  for (const d of ['local.d', 'db', 'run', 'log']) mkdirSync(join(dir, d));
  // rspamd's workers drop to the _rspamd user: they must be able to write db/run/log.
  chmodSync(dir, 0o755);
  for (const d of ['db', 'run', 'log']) chmodSync(join(dir, d), 0o777);
  const port = await freePort();
  const local = (name: string, text: string): void => writeFileSync(join(dir, 'local.d', name), `${text}\n`);
  // Compiling the TLD and regexp databases takes ~10 s on first start; the compiled ones are kept between
  // runs (keyed by content hash, so a different rspamd version compiles its own).
  const hsCache = join(tmpdir(), 'kurir-rspamd-hs-cache');
  mkdirSync(hsCache, { recursive: true });
  chmodSync(hsCache, 0o777);
  local('options.inc', `dns { nameserver = ["${opts.dnsAddress}"]; timeout = 1s; retransmits = 1; }\nhs_cache_dir = "${hsCache}";`);
  local('worker-normal.inc', `bind_socket = "127.0.0.1:${port}";\ncount = 1;`);
  // Only the normal worker: the controller and proxy would bind the packaged fixed ports (11334, 11332).
  local('worker-controller.inc', 'enabled = false;');
  local('worker-proxy.inc', 'enabled = false;');
  local('worker-fuzzy.inc', 'enabled = false;');
  // The packaged fuzzy_check rule names rspamd.com's fuzzy servers, which rspamd resolves with the system resolver at
  // start-up: off, so nothing leaves loopback.
  local('fuzzy_check.conf', 'enabled = false;');
  local('logging.inc', 'type = "console"; level = "warning";');
  const vars = { LOCAL_CONFDIR: dir, DBDIR: join(dir, 'db'), RUNDIR: join(dir, 'run'), LOGDIR: join(dir, 'log') };
  const args = ['-f', '-i', '-c', '/etc/rspamd/rspamd.conf', ...Object.entries(vars).map(([k, v]) => `--var=${k}=${v}`)];
  const logFile = join(dir, 'rspamd.out');
  const out = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const child: ChildProcess = spawn('sh', ['-c', `exec rspamd "$@" >"${logFile}" 2>&1`, 'rspamd', ...args], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  // The first start on a machine compiles the hyperscan databases (~10 s idle, longer beside a whole suite).
  const end = Date.now() + (opts.timeoutMs ?? 45_000);
  for (;;) {
    const ok = await fetch(`${url}/ping`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (child.exitCode !== null || Date.now() > end) {
      child.kill('SIGTERM');
      const log = out();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`rspamd did not answer on ${url} (exit ${child.exitCode}); its log:\n${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    dir,
    log: out,
    async close() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
