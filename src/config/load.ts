import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { ZodIssue } from 'zod';
import { resolveMode, type ModeSource } from './mode.js';
import { productionRefusals } from './production-checks.js';
import { showValue } from './redact.js';
import { configSchema, type Config } from './schema.js';
import { secretFileProblems } from './secret-files.js';
import { smarthostCredentialProblems } from './smarthost-tls.js';
import { allowedKeys, closestKey, envName } from './unknown-keys.js';
import { ConfigError } from '../lib/errors.js';

/** Re-exported: callers that load the config catch it from here. */
export { ConfigError };

export interface LoadOptions {
  /** Path of the YAML file; default `KURIR_CONFIG` or `config/default.yaml`. */
  file?: string;
  /** Environment to read `KURIR_*` overrides from (default: none, the caller passes process.env). */
  env?: Record<string, string | undefined>;
  /** Extra values merged last (tests). */
  overrides?: Record<string, unknown>;
}

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTree(v) && isTree(out[k]) ? merge(out[k] as Tree, v) : v;
  return out;
}

function camel(part: string): string {
  return part.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * `KURIR_*` variables that are not config overrides: the file to read, the CLI's gateway URL and key (docs/cli.md),
 * and `npm start`'s log format (scripts/start.mjs; the gateway it spawns inherits it).
 */
const NOT_OVERRIDES: ReadonlySet<string> = new Set(['KURIR_CONFIG', 'KURIR_URL', 'KURIR_ADMIN_KEY', 'KURIR_LOG_FORMAT']);

/**
 * `KURIR_DELIVERY__MX_PORT=2526` → `{ delivery: { mxPort: 2526 } }`. Values are parsed as YAML scalars,
 * so numbers, booleans, `null` and `[a, b]` lists work. `REDIS_URL` is an alias of `KURIR_REDIS__URL`.
 */

export function envOverrides(env: Record<string, string | undefined>): Tree {
  let out: Tree = {};
  const entries = Object.entries(env).filter(([k, v]) => k.startsWith('KURIR_') && !NOT_OVERRIDES.has(k) && v !== undefined);
  if (env.REDIS_URL && !env.KURIR_REDIS__URL) entries.push(['KURIR_REDIS__URL', env.REDIS_URL]);
  for (const [key, raw] of entries) {
    const path = key.slice('KURIR_'.length).split('__').map(camel);
    let value: unknown;
    try {
      value = parseYaml(raw as string);
    } catch {
      value = raw;
    }
    const patch: Tree = {};
    let node = patch;
    path.forEach((p, i) => {
      if (i === path.length - 1) node[p] = value;
      else node = node[p] = {} as Tree;
    });
    out = merge(out, patch);
  }
  return out;
}

function valueAt(tree: unknown, path: (string | number)[]): unknown {
  let node = tree;
  for (const p of path) node = (node as Tree | undefined)?.[p as string];
  return node;
}

/** The `KURIR_*` variables that set `path`: its own, one of a section under it, or one of a mapping or list holding it. */
function varsSetting(path: (string | number)[], env: Record<string, string | undefined>): string[] {
  const name = envName(path);
  return Object.keys(env).filter((v) => v === name || v.startsWith(`${name}__`) || (v.startsWith('KURIR_') && name.startsWith(`${v}__`)));
}

/** ` (from KURIR_SMTP__PORT, empty)`, or '' for a value from the file. Only variable names, never their values. */
function origin(vars: string[], env: Record<string, string | undefined>): string {
  if (!vars.length) return '';
  return ` (from ${vars.map((v) => (env[v]?.trim() === '' ? `${v}, empty` : v)).join('; ')})`;
}

/** `smtp: unknown key(s) prot (from KURIR_SMTP__PROT): did you mean smtp.port?`, else the keys allowed there. */
function describeUnknownKeys(path: (string | number)[], keys: string[], env: Record<string, string | undefined>): string {
  const where = path.join('.') || '(root)';
  const from = origin([...new Set(keys.flatMap((k) => varsSetting([...path, k], env)))], env);
  const allowed = allowedKeys(configSchema, path);
  const guesses = keys.map((k) => closestKey(k, allowed)).filter((g): g is string => g !== undefined);
  const prefix = path.length ? `${where}.` : '';
  const fix = guesses.length
    ? `did you mean ${guesses.map((g) => `${prefix}${g}`).join(', ')}?`
    : allowed.length
      ? `the keys here are ${allowed.join(', ')}`
      : 'remove it';
  return `${where}: unknown key(s) ${keys.join(', ')}${from}: ${fix}`;
}

function describeIssue(issue: ZodIssue, input: unknown, env: Record<string, string | undefined>): string {
  const key = issue.path.join('.') || '(root)';
  const value = valueAt(input, issue.path);
  const shown = value === undefined ? 'missing' : showValue(issue.path, value);
  let allowed = issue.message;
  if (issue.code === 'invalid_enum_value') allowed = `one of ${issue.options.map((o) => JSON.stringify(o)).join(', ')}`;
  if (issue.code === 'unrecognized_keys') return describeUnknownKeys(issue.path, issue.keys, env);
  return `${key} = ${shown}: ${allowed}${origin(varsSetting(issue.path, env), env)}`;
}

/**
 * Files read at start whose setting has a default (so an operator may not know the key): checked here so a
 * gateway started from another directory stops before connecting, naming the key and where it looked.
 */
function missingFileProblems(config: Config): string[] {
  const files: [string, string][] = [
    ['feedback.rulesFile', config.feedback.rulesFile],
    ['shaping.throttleRulesFile', config.shaping.throttleRulesFile],
  ];
  return files
    .filter(([, file]) => !existsSync(file))
    .map(([key, file]) => {
      const where = isAbsolute(file) ? '' : ` (looked for ${resolve(file)}; a relative path is resolved from the working directory)`;
      return `${key} = ${JSON.stringify(file)}: file not found${where}; fix: run Kurir from its own directory (npm start does) or give the file's absolute path`;
    });
}

function crossCheck(config: Config): string[] {
  const problems: string[] = [];
  const domains = new Set(config.domains.map((d) => d.name.toLowerCase()));
  const creds = [
    ...config.apiKeys.map((k, i) => ({ where: `apiKeys.${i}`, domains: k.domains })),
    ...config.smtpAccounts.map((a, i) => ({ where: `smtpAccounts.${i}`, domains: a.domains })),
  ];
  for (const c of creds) {
    c.domains.forEach((d, j) => {
      if (d !== '*' && !domains.has(d.toLowerCase())) {
        problems.push(`${c.where}.domains.${j} = ${JSON.stringify(d)}: not a configured sender domain (domains[].name) or "*"`);
      }
    });
  }
  const users = new Set<string>();
  config.smtpAccounts.forEach((a, i) => {
    if (users.has(a.username)) problems.push(`smtpAccounts.${i}.username = ${JSON.stringify(a.username)}: duplicate`);
    users.add(a.username);
  });
  config.domains.forEach((d, i) => {
    const algs = d.dkim.map((k) => k.algorithm);
    if (algs.filter((a) => a === 'rsa').length > 1 || algs.filter((a) => a === 'ed25519').length > 1) {
      problems.push(`domains.${i}.dkim: at most one rsa and one ed25519 key per domain (the active ones)`);
    }
  });
  // A message without its own ttl gets delivery.ttl.<priority>; above maxTtlSeconds every such message would be refused.
  for (const [priority, ttl] of Object.entries(config.delivery.ttl)) {
    if (ttl > config.delivery.maxTtlSeconds) {
      problems.push(
        `delivery.ttl.${priority} = ${ttl}: must not exceed delivery.maxTtlSeconds (${config.delivery.maxTtlSeconds}); it is the ttl of every ${priority} message that gives none`,
      );
    }
  }
  if (config.smtp.tlsPort !== null && config.smtp.tlsPort === config.smtp.port && config.smtp.port !== 0) {
    problems.push(`smtp.tlsPort = ${config.smtp.tlsPort}: must differ from smtp.port`);
  }
  problems.push(...smarthostCredentialProblems(config));
  problems.push(...missingFileProblems(config));
  problems.push(...secretFileProblems(config));
  return problems;
}

function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === 'object') {
    Object.freeze(obj);
    for (const v of Object.values(obj)) if (v && typeof v === 'object' && !Object.isFrozen(v)) deepFreeze(v);
  }
  return obj;
}

const MODE_ORIGIN: Record<ModeSource, string> = { mode: 'mode: production', NODE_ENV: 'NODE_ENV=production, mode not set', default: '' };

/**
 * Reads the YAML file, applies `KURIR_*` overrides, resolves the mode (`mode`, else NODE_ENV), validates
 * once and returns a frozen Config. Secret files open to others (src/config/secret-files.ts) are problems in
 * every mode; in production mode the refusals of src/config/production-checks.ts are problems too; every problem
 * is reported in one ConfigError, and no secret value is ever echoed.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? {};
  const file = opts.file ?? env.KURIR_CONFIG ?? 'config/default.yaml';
  let fromFile: unknown = {};
  try {
    fromFile = parseYaml(readFileSync(file, 'utf8')) ?? {};
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    // The first line only: YAML errors go on with an excerpt of the file, which may hold a secret.
    if (e.code !== 'ENOENT') throw new ConfigError(`config: cannot read ${file}: ${e.message.split('\n')[0]}`);
    const where = isAbsolute(file)
      ? ''
      : ` (looked for ${resolve(file)}: a relative path is resolved from the working directory; run Kurir from its own directory, as npm start does, or set KURIR_CONFIG to an absolute path)`;
    throw new ConfigError(`config: cannot read ${file}: file not found${where}`);
  }
  if (!isTree(fromFile)) throw new ConfigError(`config: ${file} must hold a YAML mapping at the top level`);
  const input = merge(merge(fromFile, envOverrides(env)), opts.overrides ?? {});
  const { mode, source } = resolveMode(input.mode, env);
  input.mode = mode;
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${describeIssue(i, input, env)}`);
    throw new ConfigError(`config: invalid configuration (${file} + KURIR_* environment):\n${lines.join('\n')}`);
  }
  const problems = crossCheck(parsed.data);
  const refusals = parsed.data.mode === 'production' ? productionRefusals(parsed.data) : [];
  const sections: string[] = [];
  if (problems.length) sections.push(`config: invalid configuration (${file}):\n${problems.map((p) => `  ${p}`).join('\n')}`);
  if (refusals.length) {
    sections.push(
      `config: refusing to start in production mode (${MODE_ORIGIN[source]}; ${file}), ${refusals.length} problem(s):\n${refusals.map((p) => `  ${p}`).join('\n')}`,
    );
  }
  if (sections.length) throw new ConfigError(sections.join('\n'));
  return deepFreeze(parsed.data);
}
