#!/usr/bin/env node
import { ConfigError } from '../config/load.js';
import { runCli, UsageError } from './main.js';

runCli(process.argv.slice(2)).then(
  (out) => process.stdout.write(`${out}\n`),
  (err: unknown) => {
    const usage = err instanceof UsageError;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`kurir: ${message}${usage ? '\nRun `kurir --help` for usage.' : ''}\n`);
    process.exit(usage || err instanceof ConfigError ? 2 : 1);
  },
);
