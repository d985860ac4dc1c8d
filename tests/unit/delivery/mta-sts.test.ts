/**
 * MTA-STS policy discovery and cache (RFC 8461) against the real things: TXT records from the loopback DNS
 * server, policies over HTTPS from a loopback server with test-CA certificates, the cache in Redis.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MtaStsPolicies, mxMatches } from '../../../src/delivery/mta-sts.js';
import { httpsPolicyFetcher } from '../../../src/delivery/mta-sts-fetch.js';
import { createResolver } from '../../../src/delivery/resolver.js';
import { createLogger } from '../../../src/lib/logger.js';
import { createMetrics, type Metrics } from '../../../src/metrics/metrics.js';
import { createKeys } from '../../../src/store/keys.js';
import { MtaStsStore } from '../../../src/store/mta-sts-store.js';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';
import { policy, startPolicyServer, type PolicyServer } from '../../helpers/policy-server.js';
import { dropPrefix } from '../../helpers/test-gateway.js';
import { testCa } from '../../helpers/tls.js';

const prefix = `kurir-test-mtasts-${Math.random().toString(36).slice(2, 10)}`;
let dns: DnsServer;
let web: PolicyServer;
let redis: Redis;
let metrics: Metrics;
let sts: MtaStsPolicies;
let now = Date.UTC(2025, 2, 1);

async function count(counter: keyof Pick<Metrics, 'mtaStsLookups' | 'tlsFailures'>, labels: Record<string, string>): Promise<number> {
  const { values } = await metrics[counter].get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))?.value ?? 0;
}

/** Publishes `_mta-sts.<domain>` with `id` and the policy host's address. */
function publish(domain: string, id: string): void {
  dns.set(`_mta-sts.${domain}`, 'TXT', [`v=STSv1; id=${id};`]);
  dns.set(`mta-sts.${domain}`, 'A', ['127.0.0.1']);
}

beforeAll(async () => {
  dns = await startDnsServer();
  web = await startPolicyServer();
  redis = new Redis('redis://127.0.0.1:6379');
  metrics = createMetrics({ defaultMetrics: false });
  const resolver = createResolver({ servers: [dns.address], timeoutSeconds: 1, tries: 1 });
  sts = new MtaStsPolicies({
    resolver,
    store: new MtaStsStore(redis, createKeys(prefix)),
    fetch: httpsPolicyFetcher({ resolver, timeoutMs: 2000, port: web.port, trustedCa: [(await testCa()).cert] }),
    clock: { now: () => now },
    metrics,
    logger: createLogger({ level: 'silent' }),
    fetchRetrySeconds: 300,
  });
});

afterAll(async () => {
  await redis?.quit();
  await dropPrefix(prefix);
  await web?.close();
  await dns?.close();
});

describe('mxMatches (RFC 8461 4.1)', () => {
  it('matches exact names and one leftmost label for a wildcard', () => {
    expect(mxMatches('mx1.example.com', ['mx1.example.com'])).toBe(true);
    expect(mxMatches('MX1.Example.com.', ['mx1.example.com'])).toBe(true);
    expect(mxMatches('mx1.example.com', ['*.example.com'])).toBe(true);
    expect(mxMatches('example.com', ['*.example.com'])).toBe(false);
    expect(mxMatches('a.mx1.example.com', ['*.example.com'])).toBe(false);
    expect(mxMatches('mx1.example.net', ['mx1.example.com', '*.example.org'])).toBe(false);
    expect(mxMatches('mx1.badexample.com', ['*.example.com'])).toBe(false);
  });
});

describe('policy lookup and cache', () => {
  it('fetches a new policy, then serves it from the cache while the TXT id is unchanged', async () => {
    publish('one.test', 'a1');
    web.set('one.test', policy('enforce', ['mx.one.test', '*.one.test'], 3600));
    const first = await sts.lookup('one.test', 'other');
    expect(first).toMatchObject({ result: 'fetched', policy: { id: 'a1', mode: 'enforce', mx: ['mx.one.test', '*.one.test'], maxAge: 3600 } });
    const second = await sts.lookup('one.test', 'other');
    expect(second.result).toBe('cached');
    expect(second.policy).toEqual(first.policy);
    expect(web.requests.filter((h) => h === 'mta-sts.one.test')).toHaveLength(1);
    expect(await redis.ttl(`${prefix}:mta-sts:one.test`)).toBeGreaterThan(3500);
  });

  it('refetches when the TXT id changes, and after max_age', async () => {
    publish('two.test', 'b1');
    web.set('two.test', policy('testing', ['mx.two.test'], 600));
    expect((await sts.lookup('two.test', 'other')).result).toBe('fetched');
    dns.set('_mta-sts.two.test', 'TXT', ['v=STSv1; id=b2;']);
    web.set('two.test', policy('enforce', ['mx.two.test'], 600));
    const changed = await sts.lookup('two.test', 'other');
    expect(changed).toMatchObject({ result: 'fetched', policy: { id: 'b2', mode: 'enforce' } });
    now += 601_000;
    expect((await sts.lookup('two.test', 'other')).result).toBe('fetched');
    expect(web.requests.filter((h) => h === 'mta-sts.two.test')).toHaveLength(3);
  });

  it('keeps serving the cached policy when a new one cannot be fetched, and does not retry at once', async () => {
    publish('three.test', 'c1');
    web.set('three.test', policy('enforce', ['mx.three.test']));
    await sts.lookup('three.test', 'other');
    const errors = await count('tlsFailures', { provider: 'other', result_type: 'sts-policy-fetch-error' });
    dns.set('_mta-sts.three.test', 'TXT', ['v=STSv1; id=c2;']);
    web.set('three.test', { status: 500, body: 'down' });
    const stale = await sts.lookup('three.test', 'other');
    expect(stale).toMatchObject({ result: 'cached-fetch-failed', policy: { id: 'c1', mode: 'enforce' } });
    expect(await count('tlsFailures', { provider: 'other', result_type: 'sts-policy-fetch-error' })).toBe(errors + 1);
    const requests = web.requests.length;
    expect((await sts.lookup('three.test', 'other')).result).toBe('cached-fetch-failed');
    expect(web.requests.length).toBe(requests);
    // The TXT record gone (or unreadable): the cached policy still applies until it expires.
    dns.remove('_mta-sts.three.test');
    expect(await sts.lookup('three.test', 'other')).toMatchObject({ result: 'cached', policy: { id: 'c1' } });
    dns.servfail('_mta-sts.three.test');
    expect(await sts.lookup('three.test', 'other')).toMatchObject({ result: 'cached', policy: { id: 'c1' } });
  });

  it('a second gateway uses the policy the first fetched, and each reads Redis at most once a minute per domain', async () => {
    const stsB = new MtaStsPolicies({
      resolver: createResolver({ servers: [dns.address], timeoutSeconds: 1, tries: 1 }),
      store: new MtaStsStore(redis, createKeys(prefix)),
      fetch: async () => {
        throw new Error('gateway B must not fetch');
      },
      clock: { now: () => now },
      metrics,
      logger: createLogger({ level: 'silent' }),
      fetchRetrySeconds: 300,
    });
    // B learns there is no policy, and keeps that in memory.
    expect(await stsB.lookup('shared.test', 'other')).toEqual({ policy: null, result: 'not-found' });
    publish('shared.test', 's1');
    web.set('shared.test', policy('enforce', ['mx.shared.test'], 86400));
    expect((await sts.lookup('shared.test', 'other')).result).toBe('fetched');
    // The TXT id is newer than B's copy (none): B reads Redis again and finds what A fetched.
    expect(await stsB.lookup('shared.test', 'other')).toMatchObject({ result: 'cached', policy: { id: 's1' } });
    // Within the minute B answers from memory: with the Redis copy gone it still has the policy.
    await redis.del(`${prefix}:mta-sts:shared.test`);
    expect(await stsB.lookup('shared.test', 'other')).toMatchObject({ result: 'cached', policy: { id: 's1' } });
    // After it, B reads Redis, finds nothing, and would have to fetch (which this B refuses, so it goes without).
    now += 61_000;
    expect(await stsB.lookup('shared.test', 'other')).toEqual({ policy: null, result: 'fetch-failed' });
    expect(web.requests.filter((h) => h === 'mta-sts.shared.test')).toHaveLength(1);
  });

  it('goes on without a policy when there is none, or it cannot be had and nothing is cached', async () => {
    expect(await sts.lookup('nopolicy.test', 'other')).toEqual({ policy: null, result: 'not-found' });
    publish('broken.test', 'd1');
    web.set('broken.test', { status: 404 });
    expect(await sts.lookup('broken.test', 'other')).toEqual({ policy: null, result: 'fetch-failed' });
    dns.servfail('_mta-sts.dnsfail.test');
    expect(await sts.lookup('dnsfail.test', 'other')).toEqual({ policy: null, result: 'dns-error' });
    dns.set('_mta-sts.twice.test', 'TXT', ['v=STSv1; id=1;', 'v=STSv1; id=2;']);
    expect(await sts.lookup('twice.test', 'other')).toEqual({ policy: null, result: 'not-found' });
  });

  it('names policy failures as RFC 8460 does', async () => {
    const cases: Array<[string, () => void, string]> = [
      ['invalid.test', () => web.set('invalid.test', 'version: STSv1\r\nmode: enforce\r\nmax_age: 86400\r\n'), 'sts-policy-invalid'],
      ['html.test', () => web.set('html.test', { status: 200, body: policy('enforce', ['mx.html.test']), contentType: 'text/html' }), 'sts-policy-invalid'],
      [
        'redirect.test',
        () => web.set('redirect.test', { status: 301, location: 'https://mta-sts.one.test/.well-known/mta-sts.txt' }),
        'sts-policy-fetch-error',
      ],
      [
        'selfsigned.test',
        () => {
          web.untrusted('selfsigned.test');
          web.set('selfsigned.test', policy('enforce', ['mx.selfsigned.test']));
        },
        'sts-webpki-invalid',
      ],
      ['noaddress.test', () => dns.remove('mta-sts.noaddress.test'), 'sts-policy-fetch-error'],
    ];
    for (const [domain, arrange, type] of cases) {
      publish(domain, 'x1');
      arrange();
      const before = await count('tlsFailures', { provider: 'gmail', result_type: type });
      expect(await sts.lookup(domain, 'gmail'), domain).toEqual({ policy: null, result: 'fetch-failed' });
      expect(await count('tlsFailures', { provider: 'gmail', result_type: type }), domain).toBe(before + 1);
    }
  });
});

describe('applying a policy to MX targets', () => {
  const targets = [
    { host: '127.0.0.1', port: 25, servername: 'mx.apply.test' },
    { host: '127.0.0.2', port: 25, servername: 'backup.elsewhere.test' },
  ];

  it('enforce: only listed MX hosts, with STARTTLS required and the certificate verified', async () => {
    publish('apply.test', 'e1');
    web.set('apply.test', policy('enforce', ['mx.apply.test']));
    const applied = await sts.apply('apply.test', 'other', targets);
    expect(applied).toEqual({
      mode: 'enforce',
      targets: [{ ...targets[0], secure: false, requireTls: true, verifyTls: true, tlsRequiredBy: 'MTA-STS policy of apply.test, enforce' }],
    });
  });

  it('enforce with no listed MX host: a refusal naming the hosts and the patterns', async () => {
    publish('nomatch.test', 'f1');
    web.set('nomatch.test', policy('enforce', ['mx.nomatch.test']));
    const applied = await sts.apply('nomatch.test', 'other', targets);
    expect(applied).toEqual({
      mode: 'enforce',
      refusal: 'MTA-STS policy of nomatch.test (enforce): no MX host matches (MX mx.apply.test, backup.elsewhere.test; policy mx mx.nomatch.test); not sent',
    });
  });

  it('testing: every target as it is, unlisted ones marked; none: unchanged', async () => {
    publish('trial.test', 'g1');
    web.set('trial.test', policy('testing', ['mx.apply.test']));
    expect(await sts.apply('trial.test', 'other', targets)).toEqual({ mode: 'testing', targets: [targets[0], { ...targets[1], policyMismatch: true }] });
    publish('relaxed.test', 'h1');
    web.set('relaxed.test', policy('none', []));
    expect(await sts.apply('relaxed.test', 'other', targets)).toEqual({ mode: null, targets });
  });
});
