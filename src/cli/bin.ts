#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/load.js';
import { CliError, EXIT, runCliCommand, UsageError } from './main.js';

/** The Kurir directory: the nearest folder above this file with a package.json (src/cli/ or dist/src/cli/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

// Files named on the command line are relative to where the user is; the configuration's own relative paths
// (./data, config/*.yaml) to the Kurir directory, as for `npm start`.
const cwd = process.cwd();
process.chdir(packageRoot());

// The one place the CLI reads the environment: KURIR_URL, KURIR_ADMIN_KEY, KURIR_CONFIG and the config's KURIR_* overrides.
runCliCommand(process.argv.slice(2), { cwd, env: process.env }).then(
  // Exit once the text is flushed: idle keep-alive sockets to the gateway must not hold the process open.
  // `doctor` reports its worst result as the exit code (0 pass, 1 warn, 2 fail).
  ({ output, exitCode }) => process.stdout.write(`${output}\n`, () => process.exit(exitCode || EXIT.ok)),
  (err: unknown) => {
    const usage = err instanceof UsageError;
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof CliError ? err.exitCode : err instanceof ConfigError ? EXIT.usage : EXIT.server;
    process.stderr.write(`kurir: ${message}${usage ? '\nRun `kurir --help` for usage.' : ''}\n`, () => process.exit(code));
  },
);
