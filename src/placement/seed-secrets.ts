/**
 * The IMAP login of a seed mailbox: a password (or app password) from an environment variable or a
 * file, or an OAuth2 access token printed by a configured command (XOAUTH2). Secrets stay in memory;
 * errors name the variable, file or command, never the value. A password file others may read, or its group
 * change, is refused at every read (src/config/secret-files.ts), as at start.
 */
import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import type { SeedConfig } from '../config/placement-schema.js';
import { openedSecretFileProblem } from '../config/secret-files.js';
import type { Clock } from '../lib/clock.js';

/** What imapflow's `auth` option takes. */
export interface ImapLogin {
  user: string;
  pass?: string;
  accessToken?: string;
}

/** Why a login could not even be attempted: the secret is not available. */
export class SeedSecretError extends Error {}

const TOKEN_COMMAND_TIMEOUT_MS = 30_000;

function runTokenCommand(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(argv[0], argv.slice(1), { timeout: TOKEN_COMMAND_TIMEOUT_MS, maxBuffer: 64 * 1024 }, (err, stdout) => {
      if (err) return reject(new SeedSecretError(`tokenCommand ${argv[0]} failed: ${err.message.split('\n')[0]}`));
      const token = stdout.trim();
      if (!token) return reject(new SeedSecretError(`tokenCommand ${argv[0]} printed no token`));
      resolve(token);
    });
  });
}

/**
 * A seed's password file, trimmed. Checked at start with the configuration, and again at each read: its mode may have
 * changed since (a chmod changes neither its content nor its mtime, so nothing short of a stat at each read sees it),
 * or the file been replaced. The mode is that of the handle then read (one open, fstat and read, none of them
 * blocking); until 2 Dec 2026 a synchronous stat of the path at every login blocked the event loop.
 */
async function readPasswordFile(file: string): Promise<string> {
  const cannotRead = (err: Error): never => {
    throw new SeedSecretError(`cannot read passwordFile ${file}: ${err.message}`);
  };
  const handle = await open(file, 'r').catch(cannotRead);
  try {
    const problem = await openedSecretFileProblem('passwordFile', file, await handle.stat().catch(cannotRead));
    if (problem) throw new SeedSecretError(problem);
    const pass = (await handle.readFile('utf8').catch(cannotRead)).trim();
    if (!pass) throw new SeedSecretError(`passwordFile ${file} is empty`);
    return pass;
  } finally {
    await handle.close();
  }
}

/** Produces the login of one seed; OAuth2 tokens are cached for `tokenCacheSeconds` and dropped by `invalidate`. */
export class SeedLogin {
  private cached: { token: string; until: number } | null = null;
  private readonly envPassword: string | undefined;

  /** `env` is the process environment handed down by the composition root (only `passwordEnv` is read). */
  constructor(
    private readonly seed: SeedConfig,
    env: Readonly<Record<string, string | undefined>>,
    private readonly clock: Clock,
  ) {
    this.envPassword = seed.auth.passwordEnv ? env[seed.auth.passwordEnv] : undefined;
  }

  /** The credentials for the next login. Throws SeedSecretError when the secret is unavailable. */
  async get(): Promise<ImapLogin> {
    const { auth, address } = this.seed;
    const user = auth.user ?? address;
    if (auth.method === 'oauth2') {
      const now = this.clock.now();
      if (!this.cached || this.cached.until <= now) {
        this.cached = { token: await runTokenCommand(auth.tokenCommand!), until: now + auth.tokenCacheSeconds * 1000 };
      }
      return { user, accessToken: this.cached.token };
    }
    if (auth.passwordEnv) {
      if (!this.envPassword) throw new SeedSecretError(`environment variable ${auth.passwordEnv} is not set`);
      return { user, pass: this.envPassword };
    }
    const pass = await readPasswordFile(auth.passwordFile!);
    return { user, pass };
  }

  /** Forgets a cached OAuth2 token (after the server refused it), so the next login asks the command again. */
  invalidate(): void {
    this.cached = null;
  }
}
