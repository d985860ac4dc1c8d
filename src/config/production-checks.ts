/**
 * What production mode refuses to start with. Each refusal is one line: the config key, what is wrong
 * and the fix. Secret values are never part of a refusal.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { isLoopbackHost } from './mode.js';
import { DEFAULT_REDIS_URL, type Config } from './schema.js';
import { smarthostTls } from './smarthost-tls.js';

/** The development credentials shipped in config/default.yaml. */
const SHIPPED_DEV_SECRETS = ['dev-api-key-change-me-0001', 'dev-admin-key-change-me-0001', 'dev-smtp-password'];
const SHIPPED_DEV_DIGESTS = new Set(SHIPPED_DEV_SECRETS.map((s) => createHash('sha256').update(s).digest('hex')));
/** The marker of a placeholder secret: `change-me`, `changeme`, `change_me`. */
const DEV_MARKER = /change[-_ ]?me/i;

/**
 * Special-use and documentation names (RFC 2606, 6761, 6762, 8375, and `.internal`): no mail can be
 * sent as, or returned to, a name under them.
 */
const RESERVED_SUFFIXES = [
  'test',
  'example',
  'invalid',
  'localhost',
  'local',
  'localdomain',
  'internal',
  'home.arpa',
  'example.com',
  'example.net',
  'example.org',
];

/** Whether a secret is one of the shipped development values (plain or as sha256:<hex>) or carries a change-me marker. */
export function isDevelopmentSecret(value: string): boolean {
  if (SHIPPED_DEV_SECRETS.includes(value) || DEV_MARKER.test(value)) return true;
  return value.startsWith('sha256:') && SHIPPED_DEV_DIGESTS.has(value.slice(7).toLowerCase());
}

/** Whether a domain name is, or is under, a reserved test/documentation/local name. */
export function isReservedName(name: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  return RESERVED_SUFFIXES.some((r) => n === r || n.endsWith(`.${r}`));
}

/** Whether `name` is a fully qualified domain name usable on the Internet (not an IP, not reserved). */
export function isPublicFqdn(name: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (isIP(n) || isReservedName(n)) return false;
  const labels = n.split('.');
  if (labels.length < 2) return false;
  if (!labels.every((l) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l))) return false;
  return !/^\d+$/.test(labels.at(-1) as string);
}

/** Every configured secret with its config key and a label naming its owner. */
function secrets(config: Config): Array<{ key: string; label?: string; value: string }> {
  const out: Array<{ key: string; label?: string; value: string }> = [];
  config.apiKeys.forEach((k, i) => {
    out.push({ key: `apiKeys.${i}.key`, label: k.name, value: k.key });
    if (k.webhook) out.push({ key: `apiKeys.${i}.webhook.secret`, label: k.name, value: k.webhook.secret });
  });
  config.smtpAccounts.forEach((a, i) => {
    out.push({ key: `smtpAccounts.${i}.password`, label: a.name, value: a.password });
  });
  const s = config.delivery.smarthost;
  if (s?.pass) out.push({ key: 'delivery.smarthost.pass', value: s.pass });
  if (config.metrics.token) out.push({ key: 'metrics.token', value: config.metrics.token });
  if (config.bounce.secret) out.push({ key: 'bounce.secret', value: config.bounce.secret });
  if (config.feedback.mailgun.signingKey) out.push({ key: 'feedback.mailgun.signingKey', value: config.feedback.mailgun.signingKey });
  return out;
}

/**
 * The reasons a config must not run in production, one line each (`key: what is wrong; fix: ...`),
 * all of them at once; empty when it may. Independent of `config.mode` (the loader calls it in production).
 */
export function productionRefusals(config: Config): string[] {
  const out: string[] = [];

  if (!isPublicFqdn(config.hostname)) {
    out.push(
      `hostname = ${JSON.stringify(config.hostname)}: not a public fully qualified domain name (it is the EHLO name, the Message-ID domain and the certificate name); fix: set hostname to this host's name in DNS, e.g. mail.<your domain>`,
    );
  }

  for (const s of secrets(config)) {
    if (!isDevelopmentSecret(s.value)) continue;
    const owner = s.label ? ` (${s.label})` : '';
    out.push(
      `${s.key}${owner}: a development credential (a shipped value or a change-me placeholder; not shown); fix: replace it with a secret of your own, e.g. from \`openssl rand -hex 32\``,
    );
  }

  config.domains.forEach((d, i) => {
    if (isReservedName(d.name)) {
      out.push(`domains.${i}.name = ${JSON.stringify(d.name)}: a reserved test/documentation domain; fix: configure your own sender domain`);
    }
    d.dkim.forEach((k, j) => {
      if (k.generate) {
        out.push(
          `domains.${i}.dkim.${j}.generate = true: a lost key file would be replaced by a new, unpublished key; fix: create the key with \`kurir dkim generate\`, publish its DNS record and set generate: false`,
        );
      }
    });
  });
  if (isReservedName(config.bounce.domain)) {
    out.push(
      `bounce.domain = ${JSON.stringify(config.bounce.domain)}: a reserved test/documentation domain, bounces would never come back; fix: set a domain whose MX points at the bounce listener, e.g. bounce.<your domain>`,
    );
  }

  if (config.roles.includes('intake') && config.smtp.enabled && config.smtp.tls === null) {
    out.push(
      'smtp.tls = null: SMTP submission would use a self-signed certificate generated into dataDir/tls; fix: set smtp.tls.keyFile and smtp.tls.certFile to your certificate for hostname',
    );
  }

  const sh = config.delivery.smarthost;
  if (sh && !isLoopbackHost(sh.host)) {
    // The effective settings: with credentials TLS is required and verified unless written otherwise (smarthost-tls.ts).
    const tls = smarthostTls(sh, config.delivery);
    if (!tls.verifyTls && sh.verifyTls === false) {
      out.push(`delivery.smarthost.verifyTls = false: the certificate of smarthost ${sh.host} is not verified; fix: remove the key`);
    } else if (!tls.verifyTls) {
      out.push(`delivery.verifyTls = false: the certificate of smarthost ${sh.host} is not verified; fix: set delivery.verifyTls: true`);
    }
    if (!tls.secure && !tls.requireTls) {
      out.push(
        `delivery.smarthost.requireTls = false (and secure = false): mail to smarthost ${sh.host} may travel unencrypted; fix: set delivery.smarthost.requireTls: true (STARTTLS, port 587) or secure: true (port 465)`,
      );
    }
  }

  const m = config.metrics;
  if (m.port !== null && m.token === null && !isLoopbackHost(m.host)) {
    out.push(
      `metrics.host = ${JSON.stringify(m.host)}: /metrics on port ${m.port} would be open to the network without a token; fix: set metrics.token, or metrics.host: 127.0.0.1`,
    );
  }

  // The HTTP listener has no TLS of its own: only a TLS proxy it trusts makes the console's cookie Secure.
  if (config.roles.includes('api') && config.http.enabled && config.console.enabled && !config.http.trustProxy) {
    out.push(
      'http.trustProxy = false with console.enabled = true: the HTTP listener serves plain HTTP, so console session cookies would not be marked Secure and would travel unencrypted; fix: serve the API behind a TLS-terminating proxy and set http.trustProxy: true, or set console.enabled: false',
    );
  }

  if (config.redis.manage === 'auto' && config.redis.url === DEFAULT_REDIS_URL) {
    out.push(
      `redis.manage = "auto": a Redis that is down at start would be replaced by a private one under dataDir/redis; fix: run Redis as a service and set redis.manage: never`,
    );
  }
  return out;
}
