/**
 * Clean-up that outlives a benchmark killed without the chance to clean up (SIGKILL, a crash, the OOM
 * killer): a `sh` started under `setpriv --pdeathsig TERM`, which gets SIGTERM when this process dies and then
 * stops the processes and removes the folders listed in its file. Postfix's master cannot carry a
 * parent-death signal itself (it changes its effective ids at start-up, which clears it), hence this guard.
 * A benchmark that ends normally calls `dispose()` first and cleans up by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';

export interface Janitor {
  /** Also stop this process (SIGTERM, SIGKILL 10 s later) if the benchmark dies. */
  trackPid(pid: number): void;
  /** Also remove this folder if the benchmark dies. */
  trackDir(path: string): void;
  /** Ends the guard without it touching anything. */
  dispose(): void;
}

const SCRIPT = `L="$1"
pids() { sed -n 's/^pid //p' "$L"; }
trap '
  for p in $(pids); do kill -TERM "$p" 2>/dev/null; done
  i=0
  while [ $i -lt 50 ]; do
    alive=0
    for p in $(pids); do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.2; i=$((i+1))
  done
  for p in $(pids); do kill -KILL "$p" 2>/dev/null; done
  sed -n "s/^dir //p" "$L" | while read -r d; do rm -rf "$d"; done
  rm -f "$L"
  exit 0' TERM
while sleep 1; do :; done
`;

/** Starts a guard whose list lives in `listFile` (a path outside every folder it may remove). */
export function startJanitor(listFile: string): Janitor {
  writeFileSync(listFile, '');
  const sh: ChildProcess = spawn('setpriv', ['--pdeathsig', 'TERM', 'sh', '-c', SCRIPT, 'janitor', listFile], { stdio: 'ignore' });
  sh.on('error', () => undefined);
  let disposed = false;
  return {
    trackPid: (pid) => appendFileSync(listFile, `pid ${pid}\n`),
    trackDir: (path) => appendFileSync(listFile, `dir ${path}\n`),
    dispose() {
      if (disposed) return;
      disposed = true;
      sh.kill('SIGKILL');
      rmSync(listFile, { force: true });
    },
  };
}
