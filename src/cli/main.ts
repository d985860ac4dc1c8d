import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { dnsRecordFor, generateDkimKey, loadPrivateKey, type DkimAlgorithm } from '../dkim/keys.js';
import { classifyReply, loadBounceRules, parseReply } from '../feedback/classify/rules.js';
import { DOMAINS_USAGE, runDomainsCommand } from './domains-cli.js';
import { DOCTOR_USAGE, formatDoctor, runDoctor } from './doctor-cli.js';
import { presentMessage } from '../admin/message-view.js';
import { exportCsv, importSuppressionCsv } from '../admin/suppressions.js';
import { normalizeAddress, normalizeDomain } from '../lib/address.js';
import { KurirError } from '../lib/errors.js';
import { createKeys } from '../store/keys.js';
import { MessageStore } from '../store/message-store.js';
import { PlacementStore } from '../store/placement-store.js';
import { closeRedis, createRedis, waitReady } from '../store/redis.js';
import { SuppressionStore } from '../store/suppression-store.js';

const USAGE = `Usage: kurir <command> [options]

Commands:
  config check                       validate the configuration and print a summary
  dkim generate --algorithm rsa|ed25519 --out FILE [--bits 2048]
                                     write a new private key (mode 0600) and print its DNS record
  domains dns                        print the DNS records to publish: DKIM, SPF and DMARC of each sender domain,
                                     MX and SPF of the bounce domain
${DOMAINS_USAGE}
${DOCTOR_USAGE}
  message show ID                    print a message's status and timeline (times in ISO 8601)
  placement probe [--seed NAME]      ask for a placement probe now to one seed (default: every seed); a gateway
                                     with role placement sends it within placement.tickSeconds
  suppression add|remove|check ADDRESS [--reason TEXT]
  bounce classify "REPLY" [--rules FILE]
                                     classify one remote reply (e.g. "550 5.1.1 User unknown") with the bounce rules
                                     (default: feedback.rulesFile) and print its category, type, senderSide and rule
  suppression list [--domain D] [--reason R]
                                     print suppressed addresses (tab-separated: address reason source at messageId)
  suppression export [--out FILE]    write the list as CSV (address,reason,source,at,messageId) to FILE or stdout
  suppression import FILE            import a CSV all or nothing: any invalid row is reported by line, nothing written

Options:
  --config FILE                      configuration file (default: KURIR_CONFIG or config/default.yaml)
  -h, --help                         this text

Files you name (--config, --out, --rules, FILE) are relative to your working directory. Installed as
\`kurir\` (dist/src/cli/bin.js), it runs in the Kurir directory, so the configuration's own relative paths
(./data, config/*.yaml) mean what they mean for \`npm start\`.`;

/** A CLI usage error: printed with the usage hint, exit code 2. */
export class UsageError extends Error {}

/** Where the command was started: files named on the command line are relative to it. */
export interface CliContext {
  cwd: string;
}

function config(file: string | undefined, ctx: CliContext): Config {
  const given = file ?? process.env.KURIR_CONFIG;
  return loadConfig({ file: given === undefined ? undefined : resolve(ctx.cwd, given), env: process.env });
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

async function withStores<T>(cfg: Config, fn: (s: { messages: MessageStore; suppressions: SuppressionStore }) => Promise<T>): Promise<T> {
  const redis = createRedis(cfg.redis.url, 'command');
  redis.on('error', () => undefined);
  try {
    await waitReady(redis, 3000).catch(() => {
      throw new Error(`cannot reach Redis at ${cfg.redis.url}`);
    });
    const keys = createKeys(cfg.redis.prefix);
    return await fn({ messages: new MessageStore(redis, keys, cfg.retention.days * 86400), suppressions: new SuppressionStore(redis, keys) });
  } finally {
    await closeRedis(redis);
  }
}

/** A TXT value as zone-file character-strings of at most 255 bytes each (an RSA-2048 DKIM key needs two). */
function zoneTxt(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return parts.length > 1 ? `( ${parts.join(' ')} )` : parts[0];
}

async function domainsDns(cfg: Config): Promise<string> {
  const lines: string[] = [];
  for (const d of cfg.domains) {
    lines.push(`; ${d.name}`);
    for (const k of d.dkim) {
      const pem = await readFile(k.privateKeyFile, 'utf8').catch(() => null);
      if (!pem) {
        lines.push(`; ${k.selector}: key file ${k.privateKeyFile} does not exist yet (start the gateway or run dkim generate)`);
        continue;
      }
      const key = loadPrivateKey(pem);
      lines.push(`${k.selector}._domainkey.${d.name}. IN TXT ${zoneTxt(dnsRecordFor(k.algorithm, key.publicKeyBase64))}`);
    }
    lines.push(`${d.name}. IN TXT "v=spf1 ip4:<your sending IP> -all"`);
    lines.push(`_dmarc.${d.name}. IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@${d.name}"`);
  }
  // The MX must name the host running role `feedback`, listening on port 25 (feedback.port).
  lines.push(`; bounce domain (VERP return path): MX to the host of the bounce MX (role feedback, port 25), SPF for the sending IP`);
  lines.push(`${cfg.bounce.domain}. IN MX 10 ${cfg.hostname}.`);
  lines.push(`${cfg.bounce.domain}. IN TXT "v=spf1 ip4:<your sending IP> -all"`);
  return lines.join('\n');
}

/** What a command printed and the exit code it asks for (0 unless it reports a status, as `doctor` does). */
export interface CliResult {
  output: string;
  exitCode: number;
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
        json: { type: 'boolean' },
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
  const inCwd = (path: string | undefined): string | undefined => (path === undefined ? undefined : resolve(ctx.cwd, path));
  const values = { ...given, out: inCwd(given.out), rules: inCwd(given.rules) };
  const [cmd, sub, arg] = positionals;
  if (values.help || !cmd) return USAGE;
  if (cmd === 'doctor') {
    if (!sub || positionals.length > 2) throw new UsageError('doctor: exactly one DOMAIN is required');
    const cfg = config(values.config, ctx);
    const report = await withRedis(cfg, (redis) => runDoctor(cfg, redis, sub)).catch((err: unknown) => {
      // A bad or unknown DOMAIN exits 2 like any usage error, never 1 (which means "a warning").
      if (err instanceof KurirError && (err.code === 'BAD_ADDRESS' || err.code === 'NOT_FOUND')) throw new UsageError(err.message);
      throw err;
    });
    return { output: values.json ? JSON.stringify(report, null, 2) : formatDoctor(report), exitCode: report.exitCode };
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
    case 'domains dns':
      return domainsDns(config(values.config, ctx));
    case 'domains add':
    case 'domains list':
    case 'domains show':
    case 'domains verify':
    case 'domains rotate':
    case 'domains revoke':
    case 'domains remove':
    case 'domains rewrap': {
      const cfg = config(values.config, ctx);
      return withRedis(cfg, (redis) => runDomainsCommand(cfg, redis, sub as string, positionals.slice(2), values, (m) => new UsageError(m)));
    }
    case 'message show': {
      if (!arg) throw new UsageError('message show: the message ID is required');
      const view = await withStores(config(values.config, ctx), (s) => s.messages.get(arg));
      if (!view) throw new Error(`message ${arg} not found`);
      return JSON.stringify(presentMessage(view), null, 2);
    }
    case 'placement probe': {
      const cfg = config(values.config, ctx);
      const seeds = cfg.placement.seeds;
      if (!seeds.length) throw new UsageError('placement probe: no seed mailboxes are configured (placement.seeds)');
      const chosen = values.seed === undefined ? seeds : seeds.filter((s) => s.name === values.seed);
      if (!chosen.length) throw new UsageError(`--seed: unknown seed "${values.seed}" (configured: ${seeds.map((s) => s.name).join(', ')})`);
      await withRedis(cfg, (redis) =>
        Promise.all(chosen.map((s) => new PlacementStore(redis, createKeys(cfg.redis.prefix), cfg.placement.historySize).request(s.name))),
      );
      return `probe requested for ${chosen.map((s) => s.name).join(', ')}; results: GET /v1/placement`;
    }
    case 'suppression add':
    case 'suppression remove':
    case 'suppression check': {
      if (!arg) throw new UsageError(`suppression ${sub}: the ADDRESS is required`);
      const address = normalizeAddress(arg, 'ADDRESS');
      return withStores(config(values.config, ctx), async ({ suppressions }) => {
        if (sub === 'add') {
          await suppressions.add({ address, reason: values.reason ?? 'manual', source: 'cli', at: Date.now() });
          return `suppressed ${address}`;
        }
        if (sub === 'remove') return (await suppressions.remove(address)) ? `removed ${address}` : `${address} was not suppressed`;
        const [hit] = await suppressions.check([address]);
        return hit ? JSON.stringify({ ...hit, at: new Date(hit.at).toISOString() }) : `${address} is not suppressed`;
      });
    }
    case 'suppression list': {
      const filter = { domain: values.domain ? normalizeDomain(values.domain, '--domain') : undefined, reason: values.reason };
      return withStores(config(values.config, ctx), async ({ suppressions }) => {
        const lines: string[] = [];
        for await (const page of suppressions.all(filter)) {
          for (const e of page) lines.push([e.address, e.reason, e.source, new Date(e.at).toISOString(), e.messageId ?? ''].join('\t'));
        }
        return [...lines, `${lines.length} suppressed address(es)`].join('\n');
      });
    }
    case 'suppression export':
      return withStores(config(values.config, ctx), async ({ suppressions }) => {
        let csv = '';
        for await (const chunk of exportCsv(suppressions)) csv += chunk;
        if (!values.out) return csv.replace(/\r\n$/, '');
        await writeFile(values.out, csv, { mode: 0o600 });
        return `wrote ${csv.split('\r\n').length - 2} entries to ${values.out}`;
      });
    case 'suppression import': {
      if (!arg) throw new UsageError('suppression import: the CSV FILE is required');
      const text = await readFile(resolve(ctx.cwd, arg), 'utf8').catch((err: Error) => {
        throw new UsageError(`suppression import: ${err.message}`);
      });
      return withStores(config(values.config, ctx), async ({ suppressions }) => {
        try {
          const r = await importSuppressionCsv(suppressions, text, { now: Date.now(), defaultSource: 'cli-import' });
          return `imported ${r.imported} entries (${r.added} new)`;
        } catch (err) {
          const errors = err instanceof KurirError ? (err.details?.errors as Array<{ line: number; message: string }> | undefined) : undefined;
          if (!errors) throw err;
          throw new Error([`${arg}: nothing imported`, ...errors.map((e) => `  line ${e.line}: ${e.message}`)].join('\n'));
        }
      });
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
        `senderSide: ${c.senderSide}`,
        `rule:       ${c.ruleId} (${rules.source})`,
      ].join('\n');
    }
    default:
      throw new UsageError(`unknown command: ${positionals.join(' ')}`);
  }
}
