import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';

const shards = (list: unknown) => ({ file: 'config/default.yaml', overrides: { redis: { shards: list } } });

describe('redis.shards', () => {
  it('is empty by default: one Redis holds everything', () => {
    expect(loadConfig({ file: 'config/default.yaml' }).redis.shards).toEqual([]);
  });

  it('keeps each shard with its sender domains in lower case', () => {
    const c = loadConfig(shards([{ name: 'shard-a', url: 'redis://10.0.0.2:6379', senderDomains: ['Mail.Example.org'] }]));
    expect(c.redis.shards).toEqual([{ name: 'shard-a', url: 'redis://10.0.0.2:6379', senderDomains: ['mail.example.org'] }]);
  });

  it('refuses a sender domain in two shards, a name used twice or reserved, a shard without domains and a URL that is not Redis', () => {
    const one = { name: 's1', url: 'redis://a:6379', senderDomains: ['a.test'] };
    expect(() => loadConfig(shards([one, { name: 's2', url: 'redis://b:6379', senderDomains: ['A.test'] }]))).toThrowError(/a\.test is already in shard s1/);
    expect(() => loadConfig(shards([one, { ...one, senderDomains: ['b.test'] }]))).toThrowError(/shard name s1 is used twice/);
    expect(() => loadConfig(shards([{ ...one, senderDomains: [] }]))).toThrowError(/redis\.shards\.0\.senderDomains/);
    expect(() => loadConfig(shards([{ ...one, url: 'http://a' }]))).toThrowError(/a redis:\/\/ or rediss:\/\/ URL/);
    // `main` labels redis.url in kurir_redis_up{redis} and /readyz.
    expect(() => loadConfig(shards([{ ...one, name: 'main' }]))).toThrowError(/main is the name of redis\.url/);
  });

  it('refuses durability fsync with shards: the fsync check watches the main Redis only', () => {
    const o = {
      file: 'config/default.yaml',
      overrides: { redis: { durability: 'fsync', shards: [{ name: 's1', url: 'redis://a:6379', senderDomains: ['a.test'] }] } },
    };
    expect(() => loadConfig(o)).toThrowError(/redis\.shards.*durability fsync is not supported with shards yet/);
  });
});
