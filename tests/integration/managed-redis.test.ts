import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { redisAnswers, startManagedRedis } from '../../src/store/managed-redis.js';
import { freePort } from '../helpers/ports.js';

const dir = mkdtempSync(join(tmpdir(), 'kurir-managed-redis-'));
let child: ReturnType<typeof startManagedRedis> extends Promise<infer C> ? C | null : never = null;

afterAll(() => {
  child?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

it('starts a local redis-server with AOF and noeviction when none answers', async () => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  expect(await redisAnswers(url, 300)).toBe(false);
  child = await startManagedRedis(join(dir, 'redis'), port);
  expect(await redisAnswers(url)).toBe(true);
  const redis = new Redis(url);
  const [, aof] = (await redis.config('GET', 'appendonly')) as string[];
  const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as string[];
  await redis.set('k', 'v');
  await redis.quit();
  expect(aof).toBe('yes');
  expect(policy).toBe('noeviction');
  expect(existsSync(join(dir, 'redis'))).toBe(true);
  expect(readdirSync(join(dir, 'redis')).some((f) => f.includes('appendonly'))).toBe(true);
});
