/**
 * The gateway as a newcomer runs it: `npm start` in a terminal. SIGTERM to npm stops the whole tree (npm → node
 * running src/main.ts) and frees the ports; a Redis that does not answer stops start-up with one line naming the
 * URL and the fix, a non-zero exit and no stack trace; a bad DKIM key file, or one others can read, exits 2 naming
 * the key and the file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateDkimKey } from '../../src/dkim/keys.js';
import { dropPrefix } from '../helpers/test-gateway.js';
import { freePort } from '../helpers/ports.js';

const dir = mkdtempSync(join(tmpdir(), 'kurir-npm-start-'));
const prefix = `kurir-test-npmstart-${Math.random().toString(36).slice(2, 8)}`;
const started: ChildProcess[] = [];
/** Processes below npm seen by a test: killed at the end if a failing run left them behind. */
const seen: number[] = [];

afterAll(async () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  await dropPrefix(prefix);
});

/**
 * A config of its own: keys and data in a temp folder, listeners on free ports, its own Redis prefix; `keyFile`, a
 * DKIM key file to use as it is (not generated).
 */
function writeConfig(redisUrl: string, keyFile?: string): string {
  const file = join(dir, `kurir-${Math.random().toString(36).slice(2, 8)}.yaml`);
  writeFileSync(
    file,
    [
      'roles: [intake, api, worker, feedback]',
      `dataDir: ${join(dir, 'data')}`,
      `redis: { url: '${redisUrl}', prefix: ${prefix}, manage: never }`,
      'smtp: { port: 0 }',
      'http: { port: 0 }',
      'feedback: { port: 0 }',
      `domains: [{ name: example.test, dkim: [{ selector: s1, algorithm: ed25519, privateKeyFile: ${keyFile ?? join(dir, 'data/s1.pem')}, generate: ${!keyFile} }] }]`,
      'apiKeys: [{ name: t, key: npm-start-test-key-0001, domains: [example.test] }]',
      'smtpAccounts: []',
    ].join('\n'),
  );
  return file;
}

function npmStart(config: string): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn('npm', ['start'], { cwd: resolve('.'), env: { ...process.env, KURIR_CONFIG: config }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

/** The message of the one fatal log line in `out` (fails the test when there is none or more than one). */
function onlyFatal(out: string): string {
  const fatal = out.split('\n').filter((l) => l.includes('"level":60'));
  expect(fatal).toHaveLength(1);
  return JSON.parse(fatal[0]).msg;
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((done) => child.once('exit', (code) => done(code)));
}

/** Every process below `pid`, from /proc (Linux). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, pp] of parent) {
      if (pp !== p) continue;
      out.push(child);
      walk(child);
    }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      done(true);
    });
    s.once('error', () => done(false));
  });
}

async function waitFor(check: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('npm start', () => {
  it('SIGTERM to npm stops the gateway: ports free, no child process left', async () => {
    const { child, output } = npmStart(writeConfig('redis://127.0.0.1:6379'));
    await waitFor(() => output().includes('"msg":"kurir started"'), 60_000);
    const line = output()
      .split('\n')
      .find((l) => l.includes('"msg":"kurir started"'))!;
    const ports = Object.values(JSON.parse(line).ports as Record<string, number>);
    expect(ports.length).toBe(3);
    for (const p of ports) expect(await listening(p)).toBe(true);
    const tree = descendants(child.pid!);
    seen.push(...tree);
    expect(tree.length).toBeGreaterThan(0);

    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    await waitFor(() => tree.every((pid) => !alive(pid)), 15_000);
    for (const p of ports) expect(await listening(p)).toBe(false);
    expect(output()).toContain('"msg":"stopped"');
  }, 90_000);

  it('Redis not answering: one line naming the URL and the fix, exit 1, no stack trace', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const { child, output } = npmStart(writeConfig(url));
    expect(await exited(child)).toBe(1);
    expect(onlyFatal(output())).toBe(
      `cannot reach Redis at ${url} after 10 s (ECONNREFUSED): start Redis there, or point REDIS_URL (config key redis.url) at a running server`,
    );
    expect(output()).not.toMatch(/\n\s+at /);
    expect(output()).not.toContain('"stack"');
  }, 90_000);

  it('a DKIM key file that is not a key: one line naming the key and the file, exit 2 (a bad configuration), no stack trace', async () => {
    const keyFile = join(dir, 'not-a-key.pem');
    writeFileSync(keyFile, 'not a key\n', { mode: 0o600 });
    const { child, output } = npmStart(writeConfig('redis://127.0.0.1:6379', keyFile));
    expect(await exited(child)).toBe(2);
    expect(onlyFatal(output())).toBe(
      `config: domains.0.dkim.0.privateKeyFile (${keyFile}): DKIM private key is not PEM text (expected "-----BEGIN PRIVATE KEY-----")`,
    );
    expect(output()).not.toMatch(/\n\s+at /);
    expect(output()).not.toContain('"stack"');
  }, 90_000);

  it('a DKIM key file others can read: refused before anything starts, naming the key, the file and the fix; exit 2, no stack trace', async () => {
    const keyFile = join(dir, 'world-readable.pem');
    writeFileSync(keyFile, generateDkimKey('ed25519').privateKeyPem, { mode: 0o644 });
    chmodSync(keyFile, 0o644); // whatever the umask
    const config = writeConfig('redis://127.0.0.1:6379', keyFile);
    const { child, output } = npmStart(config);
    expect(await exited(child)).toBe(2);
    expect(output()).toContain(`config: invalid configuration (${config}):\n  domains.0.dkim.0.privateKeyFile = ${JSON.stringify(keyFile)}`);
    expect(output()).toContain(`a secret file readable by others (mode 0644); fix: run chmod 600 ${keyFile} (0640 with a group that must read it is allowed)`);
    expect(output()).not.toContain('kurir started');
    expect(output()).not.toMatch(/\n\s+at /);
    expect(output()).not.toContain('"stack"');
  }, 90_000);
});
