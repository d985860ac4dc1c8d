/**
 * Runtime-managed sender domains end to end: two gateways sharing one Redis prefix (a cluster), DNS from the
 * loopback server, delivery to a test MX, and mailauth as the receiver's verifier. Covers onboarding (records,
 * pending-dns refusals, verify against DNS), rotation with messages queued across the switch, emergency
 * revoke seen by the other gateway, and a scan of Redis and the logs for private key material.
 */
import { createPrivateKey } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatDomain } from '../../src/cli/domains-commands.js';
import { createKeyVault, parseMasterKey } from '../../src/dkim/key-vault.js';
import { createLogger } from '../../src/lib/logger.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { publishDkim, submitFrom, verifyAtReceiver as verifyWith, waitDelivered as waitFor } from '../helpers/sender-domains.js';
import { ADMIN_KEY, dropPrefix, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

const MASTER_KEY = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const PREFIX = `kurir-test-domains-${Math.random().toString(36).slice(2, 8)}`;
const DOMAIN = 'news.test';

const lines: string[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  },
});

let dns: DnsServer;
let receiver: Receiver;
let a: TestGateway;
let b: TestGateway;

const admin = async (t: TestGateway, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};

const submitAs = (t: TestGateway, to: string, subject: string) => submitFrom(t, DOMAIN, to, subject);
const waitDelivered = (id: string, timeoutMs = 10_000): Promise<any> => waitFor(a, id, timeoutMs);
const publish = (records: any[]): void => publishDkim(dns, records);
const verifyAtReceiver = (raw: Buffer, mailFrom: string) => verifyWith(dns, raw, mailFrom);

beforeAll(async () => {
  receiver = await startReceiver({ hostname: 'mx.dest.test', rules: { 'later@dest.test': [{ code: 451, message: '4.7.1 try again later' }] } });
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
  const overrides = {
    domainKeys: { masterKey: MASTER_KEY, sendingIps: ['127.0.0.1'], refreshSeconds: 0.2 },
    delivery: { mxPort: receiver.port, retrySchedule: [2] },
  };
  a = await startTestGateway({ dns, prefix: PREFIX, overrides, logger: createLogger({ level: 'debug', destination: sink }) });
  // b signs in signing threads (a on its event loop): rotation and revoke must reach the threads too.
  b = await startTestGateway({
    dns,
    prefix: PREFIX,
    overrides: { ...overrides, roles: ['api'], dkim: { signingThreads: 2 } },
    logger: createLogger({ level: 'debug', destination: sink }),
  });
}, 30_000);

afterAll(async () => {
  await b?.close();
  await a?.close();
  await dropPrefix(PREFIX);
  await receiver?.close();
  await dns?.close();
});

describe('runtime-managed sender domains', () => {
  let firstSelector: string;

  it('refuses bad input and changes nothing', async () => {
    // The body field is `name` (until 2 Dec 2026 the error named `domain`, a field the request does not have).
    expect((await admin(a, 'POST', '/v1/domains', { name: 'not a domain' })).body.error).toMatchObject({ field: 'name' });
    expect((await admin(a, 'POST', '/v1/domains', { name: DOMAIN, rsaBits: 1024 })).status).toBe(400);
    const configured = await admin(a, 'POST', '/v1/domains', { name: 'example.test' });
    expect(configured.status).toBe(409);
    expect(configured.body.error).toMatchObject({ field: 'name', message: expect.stringMatching(/declared in the configuration/) });
    expect((await admin(a, 'GET', `/v1/domains/${DOMAIN}`)).status).toBe(404);
    expect((await admin(a, 'POST', `/v1/domains/${DOMAIN}/verify`)).status).toBe(404);
    const send = await fetch(`${a.url}/v1/domains`, {
      method: 'POST',
      headers: { authorization: 'Bearer dev-api-key-change-me-0001', 'content-type': 'application/json' },
      body: '{"name":"x.test"}',
    });
    expect(send.status).toBe(403);
    const list = await admin(a, 'GET', '/v1/domains');
    expect(list.body.domains).toEqual([{ name: 'example.test', source: 'config', state: 'active' }]);
  });

  it('adds a domain: keys, selectors and the exact records to publish; intake refuses it until DNS matches', async () => {
    const added = await admin(a, 'POST', '/v1/domains', { name: DOMAIN, ed25519: true });
    expect(added.status).toBe(201);
    const d = added.body;
    expect(d.state).toBe('pending-dns');
    expect(d.keys.map((k: any) => [k.algorithm, k.status])).toEqual([
      ['rsa', 'pending'],
      ['ed25519', 'pending'],
    ]);
    const now = new Date();
    const month = `${now.getUTCFullYear()}m${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
    expect(d.keys.map((k: any) => k.selector)).toEqual([`k${month}`, `e${month}`]);
    firstSelector = d.keys[0].selector;
    const dkim = d.records.filter((r: any) => r.purpose === 'dkim');
    expect(dkim.map((r: any) => r.name)).toEqual([`k${month}._domainkey.${DOMAIN}`, `e${month}._domainkey.${DOMAIN}`]);
    expect(dkim[0].value).toBe(`v=DKIM1; k=rsa; p=${d.keys[0].publicKey}`);
    expect(dkim[0].strings.length).toBe(2);
    expect(dkim[0].strings.every((s: string) => Buffer.byteLength(s) <= 255)).toBe(true);
    expect(dkim[0].strings.join('')).toBe(dkim[0].value);
    const byPurpose = Object.fromEntries(d.records.map((r: any) => [r.purpose, r]));
    expect(byPurpose.spf).toMatchObject({ name: DOMAIN, value: 'v=spf1 ip4:127.0.0.1 -all' });
    expect(byPurpose.dmarc).toMatchObject({ name: `_dmarc.${DOMAIN}`, value: `v=DMARC1; p=none; rua=mailto:dmarc@${a.config.bounce.domain}` });
    expect(byPurpose['dmarc-report-authorization']).toMatchObject({ name: `${DOMAIN}._report._dmarc.${a.config.bounce.domain}`, value: 'v=DMARC1' });
    expect(byPurpose['bounce-mx']).toMatchObject({ type: 'MX', name: a.config.bounce.domain, value: `10 ${a.config.hostname}` });
    expect(JSON.stringify(d)).not.toMatch(/PRIVATE KEY|sealed/i);

    // Both gateways refuse the pending domain, naming what is missing.
    for (const t of [a, b]) {
      const refused = await until(async () => {
        const r = await submitAs(t, 'alice@dest.test', 'pending');
        return r.status === 422 ? r : null;
      }, 5000);
      expect(refused.body.error).toMatchObject({ code: 'NO_DKIM_KEY', field: 'from' });
      expect(refused.body.error.message).toContain(`k${month}._domainkey.${DOMAIN}`);
    }
  });

  it('verify: stays pending while DNS lacks or mismatches the key, activates when it matches', async () => {
    const missing = await admin(a, 'POST', `/v1/domains/${DOMAIN}/verify`);
    expect(missing.status).toBe(200);
    expect(missing.body.state).toBe('pending-dns');
    expect(missing.body.lastVerification.problems.join('\n')).toMatch(/NXDOMAIN/);
    const refused = await submitAs(a, 'alice@dest.test', 'still pending');
    expect(refused.body.error.message).toMatch(/last check: .*NXDOMAIN/);

    // A record with another key (e.g. an old zone) is not enough.
    const other = (await admin(a, 'GET', `/v1/domains/${DOMAIN}`)).body;
    publish(other.records);
    const rsa = other.records.find((r: any) => r.purpose === 'dkim' && r.name.startsWith('k'));
    dns.set(rsa.name, 'TXT', [rsa.value.replace(/p=MIIB/, 'p=MIIA')]);
    const wrong = await admin(a, 'POST', `/v1/domains/${DOMAIN}/verify`);
    expect(wrong.body.state).toBe('pending-dns');
    expect(wrong.body.lastVerification.problems).toEqual([expect.stringMatching(/publishes a different public key/)]);

    publish(other.records);
    const ok = await admin(a, 'POST', `/v1/domains/${DOMAIN}/verify`);
    expect(ok.body.state).toBe('active');
    expect(ok.body.lastVerification).toMatchObject({ ok: true, problems: [] });
    expect(ok.body.keys.every((k: any) => k.status === 'active')).toBe(true);
  });

  it('signs with the new keys on every gateway within seconds; the receiver verifies both signatures', async () => {
    const res = await until(async () => {
      const r = await submitAs(b, 'alice@dest.test', 'first');
      return r.status === 202 ? r : null;
    }, 5000);
    const s = await waitDelivered(res.body.id);
    const msg = receiver.messages.find((m) => m.rcptTo.includes('alice@dest.test'))!;
    const results = await verifyAtReceiver(msg.raw, msg.mailFrom);
    expect(results).toEqual([
      { domain: DOMAIN, selector: firstSelector, result: 'pass' },
      { domain: DOMAIN, selector: expect.stringMatching(/^e/), result: 'pass' },
    ]);
    expect(s.status).toBe('delivered');
  });

  it('rotates without breaking a message: queued before, during and after the switch all verify', async () => {
    // Deferred once by the receiver: delivered after the switch, signed with the old key.
    const before = await submitAs(a, 'later@dest.test', 'before');
    expect(before.status).toBe(202);
    const rotated = await admin(a, 'POST', `/v1/domains/${DOMAIN}/rotate`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.state).toBe('rotating');
    const next = rotated.body.keys.filter((k: any) => k.status === 'pending');
    expect(next.map((k: any) => k.algorithm)).toEqual(['rsa', 'ed25519']);
    expect(next.map((k: any) => k.selector)).not.toContain(firstSelector);
    expect((await admin(a, 'POST', `/v1/domains/${DOMAIN}/rotate`)).status).toBe(409);
    const during = await submitAs(b, 'bob@dest.test', 'during');
    expect(during.status).toBe(202);

    // Not yet in DNS: signing stays on the old keys.
    const early = await admin(a, 'POST', `/v1/domains/${DOMAIN}/verify`);
    expect(early.body.state).toBe('rotating');
    publish(rotated.body.records);
    const switched = await admin(a, 'POST', `/v1/domains/${DOMAIN}/verify`);
    expect(switched.body.state).toBe('active');
    const old = switched.body.keys.find((k: any) => k.selector === firstSelector);
    expect(old.status).toBe('retired');
    const keepMs = Date.parse(old.keepPublishedUntil) - Date.parse(old.retiredAt);
    expect(keepMs).toBe((a.config.delivery.maxTtlSeconds + a.config.domainKeys.keepPublishedMarginHours * 3600) * 1000);
    expect(old.removable).toBe(false);
    expect(switched.body.records.find((r: any) => r.name.startsWith(`${firstSelector}.`))).toMatchObject({
      required: false,
      note: expect.stringMatching(/keep published/),
    });

    const newRsa = next[0].selector;
    const after = await until(async () => {
      const r = await submitAs(b, 'carol@dest.test', 'after');
      const s = r.status === 202 ? await waitDelivered(r.body.id) : null;
      return s?.dkim?.[0]?.selector === newRsa ? s : null;
    }, 10_000);
    expect(after.dkim[0].selector).toBe(newRsa);

    await waitDelivered(before.body.id, 15_000);
    await waitDelivered(during.body.id);
    const selectorOf = async (to: string) => {
      const msg = receiver.messages.filter((m) => m.rcptTo.includes(to)).at(-1)!;
      const results = await verifyAtReceiver(msg.raw, msg.mailFrom);
      expect(results.every((r: any) => r.result === 'pass')).toBe(true);
      return results[0].selector;
    };
    expect(await selectorOf('later@dest.test')).toBe(firstSelector);
    expect(await selectorOf('bob@dest.test')).toBe(firstSelector);
    expect(await selectorOf('carol@dest.test')).toBe(newRsa);
  }, 40_000);

  it('emergency revoke: the other gateway stops signing with the key within seconds', async () => {
    const d = (await admin(a, 'GET', `/v1/domains/${DOMAIN}`)).body;
    const active = d.keys.find((k: any) => k.status === 'active' && k.algorithm === 'rsa');
    const revoked = await admin(a, 'POST', `/v1/domains/${DOMAIN}/keys/${active.selector}/revoke`);
    expect(revoked.body.state).toBe('suspended');
    expect(revoked.body.keys.find((k: any) => k.selector === active.selector).status).toBe('revoked');
    const started = Date.now();
    const refused = await until(async () => {
      const r = await submitAs(b, 'dave@dest.test', 'after revoke');
      return r.status === 422 ? r : null;
    }, 5000);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(refused.body.error.message).toMatch(new RegExp(`suspended.*${active.selector} was revoked`));
    expect((await admin(a, 'POST', `/v1/domains/${DOMAIN}/keys/${active.selector}/revoke`)).status).toBe(409);
    expect((await admin(a, 'POST', `/v1/domains/${DOMAIN}/keys/nosuch/revoke`)).status).toBe(404);
    // A retired key (keep published until …) that is revoked must be unpublished now: removable, no keepPublishedUntil.
    const retired = d.keys.find((k: any) => k.status === 'retired' && k.keepPublishedUntil);
    const after = (await admin(a, 'POST', `/v1/domains/${DOMAIN}/keys/${retired.selector}/revoke`)).body;
    const shown = after.keys.find((k: any) => k.selector === retired.selector);
    expect(shown).toMatchObject({ status: 'revoked', removable: true });
    expect(shown.keepPublishedUntil).toBeUndefined();
    expect(after.records.some((r: any) => r.name.startsWith(`${retired.selector}._domainkey.`))).toBe(false);
    expect(formatDomain(after)).toContain(`  key ${retired.selector} rsa-2048: revoked: remove its DNS record now`);
    // Rotating the suspended domain: pending-dns, and the suspension's reason is gone with the suspension.
    const rotated = (await admin(a, 'POST', `/v1/domains/${DOMAIN}/rotate`)).body;
    expect(rotated.state).toBe('pending-dns');
    expect(rotated.reason).toBeUndefined();
    const pending = await until(async () => {
      const m = (await submitAs(b, 'dave@dest.test', 'pending')).body.error?.message ?? '';
      return /pending-dns|not verified|publish/i.test(m) && !/suspended/.test(m) ? m : null;
    }, 5000);
    expect(pending).not.toMatch(/was revoked/);
  });

  it('keeps private keys out of Redis in clear, out of the API and out of the logs', async () => {
    const redis = new Redis('redis://127.0.0.1:6379');
    const dump: string[] = [];
    const sealed: Array<{ domain: string; selector: string; value: string }> = [];
    try {
      let cursor = '0';
      do {
        const [next, found] = await redis.scan(cursor, 'MATCH', `${PREFIX}:*`, 'COUNT', 1000);
        for (const key of found) {
          const type = await redis.type(key);
          if (type === 'string') dump.push((await redis.get(key)) ?? '');
          else if (type === 'hash') dump.push(JSON.stringify(await redis.hgetall(key)));
          else if (type === 'list') dump.push(...(await redis.lrange(key, 0, -1)));
          else if (type === 'set') dump.push(...(await redis.smembers(key)));
          else if (type === 'zset') dump.push(...(await redis.zrange(key, '0', '-1')));
          else if (type === 'stream') dump.push(JSON.stringify(await redis.xrange(key, '-', '+')));
          if (key.includes(':sender-domain:')) {
            const d = JSON.parse((await redis.get(key))!);
            for (const k of d.keys) if (k.sealedPrivateKey) sealed.push({ domain: d.name, selector: k.selector, value: k.sealedPrivateKey });
          }
        }
        cursor = next;
      } while (cursor !== '0');
    } finally {
      await redis.quit();
    }
    expect(sealed.length).toBeGreaterThanOrEqual(2);
    const vault = createKeyVault(parseMasterKey(MASTER_KEY, 'test'));
    const secrets = sealed.map((s) => {
      const der = createPrivateKey(vault.open(s.value, `${s.domain}/${s.selector}`))
        .export({ type: 'pkcs8', format: 'der' })
        .toString('base64');
      return der;
    });
    const api = JSON.stringify((await admin(a, 'GET', '/v1/domains')).body);
    const haystacks = { redis: dump.join('\n'), logs: lines.join('\n'), api };
    expect(lines.length).toBeGreaterThan(0);
    for (const [where, text] of Object.entries(haystacks)) {
      expect(text, where).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
      for (const der of secrets) {
        // The whole DER and any 48-character run of it (the private exponent and primes lie past the header).
        for (let i = 0; i + 48 <= der.length; i += 48) expect(text.includes(der.slice(i, i + 48)), `${where} holds private key material`).toBe(false);
      }
    }
  });
});
