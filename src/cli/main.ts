/**
 * The dispatcher of every CLI command: remote families (over the admin API) live in *-commands.ts; the
 * local bootstrap and offline commands in local-commands.ts and domains-cli.ts.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LOCAL_DOMAINS_COMMANDS } from './domains-cli.js';
import { DOCTOR_USAGE, domainsCommands, runDoctorCommand } from './domains-commands.js';
import type { CliContext, CliOptions, CliResult, Family, RemoteContext } from './command-types.js';
import { auditCommands, credentialCommands } from './credential-commands.js';
import { UsageError } from './errors.js';
import { AdminClient } from './http-client.js';
import { bootstrapCredential, LOCAL_COMMANDS, LOCAL_USAGE, type LocalCommand, localConfig, runLocalCommand } from './local-commands.js';
import { messageCommands, placementCommands, suppressionCommands } from './operation-commands.js';
import { queueCommands } from './queue-commands.js';

export { CliError, EXIT, UsageError } from './errors.js';
export type { CliContext, CliResult } from './command-types.js';

/** The command families that talk to a running gateway over its admin API; `kurir --help` and `kurir FAMILY --help` are made from it. */
export const FAMILIES: Readonly<Record<string, Family>> = {
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

/**
 * The names of a family's commands: those over the API, then those of LOCAL_COMMANDS in the family
 * (`domains dns`, `domains rewrap`). Until 2 Dec 2026 each family's summary listed them by hand, and the domains
 * one left out `reports`.
 */
function commandNames(name: string, f: Family): string[] {
  return [...Object.keys(f.commands), ...localCommandsOf(name).map(([full]) => full.slice(name.length + 1))];
}

/** The local commands of a family, by their full name (`domains dns`). */
function localCommandsOf(family: string): Array<[string, LocalCommand]> {
  return Object.entries(LOCAL_COMMANDS).filter(([full]) => full.startsWith(`${family} `));
}

function usage(): string {
  const families = Object.entries(FAMILIES).map(([name, f]) => `  ${name.padEnd(13)} ${f.summary}: ${commandNames(name, f).join(', ')}`);
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
  const locals = localCommandsOf(name).map(([, c]) => `  kurir ${c.usage}\n      ${c.summary}`);
  const local = locals.length ? `\n\nLocal (this machine's configuration and Redis, no gateway; bootstrap and offline operations):\n${locals.join('\n')}` : '';
  return `kurir ${name}: ${f.summary}: ${commandNames(name, f).join(', ')}\n\n${lines.join('\n')}\n\nCommon options: --url URL, --key KEY (or KURIR_URL, KURIR_ADMIN_KEY), --json${local}`;
}

/** Runs a command of a remote family against the gateway named by --url / KURIR_URL. */
async function runRemote(family: string, f: Family, sub: string | undefined, rest: string[], values: CliOptions, ctx: CliContext): Promise<string | CliResult> {
  const command = sub ? f.commands[sub] : undefined;
  if (values.help || !sub) return command ? `Usage: kurir ${command.usage}\n\n${command.summary}` : familyHelp(family, f);
  if (!command) throw new UsageError(`unknown command: ${family} ${sub} (kurir ${family} --help lists them)`);
  checkInvocation(`${family} ${sub}`, command.usage, rest, values);
  const remote = remoteContext(rest, values, ctx);
  if (family === 'credentials' && sub === 'create' && values.bootstrap) {
    return bootstrapCredential(localConfig(values.config as string | undefined, ctx), remote);
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
  // The upper-case words right after the command are its arguments: ID, ADDRESS, PROVIDER|DOMAIN, DOMAIN SELECTOR.
  const words = usage.split(/\s+/).slice(2);
  const max = words.findIndex((w) => !/^[A-Z][A-Z_|]*$/.test(w));
  refuseStray(name, takes, max === -1 ? words.length : max, args, values);
}

/** The usage error for an option not in `takes`, or an argument past the first `maxArgs`. */
function refuseStray(name: string, takes: ReadonlySet<string>, maxArgs: number, args: string[], values: CliOptions): void {
  const stray = Object.keys(values).find((o) => values[o] !== undefined && !takes.has(o));
  if (stray) throw new UsageError(`${name}: --${stray} is not an option of this command (kurir ${name} --help)`);
  if (args.length > maxArgs) throw new UsageError(`${name}: unexpected argument ${args[maxArgs]}`);
}

/** `kurir doctor DOMAIN`: its help, or the check of what it was given, then the report. */
function doctor(args: string[], given: CliOptions, ctx: CliContext): Promise<CliResult> | string {
  if (given.help)
    return `Usage: kurir ${DOCTOR_USAGE}\n\nCheck SPF, DKIM, DMARC, bounce MX, PTR/HELO, MTA-STS, TLS-RPT and blocklists of a sender domain; exit code 0 all pass, 1 a warning, 2 a failure.`;
  refuseStray('doctor', COMMON_OPTIONS, 1, args, given);
  const remote = remoteContext(args, given, ctx);
  if (args.length !== 1) throw new UsageError('doctor: exactly one DOMAIN is required');
  connect(remote, given, ctx);
  return runDoctorCommand(remote);
}

/** The local command `name` (`config check`, …): its help, or the check of what it was given (docs/cli.md). */
function checkLocal(name: string, args: string[], given: CliOptions): string | null {
  const command = LOCAL_COMMANDS[name];
  if (!command) return null;
  if (given.help) return `Usage: kurir ${command.usage}\n\n${command.summary}`;
  refuseStray(name, new Set(['help', ...command.options]), command.maxArgs, args, given);
  return null;
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
  const [cmd] = positionals;
  if (!cmd) {
    if (values.help) return usage();
    throw new UsageError('a command is required (kurir --help lists them)');
  }
  if (cmd === 'doctor') return doctor(positionals.slice(1), given, ctx);
  const help = checkLocal(`${family} ${positionals[1] ?? ''}`.trim(), positionals.slice(2), given);
  if (help !== null) return help;
  if (values.help) return usage();
  return runLocalCommand(positionals, values, ctx);
}
