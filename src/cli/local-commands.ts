/**
 * The CLI commands that run on this machine, against its configuration and Redis, with no gateway: `config check`,
 * `dkim generate`, `domains dns|rewrap` (domains-cli.ts), `bounce classify` and `credentials create --bootstrap`.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CredentialAdmin } from '../admin/credentials.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { dnsRecordFor, generateDkimKey, type DkimAlgorithm } from '../dkim/keys.js';
import { classifyReply, loadBounceRules, parseReply } from '../feedback/classify/rules.js';
import { CredentialRegistry } from '../intake/credentials.js';
import { systemClock } from '../lib/clock.js';
import { AuditStore } from '../store/audit-store.js';
import { CredentialStore } from '../store/credential-store.js';
import { createKeys } from '../store/keys.js';
import { closeRedis, createRedis, waitReady } from '../store/redis.js';
import type { CliContext, RemoteContext } from './command-types.js';
import { scopeOptions, withSecret } from './credential-commands.js';
import { domainsDns, domainsRewrap, LOCAL_DOMAINS_USAGE } from './domains-cli.js';
import { CliError, EXIT, UsageError } from './errors.js';

/** Usage lines of the local commands, for `kurir --help`. */
export const LOCAL_USAGE = `  config check                       validate the configuration and print a summary
  dkim generate --algorithm rsa|ed25519 --out FILE [--bits 2048|3072|4096]
                                     write a new private key (mode 0600) and print its DNS record
${LOCAL_DOMAINS_USAGE}
  bounce classify "REPLY" [--rules FILE] [--json]
                                     classify one remote reply (e.g. "550 5.1.1 User unknown") with the bounce rules
  credentials create --bootstrap --name NAME [--role admin]
                                     the first admin key, written straight into Redis (redis.url of --config)`;

/** A local command: its usage line, what it does, the options it takes besides --help, and how many arguments. */
export interface LocalCommand {
  usage: string;
  summary: string;
  options: readonly string[];
  maxArgs: number;
}

/** The local commands by name (`domains dns` also as `domain dns`), for their --help and the check of what they take. */
export const LOCAL_COMMANDS: Readonly<Record<string, LocalCommand>> = {
  'config check': {
    usage: 'config check [--config FILE]',
    summary: 'Validate the configuration (and the bounce rules file) and print a summary; exit 2 naming each bad key.',
    options: ['config'],
    maxArgs: 0,
  },
  'dkim generate': {
    usage: 'dkim generate --algorithm rsa|ed25519 --out FILE [--bits 2048|3072|4096]',
    summary: 'Write a new private key (mode 0600, never overwrites) and print its DNS record; --bits for rsa only.',
    options: ['algorithm', 'out', 'bits', 'config'],
    maxArgs: 0,
  },
  'domains dns': {
    usage: 'domains dns [--config FILE]',
    summary:
      'Print the DNS records to publish: DKIM, SPF, DMARC, MTA-STS (and its policy file) and TLS-RPT of each configured sender domain, MX and SPF of the bounce domain.',
    options: ['config'],
    maxArgs: 0,
  },
  'domains rewrap': {
    usage: 'domains rewrap [--config FILE]',
    summary: "Re-seal every runtime-managed domain's private key in Redis under domainKeys.masterKey, after a master-key change (offline).",
    options: ['config'],
    maxArgs: 0,
  },
  'bounce classify': {
    usage: 'bounce classify "REPLY" [--rules FILE] [--config FILE] [--json]',
    summary:
      'Classify one remote reply (e.g. "550 5.1.1 User unknown") with the bounce rules: category, type, cause, senderSide, refusesClient, rule; --json for scripts.',
    options: ['rules', 'config', 'json'],
    maxArgs: Number.POSITIVE_INFINITY,
  },
};

/** The configuration of --config (else KURIR_CONFIG, else config/default.yaml), a path relative to the caller's directory. */
export function localConfig(file: string | undefined, ctx: CliContext): Config {
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
export async function bootstrapCredential(cfg: Config, ctx: RemoteContext): Promise<string> {
  const name = typeof ctx.opts.name === 'string' ? ctx.opts.name : undefined;
  if (!name) throw new UsageError('credentials create --bootstrap: --name is required');
  // The bootstrap credential is an admin API key; the API refused an SMTP account ("role: …") with exit 1.
  if (ctx.opts.kind !== undefined && ctx.opts.kind !== 'api-key') {
    throw new UsageError('credentials create --bootstrap: --kind: the bootstrap credential is an admin API key (create SMTP accounts with it over the API)');
  }
  // An API key has no user name: until 2 Dec 2026 --username was dropped here without a word.
  if (ctx.opts.username !== undefined) {
    throw new UsageError('credentials create --bootstrap: --username: the bootstrap credential is an API key, which has no user name');
  }
  const kind = 'api-key';
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

/** The options the local commands read; --out and --rules already resolved against the caller's directory. */
export interface LocalOptions {
  config?: string;
  algorithm?: string;
  out?: string;
  bits?: string;
  rules?: string;
  json?: boolean;
}

/** Runs the local command named by `positionals` (`config check`, `dkim generate`, …); returns the text to print. */
export async function runLocalCommand(positionals: string[], values: LocalOptions, ctx: CliContext): Promise<string> {
  const [cmd, sub] = positionals;
  const key = `${cmd} ${sub ?? ''}`.trim();
  switch (key) {
    case 'config check': {
      const cfg = localConfig(values.config, ctx);
      const rules = loadBounceRules(cfg.feedback.rulesFile);
      return `configuration is valid: roles ${cfg.roles.join(', ')}; ${cfg.domains.length} sender domain(s); ${cfg.apiKeys.length} API key(s); ${cfg.smtpAccounts.length} SMTP account(s); SMTP ${cfg.smtp.host}:${cfg.smtp.port}; HTTP ${cfg.http.host}:${cfg.http.port}; ${rules.rules.length} bounce rules`;
    }
    case 'dkim generate': {
      const algorithm = values.algorithm as DkimAlgorithm | undefined;
      if (algorithm !== 'rsa' && algorithm !== 'ed25519') throw new UsageError('--algorithm: must be rsa or ed25519');
      if (!values.out) throw new UsageError('--out: the file to write the private key to is required');
      // As `domains add` (rsaBits): below 2048 the doctor warns and receivers may ignore the signature.
      if (values.bits !== undefined && algorithm !== 'rsa') throw new UsageError('--bits: only for --algorithm rsa (an ed25519 key has no size)');
      const bits = values.bits !== undefined ? Number(values.bits) : 2048;
      if (![2048, 3072, 4096].includes(bits)) throw new UsageError('--bits: 2048, 3072 or 4096');
      const key = generateDkimKey(algorithm, bits);
      // Directories it creates are the owner's only, as for generated keys (src/dkim/keys.ts); existing ones keep their mode.
      await mkdir(dirname(values.out), { recursive: true, mode: 0o700 });
      await writeFile(values.out, key.privateKeyPem, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
        throw new UsageError(err.code === 'EEXIST' ? `--out: ${values.out} already exists (never overwritten)` : `--out: ${err.message}`);
      });
      return `wrote ${values.out}\nDNS: <selector>._domainkey.<domain> TXT "${dnsRecordFor(algorithm, key.publicKeyBase64)}"`;
    }
    case 'domain dns':
    case 'domains dns':
      return domainsDns(localConfig(values.config, ctx));
    case 'domain rewrap':
    case 'domains rewrap': {
      const cfg = localConfig(values.config, ctx);
      return withRedis(cfg, (redis) => domainsRewrap(cfg, redis));
    }
    case 'bounce classify': {
      const text = positionals.slice(2).join(' ').trim();
      if (!text) throw new UsageError('bounce classify: the REPLY text is required, e.g. "550 5.1.1 User unknown"');
      const rules = loadBounceRules(values.rules ?? localConfig(values.config, ctx).feedback.rulesFile);
      const reply = parseReply(text);
      const c = classifyReply(rules, reply);
      // refusesClient: the reply refuses Kurir itself as a client; from a smarthost such a 5xx defers (docs/delivery.md).
      const refusesClient = c.refusesClient === true;
      if (values.json)
        return JSON.stringify(
          {
            code: reply.code,
            enhanced: reply.enhanced,
            category: c.category,
            type: c.type,
            ...(c.cause ? { cause: c.cause } : {}),
            senderSide: c.senderSide,
            refusesClient,
            rule: c.ruleId,
            rulesFile: rules.source,
          },
          null,
          2,
        );
      return [
        `reply:         code ${reply.code ?? 'none'}, enhanced ${reply.enhanced ?? 'none'}`,
        `category:      ${c.category}`,
        `type:          ${c.type}`,
        ...(c.cause ? [`cause:         ${c.cause}`] : []),
        `senderSide:    ${c.senderSide}`,
        `refusesClient: ${refusesClient}`,
        `rule:          ${c.ruleId} (${rules.source})`,
      ].join('\n');
    }
    default:
      throw new UsageError(`unknown command: ${positionals.join(' ')}`);
  }
}
