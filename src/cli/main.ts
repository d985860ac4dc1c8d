/**
 * The dispatcher of every CLI command: remote families (over the admin API) live in *-commands.ts; the
 * local bootstrap and offline commands are here and in domains-cli.ts.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { dnsRecordFor, generateDkimKey, type DkimAlgorithm } from '../dkim/keys.js';
import { classifyReply, loadBounceRules, parseReply } from '../feedback/classify/rules.js';
import { domainsDns, domainsRewrap, LOCAL_DOMAINS_COMMANDS, LOCAL_DOMAINS_USAGE } from './domains-cli.js';
import { DOCTOR_USAGE, domainsCommands, runDoctorCommand } from './domains-commands.js';
import { CredentialAdmin } from '../admin/credentials.js';
import { CredentialRegistry } from '../intake/credentials.js';
import { systemClock } from '../lib/clock.js';
import { AuditStore } from '../store/audit-store.js';
import { CredentialStore } from '../store/credential-store.js';
import { createKeys } from '../store/keys.js';
import { closeRedis, createRedis, waitReady } from '../store/redis.js';
import type { CliOptions, CliResult, Family, RemoteContext } from './command-types.js';
import { auditCommands, credentialCommands, scopeOptions, withSecret } from './credential-commands.js';
import { CliError, EXIT, UsageError } from './errors.js';
import { AdminClient } from './http-client.js';
import { messageCommands, placementCommands, queueCommands, suppressionCommands } from './operation-commands.js';

export { CliError, EXIT, UsageError } from './errors.js';
export type { CliResult } from './command-types.js';

/** The command families that talk to a running gateway over its admin API. */
const FAMILIES: Record<string, Family> = {
  credentials: credentialCommands,
  domains: domainsCommands,
  suppressions: suppressionCommands,
  queue: queueCommands,
  messages: messageCommands,
  placement: placementCommands,
  audit: auditCommands,
};
/** Singular spellings accepted too (`kurir message show`, as before). */
const ALIASES: Record<string, string> = { credential: 'credentials', suppression: 'suppressions', message: 'messages', domain: 'domains' };

const LOCAL_USAGE = `  config check                       validate the configuration and print a summary
  dkim generate --algorithm rsa|ed25519 --out FILE [--bits 2048]
                                     write a new private key (mode 0600) and print its DNS record
${LOCAL_DOMAINS_USAGE}
  bounce classify "REPLY" [--rules FILE]
                                     classify one remote reply (e.g. "550 5.1.1 User unknown") with the bounce rules
  credentials create --bootstrap --name NAME [--role admin]
                                     the first admin key, written straight into Redis (redis.url of --config)`;

function usage(): string {
  const families = Object.entries(FAMILIES).map(([name, f]) => `  ${name.padEnd(13)} ${f.summary}`);
  return `Usage: kurir <command> [options]

Against a running gateway (admin API; URL and key from --url/--key or KURIR_URL/KURIR_ADMIN_KEY):
${families.join('\n')}
  ${DOCTOR_USAGE.padEnd(34)} check SPF, DKIM, DMARC, bounce MX, PTR/HELO, MTA-STS, TLS-RPT and blocklists
                                     of a sender domain; exit code 0 all pass, 1 a warning, 2 a failure
  Run \`kurir <family> --help\` for its commands, \`kurir <family> <command> --help\` for one.

Local (this machine's configuration and Redis; no gateway needed):
${LOCAL_USAGE}

Options:
  --url URL                          the gateway's HTTP API, e.g. https://kurir.example.net:8025 (KURIR_URL)
  --key KEY                          an admin (or support) API key (KURIR_ADMIN_KEY)
  --json                             print the answer as JSON, for scripts
  --config FILE                      configuration file for local commands (default: KURIR_CONFIG or config/default.yaml)
  -h, --help                         this text

Exit codes: 0 ok, 1 the gateway answered with an error (or a local command failed), 2 usage or configuration error,
3 the gateway could not be reached, 4 the key was refused (401, 403, or blocked after wrong keys).

Files you name (--config, --out, --rules, FILE) are relative to your working directory.`;
}

function familyHelp(name: string, f: Family): string {
  const lines = Object.values(f.commands).map((c) => `  kurir ${c.usage}\n      ${c.summary}`);
  const local = f.local ? `\n\n${f.local}` : '';
  return `kurir ${name}: ${f.summary}\n\n${lines.join('\n')}\n\nCommon options: --url URL, --key KEY (or KURIR_URL, KURIR_ADMIN_KEY), --json${local}`;
}

/** Where the command was started: files named on the command line are relative to it. */
export interface CliContext {
  cwd: string;
  /** The environment (KURIR_URL, KURIR_ADMIN_KEY, KURIR_CONFIG and the config's KURIR_* overrides); bin.ts passes process.env. */
  env?: Record<string, string | undefined>;
}

function config(file: string | undefined, ctx: CliContext): Config {
  const given = file ?? ctx.env?.KURIR_CONFIG;
  return loadConfig({ file: given === undefined ? undefined : resolve(ctx.cwd, given), env: ctx.env ?? {} });
}

async function withRedis<T>(cfg: Config, fn: (redis: ReturnType<typeof createRedis>) => Promise<T>): Promise<T> {
  const redis = createRedis(cfg.redis.url, 'command');
  redis.on('error', () => undefined);
  try {
    await waitReady(redis, 3000).catch(() => {
      throw new Error(`cannot reach Redis at ${cfg.redis.url}`);
    });
    return await fn(redis);
  } finally {
    await closeRedis(redis);
  }
}

/**
 * `credentials create --bootstrap`: the first admin key, straight into Redis (no gateway, no key needed),
 * audited as actor `bootstrap`.
 */
async function bootstrapCredential(cfg: Config, ctx: RemoteContext): Promise<string> {
  const name = typeof ctx.opts.name === 'string' ? ctx.opts.name : undefined;
  if (!name) throw new UsageError('credentials create --bootstrap: --name is required');
  const kind = (typeof ctx.opts.kind === 'string' ? ctx.opts.kind : 'api-key') as 'api-key' | 'smtp-account';
  const scope = scopeOptions(ctx);
  if (scope.role !== undefined && scope.role !== 'admin') {
    throw new UsageError('credentials create --bootstrap: --role: the bootstrap key is an admin key (create others with it over the API)');
  }
  return withRedis(cfg, async (redis) => {
    const keys = createKeys(cfg.redis.prefix);
    const store = new CredentialStore(redis, keys);
    const admin = new CredentialAdmin({
      store,
      registry: new CredentialRegistry(cfg),
      hmacKey: await store.secret(cfg.credentials.secret),
      clock: systemClock,
      senderDomains: new Set(cfg.domains.map((d) => d.name.toLowerCase())),
    });
    const created = await admin.create({ kind, name, role: 'admin', ...scope }, 'bootstrap').catch((err: unknown) => {
      throw new CliError(`credentials create --bootstrap: ${(err as Error).message}`, EXIT.server);
    });
    // The key exists and works by now: a failed audit write must not swallow the only copy of its secret.
    const auditError = await new AuditStore(redis, keys, cfg.audit.maxEntries)
      .append({
        at: Date.now(),
        actor: 'bootstrap',
        role: 'admin',
        ip: 'local',
        action: 'credentials create --bootstrap',
        target: created.credential.id,
        status: 201,
        after: created.credential,
      })
      .then(
        () => null,
        (err: unknown) => (err as Error).message,
      );
    const warning = auditError === null ? null : `the audit entry could not be written (${auditError}); the key was created`;
    if (ctx.json) return JSON.stringify(warning === null ? created : { ...created, warning }, null, 2);
    return `${withSecret(created.credential, created.secret, 'created')}${warning === null ? '' : `\nwarning: ${warning}`}`;
  });
}

/** Runs a command of a remote family against the gateway named by --url / KURIR_URL. */
async function runRemote(family: string, f: Family, sub: string | undefined, rest: string[], values: CliOptions, ctx: CliContext): Promise<string | CliResult> {
  const command = sub ? f.commands[sub] : undefined;
  if (values.help || !sub) return command ? `Usage: kurir ${command.usage}\n\n${command.summary}` : familyHelp(family, f);
  if (!command) throw new UsageError(`unknown command: ${family} ${sub} (kurir ${family} --help lists them)`);
  checkInvocation(`${family} ${sub}`, command.usage, rest, values);
  const remote = remoteContext(rest, values, ctx);
  if (family === 'credentials' && sub === 'create' && values.bootstrap) {
    return bootstrapCredential(config(values.config as string | undefined, ctx), remote);
  }
  connect(remote, values, ctx);
  return command.run(remote);
}

/** Options every remote command takes. */
const COMMON_OPTIONS = new Set(['url', 'key', 'json', 'help']);

/**
 * Refuses what a command would silently ignore: an option its usage line does not name (one set of options
 * is parsed for the whole CLI, so `credentials create --domain X` parses, and would create a key for every
 * domain), or more arguments than its usage line has (`suppressions add A B` would add only A).
 */
function checkInvocation(name: string, usage: string, args: string[], values: CliOptions): void {
  const takes = new Set([...COMMON_OPTIONS, ...[...usage.matchAll(/--([a-z0-9-]+)/g)].map((m) => m[1])]);
  if (values.bootstrap) takes.add('config');
  const stray = Object.keys(values).find((o) => values[o] !== undefined && !takes.has(o));
  if (stray) throw new UsageError(`${name}: --${stray} is not an option of this command (kurir ${name} --help)`);
  // The upper-case words right after the command are its arguments: ID, ADDRESS, PROVIDER|DOMAIN, DOMAIN SELECTOR.
  const words = usage.split(/\s+/).slice(2);
  const max = words.findIndex((w) => !/^[A-Z][A-Z_|]*$/.test(w));
  if (args.length > (max === -1 ? words.length : max)) throw new UsageError(`${name}: unexpected argument ${args[max === -1 ? words.length : max]}`);
}

function remoteContext(args: string[], values: CliOptions, ctx: CliContext): RemoteContext {
  return { client: undefined as unknown as AdminClient, args, opts: values, json: values.json === true, file: (path) => resolve(ctx.cwd, path) };
}

/** Gives the context its admin client: the gateway of --url / KURIR_URL with the key of --key / KURIR_ADMIN_KEY. */
function connect(remote: RemoteContext, values: CliOptions, ctx: CliContext): void {
  const url = (values.url as string | undefined) ?? ctx.env?.KURIR_URL;
  const key = (values.key as string | undefined) ?? ctx.env?.KURIR_ADMIN_KEY;
  if (!url) throw new UsageError('--url or KURIR_URL is required: the address of the gateway, e.g. http://127.0.0.1:8025');
  if (!/^https?:\/\/[^\s/]+/i.test(url)) throw new UsageError(`--url: ${url} is not an http:// or https:// URL`);
  if (!key) throw new UsageError('--key or KURIR_ADMIN_KEY is required: an admin API key');
  remote.client = new AdminClient({ url, key });
}

/**
 * Runs one CLI command; returns the text to print. Throws UsageError for bad invocations. File arguments
 * are resolved against `ctx.cwd` (default: the process's working directory).
 */
export async function runCli(argv: string[], ctx: CliContext = { cwd: process.cwd() }): Promise<string> {
  return (await runCliCommand(argv, ctx)).output;
}

/** Like {@link runCli}, with the exit code the command asks for (`doctor`: 0 pass, 1 warn, 2 fail). */
export async function runCliCommand(argv: string[], ctx: CliContext = { cwd: process.cwd() }): Promise<CliResult> {
  const out = await dispatch(argv, ctx);
  return typeof out === 'string' ? { output: out, exitCode: 0 } : out;
}

async function dispatch(argv: string[], ctx: CliContext): Promise<string | CliResult> {
  const parse = () =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        algorithm: { type: 'string' },
        out: { type: 'string' },
        bits: { type: 'string' },
        reason: { type: 'string' },
        rules: { type: 'string' },
        domain: { type: 'string' },
        seed: { type: 'string' },
        ed25519: { type: 'boolean' },
        url: { type: 'string' },
        key: { type: 'string' },
        json: { type: 'boolean' },
        name: { type: 'string' },
        kind: { type: 'string' },
        role: { type: 'string' },
        username: { type: 'string' },
        domains: { type: 'string' },
        priorities: { type: 'string' },
        'per-second': { type: 'string' },
        'per-day': { type: 'string' },
        overlap: { type: 'string' },
        'webhook-url': { type: 'string' },
        'webhook-secret': { type: 'string' },
        'webhook-events': { type: 'string' },
        'rotate-every': { type: 'string' },
        'mta-sts-mx': { type: 'string' },
        bootstrap: { type: 'boolean' },
        seconds: { type: 'string' },
        days: { type: 'string' },
        limit: { type: 'string' },
        cursor: { type: 'string' },
        reference: { type: 'string' },
        format: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values: given, positionals } = parsed;
  const family = ALIASES[positionals[0]] ?? positionals[0];
  const local = family === 'domains' && LOCAL_DOMAINS_COMMANDS.has(positionals[1]);
  if (family !== undefined && FAMILIES[family] && !local) return runRemote(family, FAMILIES[family], positionals[1], positionals.slice(2), given, ctx);
  const inCwd = (path: string | undefined): string | undefined => (path === undefined ? undefined : resolve(ctx.cwd, path));
  const values = { ...given, out: inCwd(given.out), rules: inCwd(given.rules) };
  const [cmd, sub] = positionals;
  if (values.help || !cmd) return usage();
  if (cmd === 'doctor') {
    const remote = remoteContext(positionals.slice(1), given, ctx);
    if (positionals.length !== 2) throw new UsageError('doctor: exactly one DOMAIN is required');
    connect(remote, given, ctx);
    return runDoctorCommand(remote);
  }
  const key = `${cmd} ${sub ?? ''}`.trim();
  switch (key) {
    case 'config check': {
      const cfg = config(values.config, ctx);
      const rules = loadBounceRules(cfg.feedback.rulesFile);
      return `configuration is valid: roles ${cfg.roles.join(', ')}; ${cfg.domains.length} sender domain(s); ${cfg.apiKeys.length} API key(s); ${cfg.smtpAccounts.length} SMTP account(s); SMTP ${cfg.smtp.host}:${cfg.smtp.port}; HTTP ${cfg.http.host}:${cfg.http.port}; ${rules.rules.length} bounce rules`;
    }
    case 'dkim generate': {
      const algorithm = values.algorithm as DkimAlgorithm | undefined;
      if (algorithm !== 'rsa' && algorithm !== 'ed25519') throw new UsageError('--algorithm: must be rsa or ed25519');
      if (!values.out) throw new UsageError('--out: the file to write the private key to is required');
      const bits = values.bits ? Number(values.bits) : 2048;
      if (!Number.isInteger(bits) || bits < 1024 || bits > 4096) throw new UsageError('--bits: an integer from 1024 to 4096');
      const key = generateDkimKey(algorithm, bits);
      await mkdir(dirname(values.out), { recursive: true });
      await writeFile(values.out, key.privateKeyPem, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
        throw new UsageError(err.code === 'EEXIST' ? `--out: ${values.out} already exists (never overwritten)` : `--out: ${err.message}`);
      });
      return `wrote ${values.out}\nDNS: <selector>._domainkey.<domain> TXT "${dnsRecordFor(algorithm, key.publicKeyBase64)}"`;
    }
    case 'domain dns':
    case 'domains dns':
      return domainsDns(config(values.config, ctx));
    case 'domain rewrap':
    case 'domains rewrap': {
      const cfg = config(values.config, ctx);
      return withRedis(cfg, (redis) => domainsRewrap(cfg, redis));
    }
    case 'bounce classify': {
      const text = positionals.slice(2).join(' ').trim();
      if (!text) throw new UsageError('bounce classify: the REPLY text is required, e.g. "550 5.1.1 User unknown"');
      const rules = loadBounceRules(values.rules ?? config(values.config, ctx).feedback.rulesFile);
      const reply = parseReply(text);
      const c = classifyReply(rules, reply);
      return [
        `reply:      code ${reply.code ?? 'none'}, enhanced ${reply.enhanced ?? 'none'}`,
        `category:   ${c.category}`,
        `type:       ${c.type}`,
        ...(c.cause ? [`cause:      ${c.cause}`] : []),
        `senderSide: ${c.senderSide}`,
        `rule:       ${c.ruleId} (${rules.source})`,
      ].join('\n');
    }
    default:
      throw new UsageError(`unknown command: ${positionals.join(' ')}`);
  }
}
