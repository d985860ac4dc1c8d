import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, envOverrides, loadConfig } from '../../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'kurir-config-'));
function file(text: string): string {
  const p = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, text);
  return p;
}

describe('loadConfig', () => {
  it('loads the shipped default config and freezes it', () => {
    const c = loadConfig({ file: 'config/default.yaml' });
    expect(c.smtp.port).toBe(2525);
    expect(c.http.port).toBe(8025);
    expect(c.delivery.ttl.verification).toBe(1800);
    expect(c.domains[0].name).toBe('example.test');
    expect(Object.isFrozen(c.delivery.ttl)).toBe(true);
  });

  it('applies KURIR_* environment overrides with YAML-typed values, and REDIS_URL', () => {
    const c = loadConfig({
      file: 'config/default.yaml',
      env: {
        KURIR_SMTP__PORT: '2600',
        KURIR_DELIVERY__RETRY_SCHEDULE: '[5, 10]',
        KURIR_DNS__SERVERS: '["127.0.0.1:5353"]',
        REDIS_URL: 'redis://10.0.0.1:6380',
      },
    });
    expect(c.smtp.port).toBe(2600);
    expect(c.delivery.retrySchedule).toEqual([5, 10]);
    expect(c.dns.servers).toEqual(['127.0.0.1:5353']);
    expect(c.redis.url).toBe('redis://10.0.0.1:6380');
  });

  it('names the key, the value and what is allowed for a bad value', () => {
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_SMTP__PORT: 'abc' } })).toThrowError(/smtp\.port = "abc": Expected number/);
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_LOG__LEVEL: 'loud' } })).toThrowError(/log\.level = "loud": one of "fatal"/);
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_HTTP__PORT: '70000' } })).toThrowError(ConfigError);
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_DKIM__SIGNING_THREADS: 'many' } })).toThrowError(
      /dkim\.signingThreads = "many": auto, or a whole number from 0 to 16/,
    );
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_DKIM__SIGNING_THREADS: '17' } })).toThrowError(
      /dkim\.signingThreads = 17: Number must be less than or equal to 16/,
    );
    // Not zod's bare "Invalid": what a prefix may hold.
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_REDIS__PREFIX: "'kurir:'" } })).toThrowError(
      /redis\.prefix = "kurir:": letters, digits, _ and - only \(Kurir adds the colon\)/,
    );
  });

  it('rejects unknown keys and credentials scoped to unconfigured domains', () => {
    expect(() => loadConfig({ file: file('smtp:\n  prot: 25\n') })).toThrowError(/smtp: unknown key\(s\) prot/);
    const bad = file('domains: [{ name: a.test }]\napiKeys: [{ name: k, key: "0123456789abcdef", domains: [b.test] }]\n');
    expect(() => loadConfig({ file: bad })).toThrowError(/apiKeys\.0\.domains\.0 = "b\.test": not a configured sender domain/);
  });

  // Found 2 Dec 2026: KURIR_DELIVERY__MAX_TTL_SECONDS=90 passed, and then every message without a ttl of its own was refused.
  it('refuses a delivery.ttl.* above delivery.maxTtlSeconds, naming each key', () => {
    const env = { KURIR_DELIVERY__MAX_TTL_SECONDS: '90' };
    expect(() => loadConfig({ file: 'config/default.yaml', env })).toThrowError(
      /delivery\.ttl\.verification = 1800: must not exceed delivery\.maxTtlSeconds \(90\)/,
    );
    expect(() => loadConfig({ file: 'config/default.yaml', env })).toThrowError(/delivery\.ttl\.normal = 86400: must not exceed/);
    expect(() => loadConfig({ file: 'config/default.yaml', env })).toThrowError(/delivery\.ttl\.bulk = 86400: must not exceed/);
    const lowered = { ...env, KURIR_DELIVERY__TTL__VERIFICATION: '60', KURIR_DELIVERY__TTL__NORMAL: '90', KURIR_DELIVERY__TTL__BULK: '90' };
    expect(loadConfig({ file: 'config/default.yaml', env: lowered }).delivery.ttl).toEqual({ verification: 60, normal: 90, bulk: 90 });
  });

  it('refuses a configured webhook URL with a user name or password in it', () => {
    const bad = file(
      'domains: [{ name: a.test }]\napiKeys: [{ name: k, key: "0123456789abcdef", webhook: { url: "https://u:pw@h.a.test/x", secret: "0123456789abcdef" } }]\n',
    );
    expect(() => loadConfig({ file: bad })).toThrowError(/apiKeys\.0\.webhook\.url = .*no user name or password in the URL/);
    expect(() => loadConfig({ file: bad })).not.toThrowError(/u:pw/);
  });

  it('refuses a configured webhook secret with a line break, as the credentials API does', () => {
    const bad = file(
      'domains: [{ name: a.test }]\napiKeys: [{ name: k, key: "0123456789abcdef", webhook: { url: "https://h.a.test/x", secret: "0123456789abcdef\\n" } }]\n',
    );
    expect(() => loadConfig({ file: bad })).toThrowError(/apiKeys\.0\.webhook\.secret.*printable characters only/);
  });

  it('leaves KURIR_LOG_FORMAT to scripts/start.mjs: `KURIR_LOG_FORMAT=json npm start` (docs/operations.md) must start', () => {
    // start.mjs reads it and the gateway it spawns inherits the environment; as an override it was the unknown key logFormat.
    expect(envOverrides({ KURIR_LOG_FORMAT: 'json' })).toEqual({});
    expect(loadConfig({ file: 'config/default.yaml', env: { KURIR_LOG_FORMAT: 'json' } }).log.level).toBe('info');
  });

  it('names the KURIR_ variable a bad value came from, and says when it was empty (an unset variable in a compose file)', () => {
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_SMTP__PORT: '' } })).toThrowError(
      /^ {2}smtp\.port = null: Expected number, received null \(from KURIR_SMTP__PORT, empty\)$/m,
    );
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_DELIVERY__SMARTHOST: '{ host: h, port: x }' } })).toThrowError(
      /^ {2}delivery\.smarthost\.port = "x": Expected number, received string \(from KURIR_DELIVERY__SMARTHOST\)$/m,
    );
    // From the file: no variable named.
    expect(() => loadConfig({ file: file('smtp:\n  port: x\n') })).toThrowError(/^ {2}smtp\.port = "x": Expected number, received string$/m);
  });

  it('for an unknown key says where it came from and what was probably meant', () => {
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_SMTP__PROT: '25' } })).toThrowError(
      /^ {2}smtp: unknown key\(s\) prot \(from KURIR_SMTP__PROT\): did you mean smtp\.port\?$/m,
    );
    expect(() => loadConfig({ file: file('http:\n  max_connections: 5\n') })).toThrowError(
      /^ {2}http: unknown key\(s\) max_connections: did you mean http\.maxConnections\?$/m,
    );
    // A misspelt section from the environment: the variable is named, and with nothing close the allowed keys are listed.
    expect(() => loadConfig({ file: 'config/default.yaml', env: { KURIR_SMPT__PORT: '25' } })).toThrowError(
      /^ {2}\(root\): unknown key\(s\) smpt \(from KURIR_SMPT__PORT\): did you mean smtp\?$/m,
    );
    expect(() => loadConfig({ file: file('console:\n  zzz: 1\n') })).toThrowError(
      /^ {2}console: unknown key\(s\) zzz: the keys here are enabled, idleTimeoutSeconds, grafanaUrl$/m,
    );
  });

  it('says when the file is missing', () => {
    expect(() => loadConfig({ file: join(dir, 'nope.yaml') })).toThrowError(/cannot read .*nope\.yaml: file not found/);
  });

  it('says where a relative config path was looked for: started from another directory, config/default.yaml is not found', () => {
    const abs = join(process.cwd(), 'config', 'nope.yaml');
    expect(() => loadConfig({ file: 'config/nope.yaml' })).toThrowError(
      `config: cannot read config/nope.yaml: file not found (looked for ${abs}: a relative path is resolved from the working directory; run Kurir from its own directory, as npm start does, or set KURIR_CONFIG to an absolute path)`,
    );
  });

  it('names feedback.rulesFile and shaping.throttleRulesFile when their file is missing, before anything connects', () => {
    // Schema defaults relative to the working directory (feedback.rulesFile is not in config/default.yaml): started from
    // another directory, the gateway failed after connecting to Redis with a stack trace naming neither key.
    const err = (() => {
      try {
        loadConfig({
          file: 'config/default.yaml',
          overrides: { feedback: { rulesFile: 'config/nope-rules.yaml' }, shaping: { throttleRulesFile: '/nope/t.yaml' } },
        });
      } catch (e) {
        return e as Error;
      }
      throw new Error('loaded');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(
      `feedback.rulesFile = "config/nope-rules.yaml": file not found (looked for ${join(process.cwd(), 'config/nope-rules.yaml')}; a relative path is resolved from the working directory)`,
    );
    expect(err.message).toContain('shaping.throttleRulesFile = "/nope/t.yaml": file not found;');
  });

  it('maps nested env names to camelCase paths', () => {
    expect(envOverrides({ KURIR_DELIVERY__SMARTHOST__HOST: 'mailpit', OTHER: 'x' })).toEqual({ delivery: { smarthost: { host: 'mailpit' } } });
    // The CLI's gateway URL and key share the prefix but are not config overrides (a gateway started with them set must not fail).
    expect(envOverrides({ KURIR_URL: 'http://127.0.0.1:8025', KURIR_ADMIN_KEY: 'k', KURIR_CONFIG: 'c.yaml', KURIR_LOG__LEVEL: 'warn' })).toEqual({
      log: { level: 'warn' },
    });
  });
});
