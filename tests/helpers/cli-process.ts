/**
 * The real CLI entry (src/cli/bin.ts) as a child process through tsx, as an admin runs it: the exit code, stdout
 * and stderr, with only PATH and the given variables in its environment.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const TSX = resolve('node_modules/.bin/tsx');
const BIN = resolve('src/cli/bin.ts');

export interface KurirRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `kurir ARGS` in `cwd` with PATH and `env`; answers its exit code and output (never rejects). */
export function runKurirBin(args: string[], cwd: string, env: Record<string, string>): Promise<KurirRun> {
  return new Promise((done) => {
    execFile(TSX, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
