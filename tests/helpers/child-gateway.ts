/**
 * A gateway run as its own process (node --import tsx src/main.ts), for tests that kill it: its config file in `dir`
 * (the shared Redis under `prefix`, HTTP on `httpPort`, no SMTP intake, one signing domain example.test, `extra` on
 * top), started and waited for until /healthz answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** Writes the child's config file and answers its path. */
export function writeChildConfig(o: { dir: string; prefix: string; httpPort: number; extra: Record<string, unknown> }): string {
  const configFile = join(o.dir, 'kurir.yaml');
  writeFileSync(
    configFile,
    stringify({
      dataDir: o.dir,
      log: { level: 'warn' },
      redis: { prefix: o.prefix, manage: 'never' },
      http: { port: o.httpPort },
      smtp: { enabled: false },
      domains: [{ name: 'example.test', dkim: [{ selector: 's1', algorithm: 'rsa', privateKeyFile: join(o.dir, 'rsa.pem'), generate: true }] }],
      ...o.extra,
    }),
  );
  return configFile;
}

/** Starts the gateway of `configFile` as a child process; resolves once /healthz on `httpPort` answers (20 s at most). */
export async function startChildGateway(configFile: string, httpPort: number): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, KURIR_CONFIG: configFile },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (d) => (stderr += d));
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`http://127.0.0.1:${httpPort}/healthz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return proc;
    if (proc.exitCode !== null) throw new Error(`gateway exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gateway did not start: ${stderr}`);
}
