/**
 * A redis-server of the test's own (never the shared one on 6379): a free loopback port, its own data
 * folder with AOF on, so a test can shut it down, kill it and start it again on the same data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';

export interface PrivateRedis {
  port: number;
  url: string;
  dir: string;
  /** Starts the server (again) on the same port and data folder; resolves once it answers PING. */
  start(): Promise<void>;
  /** `SHUTDOWN` (AOF flushed, clean exit). */
  shutdown(): Promise<void>;
  /** SIGKILL: no chance to flush anything beyond what the AOF policy already wrote. */
  kill(): Promise<void>;
  /** Stops the server and removes its data folder. */
  destroy(): Promise<void>;
}

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

async function ping(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** Starts a private redis-server with AOF (`appendfsync` as given, default everysec). */
export async function startPrivateRedis(opts: { appendfsync?: 'always' | 'everysec' | 'no'; extraArgs?: string[] } = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'kurir-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let proc: ChildProcess | null = null;
  const args = [
    '--bind',
    '127.0.0.1',
    '--port',
    String(port),
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    opts.appendfsync ?? 'everysec',
    '--maxmemory-policy',
    'noeviction',
    ...(opts.extraArgs ?? []),
  ];
  const r: PrivateRedis = {
    port,
    url,
    dir,
    async start() {
      proc = spawn('redis-server', args, { stdio: 'ignore' });
      for (let i = 0; i < 100; i++) {
        if (await ping(url)) return;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`private redis-server on ${port} did not start`);
    },
    async shutdown() {
      const c = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on('error', () => undefined);
      await c.call('SHUTDOWN').catch(() => undefined); // the connection closes instead of answering
      c.disconnect();
      if (proc) await exited(proc);
    },
    async kill() {
      proc?.kill('SIGKILL');
      if (proc) await exited(proc);
    },
    async destroy() {
      proc?.kill('SIGKILL');
      if (proc) await exited(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await r.start();
  return r;
}
