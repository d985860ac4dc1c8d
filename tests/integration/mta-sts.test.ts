/**
 * Outbound MTA-STS end to end: a real gateway delivering to receivers on loopback (127.0.0.1 with STARTTLS and a
 * test-CA certificate for mx.sts.test; 127.0.0.2 without STARTTLS), policies from the loopback HTTPS server,
 * TXT and MX records from the loopback DNS server, the policy cache in Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsPolicyFetcher } from '../../src/delivery/mta-sts-fetch.js';
import { createResolver } from '../../src/delivery/resolver.js';
import type { Metrics } from '../../src/metrics/metrics.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { policy, startPolicyServer, type PolicyServer } from '../helpers/policy-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { caSignedCert, testCa } from '../helpers/tls.js';
import { closeAll } from '../helpers/close-all.js';

let dns: DnsServer;
let web: PolicyServer;
let tlsMx: Receiver; // 127.0.0.1: STARTTLS, certificate for mx.sts.test signed by the test CA
let plainMx: Receiver; // 127.0.0.2, same port: no STARTTLS
let t: TestGateway;

const message = { from: 'Passport office <noreply@example.test>', subject: 'Your code', text: 'Code: 123456', priority: 'verification' };

/** A recipient domain with its MX host and, when `sts` is given, an MTA-STS policy. */
function domain(name: string, mx: string, sts?: { id: string; mode: 'enforce' | 'testing'; mx: string[] }): void {
  dns.set(name, 'MX', [{ exchange: mx, priority: 10 }]);
  if (!sts) return;
  dns.set(`_mta-sts.${name}`, 'TXT', [`v=STSv1; id=${sts.id};`]);
  dns.set(`mta-sts.${name}`, 'A', ['127.0.0.1']);
  web.set(name, policy(sts.mode, sts.mx));
}

async function count(counter: keyof Pick<Metrics, 'mtaStsSessions' | 'mtaStsLookups' | 'tlsFailures'>, labels: Record<string, string>): Promise<number> {
  const { values } = await t.gateway.metrics[counter].get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))?.value ?? 0;
}

async function send(to: string, until: 'delivered' | 'deferred'): Promise<{ status: any; reply: string }> {
  const res = await t.submit({ ...message, to: [to] });
  expect(res.status).toBe(202);
  const status = await t.waitForStatus(res.body.id, (s) => s.events.some((e: any) => e.type === until));
  return { status, reply: status.recipients[to].reply };
}

beforeAll(async () => {
  const ca = await testCa();
  tlsMx = await startReceiver({ hostname: 'mx.sts.test', cert: await caSignedCert('mx.sts.test') });
  plainMx = await startReceiver({ host: '127.0.0.2', port: tlsMx.port, tls: false, hostname: 'mx.plain.test' });
  dns = await startDnsServer({
    'mx.sts.test': { A: ['127.0.0.1'] },
    'mx2.sts.test': { A: ['127.0.0.1'] },
    'mx.other.test': { A: ['127.0.0.1'] },
    'mx.plain.test': { A: ['127.0.0.2'] },
  });
  web = await startPolicyServer();
  const resolver = createResolver({ servers: [dns.address], timeoutSeconds: 1, tries: 1 });
  t = await startTestGateway({
    dns,
    // One attempt per test: a deferred message comes back only after a minute, so the counts below are exact.
    overrides: { delivery: { mxPort: tlsMx.port, retrySchedule: [60] } },
    gatewayOptions: {
      trustedCa: [ca.cert],
      mtaStsFetch: httpsPolicyFetcher({ resolver, timeoutMs: 2000, port: web.port, trustedCa: [ca.cert] }),
    },
  });
});

afterAll(() => closeAll(t, web, tlsMx, plainMx, dns));

describe('MTA-STS enforce', () => {
  it('delivers to a listed MX over STARTTLS with a certificate verified for the MX name', async () => {
    domain('enforced.test', 'mx.sts.test', { id: 'e1', mode: 'enforce', mx: ['mx.sts.test'] });
    const before = await count('mtaStsSessions', { mode: 'enforce', result: 'success' });
    await send('guest@enforced.test', 'delivered');
    const got = tlsMx.messages.find((m) => m.rcptTo.includes('guest@enforced.test'));
    expect(got?.secure).toBe(true);
    expect(await count('mtaStsSessions', { mode: 'enforce', result: 'success' })).toBe(before + 1);
    expect(await count('mtaStsLookups', { result: 'fetched' })).toBeGreaterThanOrEqual(1);
  });

  it('defers, sending nothing, when the MX does not offer STARTTLS', async () => {
    domain('plain.test', 'mx.plain.test', { id: 'p1', mode: 'enforce', mx: ['mx.plain.test'] });
    const failures = await count('tlsFailures', { provider: 'other', result_type: 'starttls-not-supported' });
    const { status, reply } = await send('guest@plain.test', 'deferred');
    expect(status.recipients['guest@plain.test'].status).toBe('deferred');
    expect(reply).toMatch(/^TLS required \(MTA-STS policy of plain\.test, enforce\): mx\.plain\.test does not offer STARTTLS; the message was not sent/);
    expect(plainMx.connections).toBeGreaterThan(0);
    expect(plainMx.events.filter((e) => e.stage === 'mail')).toEqual([]);
    expect(plainMx.messages).toEqual([]);
    expect(await count('tlsFailures', { provider: 'other', result_type: 'starttls-not-supported' })).toBe(failures + 1);
  });

  it('defers, without connecting, when no MX host matches the policy', async () => {
    domain('nomatch.test', 'mx.sts.test', { id: 'n1', mode: 'enforce', mx: ['mail.elsewhere.test'] });
    const failures = await count('tlsFailures', { provider: 'other', result_type: 'validation-failure' });
    const { status, reply } = await send('guest@nomatch.test', 'deferred');
    expect(reply).toBe('MTA-STS policy of nomatch.test (enforce): no MX host matches (MX mx.sts.test; policy mx mail.elsewhere.test); not sent');
    expect(status.events.map((e: any) => e.type)).toEqual(['queued', 'deferred']);
    expect(tlsMx.attempts('guest@nomatch.test')).toBe(0);
    expect(await count('tlsFailures', { provider: 'other', result_type: 'validation-failure' })).toBe(failures + 1);
  });

  it('defers when the certificate does not name the MX host', async () => {
    domain('mismatch.test', 'mx2.sts.test', { id: 'm1', mode: 'enforce', mx: ['*.sts.test'] });
    const { reply } = await send('guest@mismatch.test', 'deferred');
    expect(reply).toMatch(/the TLS certificate of mx2\.sts\.test was refused \(certificate-host-mismatch\)/);
    expect(tlsMx.attempts('guest@mismatch.test')).toBe(0);
    expect(await count('tlsFailures', { provider: 'other', result_type: 'certificate-host-mismatch' })).toBe(1);
  });

  it('applies the cached policy when a changed one cannot be fetched', async () => {
    domain('cached.test', 'mx.sts.test', { id: 'c1', mode: 'enforce', mx: ['mx.sts.test'] });
    // The MX and TXT changes below must be seen at once: with TTL 0 the gateway's DNS cache keeps no copy.
    dns.setTtl('cached.test', 0);
    dns.setTtl('_mta-sts.cached.test', 0);
    await send('first@cached.test', 'delivered');
    // The id changes but the policy host fails, and the MX moves to a host the cached policy does not list.
    dns.set('_mta-sts.cached.test', 'TXT', ['v=STSv1; id=c2;']);
    web.set('cached.test', { status: 500, body: 'down' });
    dns.set('cached.test', 'MX', [{ exchange: 'mx.other.test', priority: 10 }]);
    const stale = await count('mtaStsLookups', { result: 'cached-fetch-failed' });
    const { reply } = await send('second@cached.test', 'deferred');
    expect(reply).toMatch(/^MTA-STS policy of cached\.test \(enforce\): no MX host matches \(MX mx\.other\.test; policy mx mx\.sts\.test\)/);
    expect(await count('mtaStsLookups', { result: 'cached-fetch-failed' })).toBe(stale + 1);
    expect(await count('tlsFailures', { provider: 'other', result_type: 'sts-policy-fetch-error' })).toBe(1);
    expect(tlsMx.attempts('second@cached.test')).toBe(0);
  });
});

describe('MTA-STS testing and no policy', () => {
  it('testing: delivers as usual and counts the failure', async () => {
    domain('trial.test', 'mx.plain.test', { id: 't1', mode: 'testing', mx: ['mx.plain.test'] });
    const failures = await count('mtaStsSessions', { mode: 'testing', result: 'failure' });
    const starttls = await count('tlsFailures', { provider: 'other', result_type: 'starttls-not-supported' });
    await send('guest@trial.test', 'delivered');
    expect(plainMx.messages.find((m) => m.rcptTo.includes('guest@trial.test'))?.secure).toBe(false);
    expect(await count('mtaStsSessions', { mode: 'testing', result: 'failure' })).toBe(failures + 1);
    expect(await count('tlsFailures', { provider: 'other', result_type: 'starttls-not-supported' })).toBe(starttls + 1);
  });

  it('no policy: delivers as usual (STARTTLS when offered), counting only the lookup', async () => {
    domain('nopolicy.test', 'mx.plain.test');
    const sessions = (await t.gateway.metrics.mtaStsSessions.get()).values.reduce((n, v) => n + v.value, 0);
    const notFound = await count('mtaStsLookups', { result: 'not-found' });
    await send('guest@nopolicy.test', 'delivered');
    expect(await count('mtaStsLookups', { result: 'not-found' })).toBe(notFound + 1);
    expect((await t.gateway.metrics.mtaStsSessions.get()).values.reduce((n, v) => n + v.value, 0)).toBe(sessions);
  });
});
