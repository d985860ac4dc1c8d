import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import { isLoopbackHost } from '../../../src/config/mode.js';
import { isPublicFqdn } from '../../../src/config/production-checks.js';
import { mergeConfig as merge, productionReadyOverrides as readyOverrides } from '../../helpers/production-config.js';

const PROD = { NODE_ENV: 'production' };
const dir = mkdtempSync(join(tmpdir(), 'kurir-prod-config-'));

/** The refusal lines of loading the ready config with `patch` in production mode ([] when it loads). */
function refusals(patch: Record<string, any>): { lines: string[]; message: string } {
  try {
    loadConfig({ file: 'config/default.yaml', env: PROD, overrides: merge(readyOverrides(), patch) });
    return { lines: [], message: '' };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    expect(err.message).toMatch(
      /^config: refusing to start in production mode \(NODE_ENV=production, mode not set; config\/default\.yaml\), \d+ problem\(s\):\n/,
    );
    return {
      lines: err.message
        .split('\n')
        .slice(1)
        .map((l) => l.trim()),
      message: err.message,
    };
  }
}

const relay = { host: 'smtp.relay-provider.eu', port: 587, requireTls: true, user: 'kurir', pass: 'relay-password-4f9a' };
/**
 * A relay without credentials: its TLS follows delivery.verifyTls and requireTls. (With credentials TLS is required
 * and verified by default, and an explicit opt-out is refused in every mode unless allowInsecureAuth is written:
 * src/config/smarthost-tls.ts, tests/unit/config/smarthost-tls.test.ts.)
 */
const openRelay = { host: 'smtp.relay-provider.eu', port: 587, requireTls: true };
const adminDigest = createHash('sha256').update('dev-admin-key-change-me-0001').digest('hex');

/** [what, patch, the one refusal expected (its start), a secret that must not be printed]. */
const CASES: Array<[string, Record<string, any>, RegExp, string?]> = [
  [
    'hostname localhost',
    { hostname: 'localhost' },
    /^hostname = "localhost": not a public fully qualified domain name .*; fix: set hostname to this host.s name in DNS/,
  ],
  ['hostname without a dot', { hostname: 'mailhost' }, /^hostname = "mailhost": not a public fully qualified/],
  ['hostname an IP address', { hostname: '192.0.2.10' }, /^hostname = "192\.0\.2\.10": not a public fully qualified/],
  ['hostname under a documentation domain', { hostname: 'mail.example.com' }, /^hostname = "mail\.example\.com": not a public/],
  [
    'the shipped booking API key',
    { apiKeys: [{ name: 'booking', key: 'dev-api-key-change-me-0001', domains: ['kurir-mail.eu'] }] },
    /^apiKeys\.0\.key \(booking\): a development credential .*; fix: replace it/,
    'dev-api-key-change-me-0001',
  ],
  [
    'the shipped admin key as sha256',
    { apiKeys: [{ name: 'ops', key: `sha256:${adminDigest}`, domains: ['*'], admin: true }] },
    /^apiKeys\.0\.key \(ops\): a development credential/,
    adminDigest,
  ],
  [
    'an API key with a change-me marker',
    { apiKeys: [{ name: 'b', key: 'prod-key-CHANGEME-42424242', domains: ['*'] }] },
    /^apiKeys\.0\.key \(b\): a development credential/,
    'prod-key-CHANGEME-42424242',
  ],
  [
    'the shipped SMTP password',
    { smtpAccounts: [{ name: 'booking', username: 'booking', password: 'dev-smtp-password', domains: ['*'] }] },
    /^smtpAccounts\.0\.password \(booking\): a development credential/,
    'dev-smtp-password',
  ],
  [
    'a placeholder webhook secret',
    {
      apiKeys: [
        {
          name: 'b',
          key: 'a3f1c09e7b2d45e8a3f1c09e7b2d45e8',
          domains: ['*'],
          webhook: { url: 'https://booking.kurir-mail.eu/hook', secret: 'change-me-webhook-secret' },
        },
      ],
    },
    /^apiKeys\.0\.webhook\.secret \(b\): a development credential/,
    'change-me-webhook-secret',
  ],
  [
    'a placeholder smarthost password',
    { delivery: { verifyTls: true, smarthost: { ...relay, pass: 'change_me_relay_pass' } } },
    /^delivery\.smarthost\.pass: a development credential/,
    'change_me_relay_pass',
  ],
  ['a placeholder metrics token', { metrics: { token: 'change-me-metrics-token' } }, /^metrics\.token: a development credential/, 'change-me-metrics-token'],
  ['a placeholder VERP secret', { bounce: { secret: 'change-me-verp-secret' } }, /^bounce\.secret: a development credential/, 'change-me-verp-secret'],
  [
    'a placeholder Mailgun signing key',
    { feedback: { mailgun: { signingKey: 'change-me-mailgun-key' } } },
    /^feedback\.mailgun\.signingKey: a development credential/,
    'change-me-mailgun-key',
  ],
  [
    'a test sender domain',
    { domains: [...readyOverrides().domains, { name: 'example.test', dkim: [] }] },
    /^domains\.1\.name = "example\.test": a reserved test\/documentation domain; fix:/,
  ],
  [
    'a DKIM key generated on start',
    { domains: [{ name: 'kurir-mail.eu', dkim: [{ selector: 'k1', algorithm: 'rsa', privateKeyFile: '/k.pem', generate: true }] }] },
    /^domains\.0\.dkim\.0\.generate = true: .*; fix: create the key with `kurir dkim generate`/,
  ],
  ['a test bounce domain', { bounce: { domain: 'bounce.example.org' } }, /^bounce\.domain = "bounce\.example\.org": a reserved/],
  [
    'no submission certificate',
    { smtp: { tls: null } },
    /^smtp\.tls = null: SMTP submission would use a self-signed certificate.*; fix: set smtp\.tls\.keyFile and smtp\.tls\.certFile/,
  ],
  [
    'an unverified smarthost certificate',
    { delivery: { verifyTls: false, smarthost: openRelay } },
    /^delivery\.verifyTls = false: the certificate of smarthost smtp\.relay-provider\.eu is not verified; fix: set delivery\.verifyTls: true$/,
  ],
  [
    'an unverified smarthost with credentials, even with the opt-out',
    { delivery: { smarthost: { ...relay, verifyTls: false, allowInsecureAuth: true } } },
    /^delivery\.smarthost\.verifyTls = false: the certificate of smarthost smtp\.relay-provider\.eu is not verified; fix: remove the key$/,
  ],
  [
    'a smarthost without required TLS',
    { delivery: { verifyTls: true, smarthost: { ...openRelay, requireTls: false } } },
    /^delivery\.smarthost\.requireTls = false \(and secure = false\): .*; fix: set delivery\.smarthost\.requireTls: true/,
  ],
  [
    'an open metrics listener on all interfaces',
    { metrics: { port: 9464, host: '0.0.0.0' } },
    /^metrics\.host = "0\.0\.0\.0": \/metrics on port 9464 would be open to the network without a token; fix: set metrics\.token, or metrics\.host: 127\.0\.0\.1$/,
  ],
  [
    'the console without a TLS proxy in front',
    { http: { trustProxy: false } },
    /^http\.trustProxy = false with console\.enabled = true: .*not be marked Secure.*; fix: serve the API behind a TLS-terminating proxy and set http\.trustProxy: true, or set console\.enabled: false$/,
  ],
  ['a managed Redis', { redis: { manage: 'auto' } }, /^redis\.manage = "auto": .*; fix: run Redis as a service and set redis\.manage: never$/],
];

describe('production mode refusals', () => {
  it('a production-ready config loads in production mode', () => {
    const c = loadConfig({ file: 'config/default.yaml', env: PROD, overrides: readyOverrides() });
    expect(c.mode).toBe('production');
    expect(refusals({}).lines).toEqual([]);
  });

  it.each(CASES)('refuses %s, alone, naming the key and the fix', (_what, patch, expected, secret) => {
    const { lines, message } = refusals(patch);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(expected);
    expect(lines[0]).toMatch(/; fix: /);
    if (secret) expect(message).not.toContain(secret);
  });

  it('accepts what is safe: a loopback smarthost, a metrics listener on loopback or behind a token, manage auto on another URL', () => {
    expect(refusals({ delivery: { smarthost: { host: '127.0.0.1', port: 25 } } }).lines).toEqual([]);
    expect(refusals({ delivery: { verifyTls: true, smarthost: { host: 'smtp.relay-provider.eu', port: 465, secure: true } } }).lines).toEqual([]);
    expect(refusals({ metrics: { port: 9464, host: '127.0.0.1' } }).lines).toEqual([]);
    expect(refusals({ metrics: { port: 9464, host: '0.0.0.0', token: 'f2b9c61d0e8a47f3b5d2' } }).lines).toEqual([]);
    expect(refusals({ redis: { manage: 'auto', url: 'redis://redis.kurir-mail.eu:6379' } }).lines).toEqual([]);
    expect(refusals({ http: { docs: true }, bounce: { secret: 'generated-elsewhere-4a1f' } }).lines).toEqual([]);
  });

  it('reports every refusal together, after the schema cross-checks, in one error', () => {
    const err = (() => {
      try {
        loadConfig({
          file: 'config/default.yaml',
          env: PROD,
          overrides: merge(readyOverrides(), { hostname: 'localhost', smtp: { tls: null, tlsPort: 2525, port: 2525 } }),
        });
      } catch (e) {
        return e as Error;
      }
      throw new Error('loaded');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/config: invalid configuration \(config\/default\.yaml\):\n {2}smtp\.tlsPort = 2525: must differ from smtp\.port\n/);
    expect(err.message).toMatch(/production mode .*, 2 problem\(s\):\n {2}hostname = "localhost".*\n {2}smtp\.tls = null/);
  });
});

describe('mode selection', () => {
  it('is development by default, production with NODE_ENV=production when mode is unset, and mode wins over NODE_ENV', () => {
    expect(loadConfig({ file: 'config/default.yaml' }).mode).toBe('development');
    expect(loadConfig({ file: 'config/default.yaml', env: { NODE_ENV: 'test' } }).mode).toBe('development');
    expect(() => loadConfig({ file: 'config/default.yaml', env: PROD })).toThrowError(
      /refusing to start in production mode \(NODE_ENV=production, mode not set/,
    );
    expect(loadConfig({ file: 'config/default.yaml', env: { ...PROD, KURIR_MODE: 'development' } }).mode).toBe('development');
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_MODE: 'production' } })).toThrowError(
      /refusing to start in production mode \(mode: production;/,
    );
    const f = join(dir, 'mode.yaml');
    writeFileSync(f, 'mode: production\n');
    expect(loadConfig({ file: f, overrides: readyOverrides() }).mode).toBe('production');
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_MODE: 'staging' } })).toThrowError(
      /mode = "staging": one of "development", "production"/,
    );
  });

  it('decides loopback and FQDN as documented', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', 'mailpit', 'smtp.relay-provider.eu']) expect(isLoopbackHost(h), h).toBe(false);
    for (const h of ['mail.kurir-mail.eu', 'mx1.mail.booking.de.']) expect(isPublicFqdn(h), h).toBe(true);
    for (const h of ['localhost', 'mail', 'mail.local', 'gw.internal', 'x.test', 'a.123', '-a.kurir.eu', '2001:db8::1']) expect(isPublicFqdn(h), h).toBe(false);
  });
});

describe('config errors never echo secrets', () => {
  it('redacts keys, passwords, tokens and Redis URL passwords in schema errors, in every mode', () => {
    const cases: Array<[Record<string, string>, RegExp, string]> = [
      [{ KURIR_API_KEYS: '[{ name: b, key: short-s3cret, domains: ["*"] }]' }, /apiKeys\.0\.key = <redacted>: at least 16 characters/, 'short-s3cret'],
      [
        { KURIR_SMTP_ACCOUNTS: '[{ name: b, username: u, password: pw1, domains: ["*"] }]' },
        /smtpAccounts\.0\.password = <redacted>: at least 8 characters/,
        'pw1',
      ],
      [{ KURIR_METRICS__TOKEN: '12345678901' }, /metrics\.token = <redacted>: Expected string, received number/, '12345678901'],
      [
        { KURIR_DELIVERY__SMARTHOST: '[relay.kurir-mail.eu, hunter2-relay]' },
        /delivery\.smarthost = \(a list of 2\): Expected object, received array/,
        'hunter2-relay',
      ],
      [{ KURIR_BOUNCE__SECRET: '[hunter3-verp]' }, /bounce\.secret = <redacted>: Expected string, received array/, 'hunter3-verp'],
      [
        { KURIR_REDIS__URL: 'http://kurir:r3dis-pa55@redis.kurir-mail.eu:6379' },
        /redis\.url = "http:\/\/kurir:<redacted>@redis\.kurir-mail\.eu:6379": a redis:\/\/ or rediss:\/\/ URL/,
        'r3dis-pa55',
      ],
      // A secret where a list or mapping of secrets belongs, and a URL with a password under another name.
      [{ KURIR_API_KEYS: 'a-bare-api-key-0123456789' }, /apiKeys = \(a string, not shown\): Expected array, received string/, 'a-bare-api-key-0123456789'],
      [{ KURIR_DELIVERY__SMARTHOST: 'smtp://relay:hunter4-relay@relay.kurir-mail.eu:587' }, /delivery\.smarthost = \(a string, not shown\)/, 'hunter4-relay'],
      [
        { KURIR_LOG__LEVEL: 'smtp://relay:hunter5-relay@relay.kurir-mail.eu' },
        /log\.level = "smtp:\/\/relay:<redacted>@relay\.kurir-mail\.eu"/,
        'hunter5-relay',
      ],
    ];
    for (const [env, expected, secret] of cases) {
      let message = '';
      try {
        loadConfig({ file: 'config/default.yaml', env });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, JSON.stringify(env)).toMatch(expected);
      expect(message).not.toContain(secret);
    }
  });

  it('reports a YAML syntax error by line and column, without the excerpt of the file', () => {
    const f = join(dir, 'broken.yaml');
    writeFileSync(f, 'apiKeys:\n  - name: b\n    key: "s3cret-in-a-broken-file\n  domains: [x\n');
    let message = '';
    try {
      loadConfig({ file: f });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^config: cannot read .*broken\.yaml: .*line \d+, column \d+/);
    expect(message).not.toContain('s3cret');
  });
});
