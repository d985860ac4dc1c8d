/**
 * Runs the gateway as a child process (`node --import tsx src/main.ts`, config from KURIR_CONFIG), so its
 * memory can be read alone from /proc/<pid>/status. BENCH_CHILD_CPU_PROF_DIR=<dir>: every child writes a V8 CPU
 * profile to <dir>/<label>/ when it exits (`npx tsx bench/cpu-profile.ts <file>` summarises one);
 * BENCH_CHILD_NODE_FLAGS='--flag …': node flags for every child (V8 heap sizes, say), not for the benchmark process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';

export const BENCH_API_KEY = 'bench-api-key-0123456789abcdef';
export const BENCH_SMTP = { user: 'bench', pass: 'bench-smtp-password' };

export interface GatewayChild {
  label: string;
  proc: ChildProcess;
  pid: number;
  httpPort: number;
  smtpPort: number;
  /** Last lines the child wrote (stdout and stderr), for error messages. */
  output(): string;
  /** Stops with SIGTERM (SIGKILL after `graceMs`); resolves on exit. */
  stop(graceMs?: number): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface ChildOptions {
  dir: string;
  prefix: string;
  roles: Array<'intake' | 'api' | 'worker' | 'placement'>;
  dnsAddress: string;
  mxPort: number;
  deliveryConcurrency?: number;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=…']. */
  nodeFlags?: string[];
  /** Wait for /healthz (default); a worker-only process has no HTTP listener and is only checked to stay up. */
  waitForHttp?: boolean;
  /** Modules to --import after tsx (TypeScript allowed). */
  preload?: string[];
  /** Merged into the generated configuration (section by section), e.g. `{ shaping: { … } }`. */
  extraConfig?: Record<string, unknown>;
  /** Extra environment variables of the child. */
  env?: Record<string, string>;
  label: string;
  /** Runs the child under `nice -n N` (every thread of it inherits the lower CPU priority). */
  nice?: number;
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);
function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTree(v) && isTree(out[k]) ? merge(out[k] as Tree, v) : v;
  return out;
}

export async function startGatewayChild(o: ChildOptions): Promise<GatewayChild> {
  const httpPort = await freePort();
  const smtpPort = await freePort();
  const configFile = join(o.dir, `kurir-${o.label}.yaml`);
  const config: Tree = {
    // Test domains and a generated key: production checks would refuse them (NODE_ENV stays production for Node's own code paths).
    mode: 'development',
    roles: o.roles,
    hostname: 'bench.kurir.test',
    dataDir: o.dir,
    log: { level: 'warn' },
    redis: { prefix: o.prefix, manage: 'never' },
    http: { port: httpPort },
    // No per-IP cap: every load comes from 127.0.0.1, and phase 2b opens its 20 sessions while phase 2's still close.
    smtp: { port: smtpPort, enabled: o.roles.includes('intake'), maxConnectionsPerIp: null },
    dns: { servers: [o.dnsAddress], timeoutSeconds: 2, tries: 2 },
    delivery: { mxPort: o.mxPort, concurrency: o.deliveryConcurrency ?? 20, retrySchedule: [1], retryJitter: 0, shutdownGraceSeconds: 5 },
    bounce: { domain: 'bounce.example.test' },
    domains: [{ name: 'example.test', dkim: [{ selector: 'bench', algorithm: 'rsa', privateKeyFile: join(o.dir, 'dkim-rsa.pem'), generate: true }] }],
    apiKeys: [{ name: 'bench', key: BENCH_API_KEY, domains: ['example.test'] }],
    smtpAccounts: [{ name: 'bench', username: BENCH_SMTP.user, password: BENCH_SMTP.pass, domains: ['example.test'] }],
  };
  writeFileSync(configFile, stringify(merge(config, o.extraConfig ?? {})));
  const profDir = process.env.BENCH_CHILD_CPU_PROF_DIR;
  // A child that BENCH_CPU_PROF already profiles (its nodeFlags) keeps that one profile.
  const profile = profDir && !o.nodeFlags?.includes('--cpu-prof') ? ['--cpu-prof', `--cpu-prof-dir=${join(profDir, o.label)}`] : [];
  const extraFlags = process.env.BENCH_CHILD_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const args = [...(o.nodeFlags ?? []), ...extraFlags, ...profile, '--import', 'tsx', ...(o.preload ?? []).flatMap((p) => ['--import', p]), 'src/main.ts'];
  const [command, argv]: [string, string[]] = o.nice ? ['nice', ['-n', String(o.nice), process.execPath, ...args]] : [process.execPath, args];
  const proc = spawn(command, argv, {
    env: { ...process.env, ...o.env, KURIR_CONFIG: configFile, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-8000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const child: GatewayChild = {
    label: o.label,
    proc,
    pid: proc.pid as number,
    httpPort,
    smtpPort,
    output: () => out,
    async stop(graceMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
  if (o.waitForHttp === false) {
    await new Promise((r) => setTimeout(r, 3000));
    if (proc.exitCode !== null) throw new Error(`gateway (${o.label}) exited with ${proc.exitCode}:\n${out}`);
    return child;
  }
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`http://127.0.0.1:${httpPort}/healthz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return child;
    if (proc.exitCode !== null) throw new Error(`gateway (${o.label}) exited with ${proc.exitCode}:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error(`gateway (${o.label}) did not answer /healthz within 30 s:\n${out}`);
}

/** VmHWM and VmRSS of a process in MiB (Linux). */
export function memoryOf(pid: number): { hwmMiB: number; rssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { hwmMiB: kb('VmHWM') / 1024, rssMiB: kb('VmRSS') / 1024 };
}

/** Resets the peak-RSS mark (VmHWM) of a process, so the next reading is the peak of the next phase. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU time (user+system) of a process in seconds, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the comm field: state is index 0, utime 11, stime 12 (fields 14 and 15 of stat(5)).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Read and write system calls a process has made (`syscr`, `syscw` of /proc/<pid>/io, all its threads; socket
 * sends and receives included). Zero when the file cannot be read.
 */
export function syscallsOf(pid: number): { reads: number; writes: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const n = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(io)?.[1] ?? 0);
    return { reads: n('syscr'), writes: n('syscw') };
  } catch {
    return { reads: 0, writes: 0 };
  }
}

/** Busy CPU seconds of the whole machine (every process), from /proc/stat. */
export function machineBusySeconds(): number {
  // cpu  user nice system idle iowait irq softirq steal … (steal is the hypervisor's, not ours)
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6]) / 100;
}
