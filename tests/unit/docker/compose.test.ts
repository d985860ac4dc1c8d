/**
 * Docker does not run on this project's machines, so the compose stack is
 * validated statically: YAML parses, every mounted or copied file exists,
 * ports line up with the gateway's config defaults, Prometheus scrapes the
 * gateway service on its HTTP port and loads the rule files, Grafana is
 * provisioned with the datasource and the three dashboards.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../../src/config/load.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const DOCKER = join(ROOT, 'docker');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[] | string;
  environment?: Record<string, string | number | null>;
  ports?: string[];
  expose?: string[];
  volumes?: string[];
  profiles?: string[];
  depends_on?: Record<string, { condition?: string; required?: boolean }> | string[];
  healthcheck?: { test: string[] | string };
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const compose = parse(readFileSync(join(DOCKER, 'compose.yml'), 'utf8')) as Compose;
const prometheus = parse(readFileSync(join(DOCKER, 'prometheus.yml'), 'utf8')) as {
  rule_files: string[];
  scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }>;
};
const dockerfile = readFileSync(join(DOCKER, 'Dockerfile'), 'utf8');
const svc = compose.services;

/** Compose variable interpolation with the defaults written in the file (the environment is ignored). */
function interpolate(value: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_, _name: string, def?: string) => def ?? '');
}

function environment(s: Service): Record<string, string> {
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v ?? ''))]));
}

/** "host:container[/proto]" → { host, container }. */
function portMapping(p: string): { host: number; container: number } {
  const parts = String(p).split('/')[0].split(':');
  return { host: Number(parts.at(-2)), container: Number(parts.at(-1)) };
}

function bindMounts(s: Service): Array<{ source: string; target: string; hostPath: string }> {
  return (s.volumes ?? [])
    .map((v) => {
      const [source, target] = v.split(':');
      return { source, target, hostPath: resolve(DOCKER, source) };
    })
    .filter((m) => m.source.startsWith('.') || m.source.startsWith('/'));
}

/** Dockerfile instructions with line continuations joined. */
function instructions(text: string): Array<{ op: string; args: string }> {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

// The gateway's own view of its configuration inside the container.
const kurirEnv = environment(svc.kurir);
// The image's own ENV lines (NODE_ENV=production) apply under the compose environment.
const imageEnv = Object.fromEntries([...dockerfile.matchAll(/^ENV\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)/gm)].map((m) => [m[1], m[2]]));
const CONFIG_FILE = join(ROOT, 'config/default.yaml');
const config = loadConfig({ file: CONFIG_FILE, env: { ...imageEnv, ...kurirEnv } });
const defaults = loadConfig({ file: CONFIG_FILE, env: {} });

describe('docker/compose.yml', () => {
  it('parses and has the gateway, redis, prometheus, grafana and a dev-profile mailpit', () => {
    expect(Object.keys(svc).sort()).toEqual(['grafana', 'kurir', 'mailpit', 'prometheus', 'redis']);
    expect(svc.mailpit.profiles).toEqual(['dev']);
    for (const name of ['kurir', 'redis', 'prometheus', 'grafana']) expect(svc[name].profiles, name).toBeUndefined();
  });

  it('builds the gateway from the repository root with docker/Dockerfile', () => {
    const build = svc.kurir.build!;
    const context = resolve(DOCKER, build.context);
    expect(context).toBe(ROOT);
    expect(existsSync(join(context, build.dockerfile))).toBe(true);
    expect(resolve(context, build.dockerfile)).toBe(join(DOCKER, 'Dockerfile'));
    // BuildKit's Dockerfile-specific ignore file keeps node_modules and tests out of the context.
    const ignore = readFileSync(join(DOCKER, 'Dockerfile.dockerignore'), 'utf8');
    expect(ignore).toMatch(/node_modules/);
  });

  it('every bind-mounted file or directory exists', () => {
    const mounts = Object.entries(svc).flatMap(([name, s]) => bindMounts(s).map((m) => ({ name, ...m })));
    expect(mounts.length).toBeGreaterThan(5);
    for (const m of mounts) expect(existsSync(m.hostPath), `${m.name}: ${m.source}`).toBe(true);
  });

  it('named volumes are declared', () => {
    for (const [name, s] of Object.entries(svc)) {
      for (const v of s.volumes ?? []) {
        const source = v.split(':')[0];
        if (source.startsWith('.') || source.startsWith('/')) continue;
        expect(Object.keys(compose.volumes ?? {}), `${name}: ${source}`).toContain(source);
      }
    }
  });

  it('the gateway configuration from the compose environment is valid', () => {
    expect(config.redis.url).toBeTruthy();
    // The image defaults to production mode; the compose stack runs the development config on purpose.
    expect(imageEnv.NODE_ENV).toBe('production');
    expect(config.mode).toBe('development');
    // Inside a container the gateway must listen beyond loopback.
    expect(config.http.host).toBe('0.0.0.0');
    expect(config.smtp.host).toBe('0.0.0.0');
  });

  it('publishes the gateway on its default HTTP (8025) and SMTP (2525) ports', () => {
    expect(defaults.http.port).toBe(8025);
    expect(defaults.smtp.port).toBe(2525);
    expect(config.http.port).toBe(defaults.http.port);
    expect(config.smtp.port).toBe(defaults.smtp.port);
    const ports = (svc.kurir.ports ?? []).map(portMapping);
    expect(ports).toContainEqual({ host: 8025, container: config.http.port });
    expect(ports).toContainEqual({ host: 2525, container: config.smtp.port });
  });

  it('no two services publish the same host port', () => {
    const hostPorts = Object.values(svc).flatMap((s) => (s.ports ?? []).map((p) => portMapping(p).host));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it('points the gateway at the redis service, which runs with AOF and noeviction', () => {
    const url = new URL(config.redis.url);
    expect(Object.keys(svc)).toContain(url.hostname);
    expect(url.hostname).toBe('redis');
    expect(Number(url.port || 6379)).toBe(6379);
    expect(config.redis.manage).toBe('never');
    expect(svc.redis.image).toMatch(/^redis:7/);
    const cmd = (Array.isArray(svc.redis.command) ? svc.redis.command : String(svc.redis.command).split(/\s+/)).join(' ');
    expect(cmd).toMatch(/--appendonly yes/);
    expect(cmd).toMatch(/--maxmemory-policy noeviction/);
    expect(svc.kurir.depends_on).toMatchObject({ redis: { condition: 'service_healthy' } });
    expect(svc.redis.healthcheck).toBeDefined();
  });

  it('relays through mailpit (dev profile) on its SMTP port', () => {
    expect(config.delivery.smarthost).not.toBeNull();
    expect(config.delivery.smarthost!.host).toBe('mailpit');
    expect(config.delivery.smarthost!.port).toBe(1025);
    expect(svc.mailpit.expose ?? []).toContain('1025');
    expect(svc.kurir.depends_on).toMatchObject({ mailpit: { required: false } });
  });

  it('keeps the gateway data directory on a volume', () => {
    const dataDir = posix.resolve('/app', config.dataDir);
    expect((svc.kurir.volumes ?? []).map((v) => v.split(':')[1])).toContain(dataDir);
  });
});

describe('docker/prometheus.yml', () => {
  it('scrapes the gateway service on its HTTP port at /metrics', () => {
    const job = prometheus.scrape_configs.find((j) => j.job_name === 'kurir');
    expect(job).toBeDefined();
    expect(job!.metrics_path ?? '/metrics').toBe('/metrics');
    const targets = job!.static_configs.flatMap((c) => c.targets);
    expect(targets).toEqual([`kurir:${config.http.port}`]);
    const [host] = targets[0].split(':');
    expect(Object.keys(svc)).toContain(host);
  });

  it('is the config file the prometheus service runs with, and its rule files are mounted', () => {
    const args = (svc.prometheus.command as string[]).join(' ');
    const configFile = /--config\.file=(\S+)/.exec(args)?.[1];
    const mounts = bindMounts(svc.prometheus);
    const configMount = mounts.find((m) => m.target === configFile);
    expect(configMount?.hostPath).toBe(join(DOCKER, 'prometheus.yml'));
    const ruleSources = prometheus.rule_files.map((f) => mounts.find((m) => m.target === f)?.hostPath);
    expect(ruleSources.sort()).toEqual([join(ROOT, 'dashboards/alerts.yml'), join(ROOT, 'dashboards/recording-rules.yml')]);
  });
});

describe('Grafana provisioning', () => {
  const mounts = bindMounts(svc.grafana);
  const provisioning = join(ROOT, 'dashboards/grafana/provisioning');

  it('mounts the datasource and dashboard provisioning directories', () => {
    expect(mounts.find((m) => m.target === '/etc/grafana/provisioning/datasources')?.hostPath).toBe(join(provisioning, 'datasources'));
    expect(mounts.find((m) => m.target === '/etc/grafana/provisioning/dashboards')?.hostPath).toBe(join(provisioning, 'dashboards'));
  });

  it('the datasource points at the prometheus service', () => {
    const ds = parse(readFileSync(join(provisioning, 'datasources/prometheus.yml'), 'utf8')) as {
      datasources: Array<{ type: string; url: string; uid: string }>;
    };
    const url = new URL(ds.datasources[0].url);
    expect(ds.datasources[0].type).toBe('prometheus');
    expect(url.hostname).toBe('prometheus');
    expect(Object.keys(svc)).toContain(url.hostname);
    expect((svc.prometheus.ports ?? []).map(portMapping).map((p) => p.container)).toContain(Number(url.port));
  });

  it('the dashboard provider path holds overview, delivery and admin', () => {
    const prov = parse(readFileSync(join(provisioning, 'dashboards/kurir.yml'), 'utf8')) as {
      providers: Array<{ type: string; options: { path: string } }>;
    };
    const dir = prov.providers[0].options.path;
    const inside = mounts.filter((m) => posix.dirname(m.target) === dir);
    expect(inside.map((m) => posix.basename(m.target)).sort()).toEqual(['admin.json', 'delivery.json', 'overview.json']);
    for (const m of inside) {
      expect(statSync(m.hostPath).isFile()).toBe(true);
      expect(posix.basename(m.target)).toBe(posix.basename(m.source));
    }
  });
});

describe('docker/Dockerfile', () => {
  const ins = instructions(dockerfile);
  const froms = ins.filter((i) => i.op === 'FROM');

  it('is multi-stage: build with npm ci + npm run build, run on node:22-slim or node:24', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms[0].args).toMatch(/ AS build$/i);
    expect(froms.at(-1)!.args).toMatch(/^node:(22-slim|24)/);
    const runs = ins
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');
    expect(runs).toMatch(/npm ci/);
    expect(runs).toMatch(/npm run build/);
  });

  it('copies only files that exist in the build context (from the build stage otherwise)', () => {
    const copies = ins.filter((i) => i.op === 'COPY' && !/--from=/.test(i.args));
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) expect(existsSync(join(ROOT, src)), src).toBe(true);
    }
  });

  it('runs as a non-root user, exposes the gateway ports and checks /healthz', () => {
    const runtime = ins.slice(ins.lastIndexOf(froms.at(-1)!));
    const user = runtime.filter((i) => i.op === 'USER').at(-1);
    expect(user?.args).toBeTruthy();
    expect(user!.args).not.toMatch(/^(root|0)(:|$)/);
    const exposed = runtime
      .filter((i) => i.op === 'EXPOSE')
      .flatMap((i) => i.args.split(/\s+/))
      .map(Number);
    expect(exposed).toEqual(expect.arrayContaining([defaults.http.port, defaults.smtp.port]));
    const health = runtime.find((i) => i.op === 'HEALTHCHECK');
    expect(health?.args).toContain(`http://127.0.0.1:${defaults.http.port}/healthz`);
    const cmd = runtime.filter((i) => i.op === 'CMD').at(-1);
    expect(JSON.parse(cmd!.args)).toEqual(['node', 'dist/src/main.js']);
  });

  it('the built entry point matches tsconfig (rootDir "." → dist/src/main.js)', () => {
    const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
    expect(posix.join(tsconfig.compilerOptions.outDir, 'src/main.js')).toBe('dist/src/main.js');
    expect(tsconfig.compilerOptions.rootDir).toBe('.');
    expect(existsSync(join(ROOT, 'src/main.ts'))).toBe(true);
  });
});
