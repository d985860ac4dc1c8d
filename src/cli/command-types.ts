import { UsageError } from './errors.js';
import type { AdminClient } from './http-client.js';

/** The parsed options every command sees (one option set for the whole CLI). */
export interface CliOptions {
  [name: string]: string | boolean | undefined;
}

/** Where the command was started: files named on the command line are relative to it. */
export interface CliContext {
  cwd: string;
  /** The environment (KURIR_URL, KURIR_ADMIN_KEY, KURIR_CONFIG and the config's KURIR_* overrides); bin.ts passes process.env. */
  env?: Record<string, string | undefined>;
}

/** What a remote command runs with. */
export interface RemoteContext {
  client: AdminClient;
  /** Positional arguments after `<family> <command>`. */
  args: string[];
  opts: CliOptions;
  json: boolean;
  /** Resolves a file named on the command line against the caller's directory. */
  file(path: string): string;
}

/** What a command printed and the exit code it asks for (0 unless it reports a status, as `doctor` does). */
export interface CliResult {
  output: string;
  exitCode: number;
}

/** One command of a family: its usage line, what it does, and how. */
export interface Command {
  usage: string;
  summary: string;
  /** The text to print, or the text with the exit code the command asks for. */
  run(ctx: RemoteContext): Promise<string | CliResult>;
}

export interface Family {
  /** What the family is about; the help adds its commands' names from `commands` (and LOCAL_COMMANDS). */
  summary: string;
  commands: Record<string, Command>;
}

/** The answer for `--json`, else the human text. */
export function output(ctx: RemoteContext, data: unknown, human: () => string): string {
  return ctx.json ? JSON.stringify(data, null, 2) : human();
}

/** The string value of an option, or undefined. */
export function opt(ctx: RemoteContext, name: string): string | undefined {
  const v = ctx.opts[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * The option `name` as a whole number from `min` to `max` (as text, for a query string), or undefined when not given;
 * `unit` names what it counts (`--seconds: a whole number of seconds from 1 to 2592000`).
 */
export function wholeNumberOpt(ctx: RemoteContext, name: string, min: number, max: number, unit?: string): string | undefined {
  const v = opt(ctx, name);
  if (v !== undefined && !(/^[0-9]{1,9}$/.test(v) && Number(v) >= min && Number(v) <= max)) {
    throw new UsageError(`--${name}: a whole number${unit ? ` of ${unit}` : ''} from ${min} to ${max} (not ${v})`);
  }
  return v;
}

/** The option `name`, one of `allowed`, or undefined when not given. */
export function oneOfOpt<T extends string>(ctx: RemoteContext, name: string, allowed: readonly T[]): T | undefined {
  const v = opt(ctx, name);
  if (v !== undefined && !(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name}: one of ${allowed.join(', ')} (not ${v})`);
  return v as T | undefined;
}

/** The option `name` as a comma-separated list of `allowed` values, each once, or undefined when not given. */
export function listOfOpt(ctx: RemoteContext, name: string, allowed: readonly string[]): string[] | undefined {
  const v = opt(ctx, name);
  if (v === undefined) return undefined;
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!items.length) throw new UsageError(`--${name}: a comma-separated list of ${allowed.join(', ')}`);
  items.forEach((item, i) => {
    if (!allowed.includes(item)) throw new UsageError(`--${name}: ${item} is not one of ${allowed.join(', ')}`);
    if (items.indexOf(item) !== i) throw new UsageError(`--${name}: ${item} is listed twice`);
  });
  return items;
}

/** The first positional argument, required. */
export function arg(ctx: RemoteContext, what: string, command: string): string {
  const v = ctx.args[0];
  if (!v) throw new UsageError(`${command}: ${what} is required`);
  return v;
}
