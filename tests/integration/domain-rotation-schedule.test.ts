/**
 * Scheduled DKIM rotation end to end: two API gateways sharing one Redis prefix (both run the scheduler; the
 * Redis lock lets one act), an injected clock that ages the key, the loopback DNS, a test MX and mailauth as
 * the receiver. The key-age warning comes first; at everyDays the scheduler starts a rotation; it does not
 * switch while DNS lacks (or mismatches) the new record, switches once it is published, and messages signed
 * before, during and after all verify at the receiver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/lib/clock.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { publishDkim, submitFrom, verifyAtReceiver, waitDelivered } from '../helpers/sender-domains.js';
import { adminRequest, dropPrefix, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

const PREFIX = `kurir-test-rotsched-${Math.random().toString(36).slice(2, 8)}`;
const DOMAIN = 'sched.test';
const DAY = 86_400_000;

/** Real time moved by `offset`: the gateways start 100 days in the past, so the key they create is 100 days old "now". */
let offset = -100 * DAY;
const clock: Clock = { now: () => Date.now() + offset };

let dns: DnsServer;
let receiver: Receiver;
let a: TestGateway;
let b: TestGateway;

const domain = async (): Promise<any> => (await adminRequest(a.url, 'GET', `/v1/domains/${DOMAIN}`)).body;
const eventsOf = (d: any, type: string): any[] => d.events.filter((e: any) => e.type === type);

/** A metric's samples summed over both gateways, by the labels given. */
async function sample(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  let total: number | undefined;
  for (const t of [a, b]) {
    const metric = t.gateway.metrics.registry.getSingleMetric(name);
    for (const v of (await metric!.get()).values) {
      if (
        Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x) &&
        !(v as { metricName?: string }).metricName?.endsWith('_created')
      ) {
        total = (total ?? 0) + v.value;
      }
    }
  }
  return total;
}

/** The latest message delivered to `to`, verified at the receiver: every signature passes; answers the RSA selector. */
async function selectorAtReceiver(to: string): Promise<string> {
  const msg = receiver.messages.filter((m) => m.rcptTo.includes(to)).at(-1)!;
  const results = await verifyAtReceiver(dns, msg.raw, msg.mailFrom);
  expect(results.length).toBeGreaterThan(0);
  expect(results.every((r) => r.result === 'pass' && r.domain === DOMAIN)).toBe(true);
  return results[0].selector;
}

beforeAll(async () => {
  receiver = await startReceiver({ hostname: 'mx.dest.test' });
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
  const overrides = {
    domainKeys: {
      masterKey: 'd'.repeat(64),
      sendingIps: ['127.0.0.1'],
      refreshSeconds: 0.2,
      rotation: { everyDays: 90, warnDays: 14, checkIntervalSeconds: 0.2 },
    },
    delivery: { mxPort: receiver.port },
  };
  a = await startTestGateway({ dns, prefix: PREFIX, overrides, gatewayOptions: { clock } });
  b = await startTestGateway({ dns, prefix: PREFIX, overrides: { ...overrides, roles: ['api'] }, gatewayOptions: { clock } });
}, 30_000);

afterAll(async () => {
  await b?.close();
  await a?.close();
  await dropPrefix(PREFIX);
  await receiver?.close();
  await dns?.close();
});

describe('scheduled DKIM rotation', () => {
  let oldSelector: string;
  let newSelector: string;

  it('a new domain shows its schedule; an active young key is left alone', async () => {
    const added = await adminRequest(a.url, 'POST', '/v1/domains', { name: DOMAIN });
    expect(added.status).toBe(201);
    expect(added.body.rotation).toEqual({ everyDays: 90, source: 'config' });
    publishDkim(dns, added.body.records);
    const verified = await adminRequest(a.url, 'POST', `/v1/domains/${DOMAIN}/verify`);
    expect(verified.body.state).toBe('active');
    oldSelector = verified.body.keys[0].selector;
    const activatedAt = Date.parse(verified.body.keys[0].activatedAt);
    expect(verified.body.rotation.nextRotationAt).toBe(new Date(activatedAt + 90 * DAY).toISOString());
    expect(verified.body.rotation.warnAt).toBe(new Date(activatedAt + 76 * DAY).toISOString());
    expect(eventsOf(verified.body, 'activated')).toHaveLength(1);

    const before = await until(async () => {
      const r = await submitFrom(a, DOMAIN, 'before@dest.test', 'before');
      return r.status === 202 ? r : null;
    }, 5000);
    await waitDelivered(a, before.body.id);
    expect(await sample('kurir_dkim_key_age_seconds', { domain: DOMAIN, selector: oldSelector })).toBeDefined();
    expect((await domain()).state).toBe('active');
  });

  it('past everyDays − warnDays: one key-age warning, no rotation yet', async () => {
    offset = -20 * DAY;
    const d = await until(
      async () => {
        const x = await domain();
        return eventsOf(x, 'key-age-warning').length ? x : null;
      },
      5000,
      'the key-age warning',
    );
    expect(eventsOf(d, 'key-age-warning')[0]).toMatchObject({ by: 'scheduler', selectors: [oldSelector] });
    expect(eventsOf(d, 'key-age-warning')[0].message).toMatch(new RegExp(`^${oldSelector} has signed for 80 days: a scheduled rotation starts `));
    expect(d.state).toBe('active');
    // Each gateway exports the same warn age: 76 days (the other gateway's pass may come a moment later).
    await expect.poll(() => sample('kurir_dkim_key_warn_age_seconds', { domain: DOMAIN }), { timeout: 5000 }).toBe(2 * 76 * 86400);
    // Both gateways export the key's age (each from its own pass over the shared records): 80 days each.
    await expect
      .poll(async () => ((await sample('kurir_dkim_key_age_seconds', { domain: DOMAIN, selector: oldSelector })) ?? 0) / 2, { timeout: 5000 })
      .toBeGreaterThan(80 * 86400 - 5);
  });

  it('at everyDays the scheduler starts one rotation (one gateway acts) and does not switch while DNS lacks the record', async () => {
    offset = 0;
    const d = await until(
      async () => {
        const x = await domain();
        return x.state === 'rotating' ? x : null;
      },
      5000,
      'the scheduled rotation',
    );
    const pending = d.keys.filter((k: any) => k.status === 'pending');
    expect(pending).toHaveLength(1);
    newSelector = pending[0].selector;
    expect(newSelector).not.toBe(oldSelector);
    expect(d.rotation.waiting).toMatchObject({ trigger: 'schedule' });
    const started = eventsOf(d, 'rotation-started');
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({ by: 'scheduler', selectors: [newSelector] });
    expect(started[0].message).toMatch(/^scheduled: .* has signed for 100 days \(rotation every 90 days\): publish /);
    expect(d.records.find((r: any) => r.name === `${newSelector}._domainkey.${DOMAIN}`)).toMatchObject({ required: true });

    // Several scheduler passes of both gateways: still waiting, still signing with the old key.
    const waiting = await until(
      async () => {
        const x = await domain();
        return eventsOf(x, 'rotation-waiting-dns').length ? x : null;
      },
      5000,
      'the waiting-for-DNS event',
    );
    expect(eventsOf(waiting, 'rotation-waiting-dns')[0].message).toMatch(/NXDOMAIN/);
    await new Promise((r) => setTimeout(r, 1000));
    const still = await domain();
    expect(still.state).toBe('rotating');
    expect(eventsOf(still, 'rotation-started')).toHaveLength(1);
    expect(still.keys.find((k: any) => k.selector === oldSelector).status).toBe('active');
    expect(await sample('kurir_dkim_scheduled_rotations_total', { step: 'started' })).toBe(1);
    expect(await sample('kurir_dkim_rotation_waiting_seconds', { domain: DOMAIN, trigger: 'schedule' })).toBeGreaterThanOrEqual(0);
    const audit = (await adminRequest(a.url, 'GET', '/v1/audit?limit=20')).body.items;
    expect(audit.find((e: any) => e.actor === 'scheduler' && e.target === DOMAIN)).toMatchObject({ action: 'scheduled rotation: new key', role: 'system' });

    const during = await submitFrom(b, DOMAIN, 'during@dest.test', 'during');
    expect(during.status).toBe(202);
    await waitDelivered(a, during.body.id);
    expect(await selectorAtReceiver('during@dest.test')).toBe(oldSelector);
  });

  it('a record with another key is not enough; the published record switches signing on every gateway', async () => {
    const d = await domain();
    const rec = d.records.find((r: any) => r.name === `${newSelector}._domainkey.${DOMAIN}`);
    dns.set(rec.name, 'TXT', [rec.value.replace(/p=MIIB/, 'p=MIIA')]);
    const mismatch = await until(
      async () => {
        const x = await domain();
        return x.lastVerification?.problems.some((p: string) => p.includes('different public key')) ? x : null;
      },
      5000,
      'the mismatch seen by the scheduler',
    );
    expect(mismatch.state).toBe('rotating');

    publishDkim(dns, d.records);
    const switched = await until(
      async () => {
        const x = await domain();
        return x.state === 'active' ? x : null;
      },
      5000,
      'the switch',
    );
    expect(switched.rotation.waiting).toBeUndefined();
    expect(switched.keys.find((k: any) => k.selector === oldSelector)).toMatchObject({ status: 'retired', removable: false });
    expect(switched.keys.find((k: any) => k.selector === newSelector).status).toBe('active');
    expect(eventsOf(switched, 'rotation-switched')[0]).toMatchObject({ by: 'scheduler', selectors: [newSelector] });
    // The scheduler counts the switch once its write (which the API above already shows) has returned.
    await until(async () => ((await sample('kurir_dkim_scheduled_rotations_total', { step: 'switched' })) === 1 ? true : null), 2000, 'the switch counted');

    for (const t of [a, b]) {
      const after = await until(
        async () => {
          const r = await submitFrom(t, DOMAIN, 'after@dest.test', 'after');
          const s = r.status === 202 ? await waitDelivered(a, r.body.id) : null;
          return s?.dkim?.[0]?.selector === newSelector ? s : null;
        },
        10_000,
        'a message signed with the new key',
      );
      expect(after.status).toBe('delivered');
    }
    expect(await selectorAtReceiver('before@dest.test')).toBe(oldSelector);
    expect(await selectorAtReceiver('during@dest.test')).toBe(oldSelector);
    expect(await selectorAtReceiver('after@dest.test')).toBe(newSelector);
    await until(async () => (await sample('kurir_dkim_rotation_waiting_seconds', { domain: DOMAIN })) === undefined, 3000, 'the waiting series dropped');
  }, 40_000);

  it('per-domain override: PATCH rotationEveryDays, null stops scheduling; bad values are refused and change nothing', async () => {
    const bad = await adminRequest(a.url, 'PATCH', `/v1/domains/${DOMAIN}`, { rotationEveryDays: 0 });
    expect(bad.status).toBe(400);
    expect((await adminRequest(a.url, 'PATCH', `/v1/domains/${DOMAIN}`, {})).status).toBe(400);
    const fraction = await adminRequest(a.url, 'PATCH', `/v1/domains/${DOMAIN}`, { rotationEveryDays: 1.5 });
    expect(fraction).toMatchObject({
      status: 400,
      body: { error: { field: 'rotationEveryDays', message: expect.stringContaining('a whole number of days') } },
    });
    const set = await adminRequest(a.url, 'PATCH', `/v1/domains/${DOMAIN}`, { rotationEveryDays: 30 });
    expect(set.status).toBe(200);
    expect(set.body.rotation).toMatchObject({ everyDays: 30, source: 'domain' });
    // The warning starts a quarter of the period (7.5 days) before the rotation, never at the key's activation.
    const { nextRotationAt, warnAt } = set.body.rotation;
    expect(Date.parse(nextRotationAt) - Date.parse(warnAt)).toBe(7.5 * DAY);
    const off = await adminRequest(a.url, 'PATCH', `/v1/domains/${DOMAIN}`, { rotationEveryDays: null });
    expect(off.body.rotation).toEqual({ everyDays: null, source: 'domain' });
    expect(eventsOf(off.body, 'settings-changed').map((e: any) => e.message)).toEqual(['scheduled rotation every 30 days', 'scheduled rotation off']);
    // Far past any age: with rotation off for the domain nothing starts, and its warn-age series is dropped.
    offset = 400 * DAY;
    await until(async () => (await sample('kurir_dkim_key_warn_age_seconds', { domain: DOMAIN })) === undefined, 3000, 'the warn-age series dropped');
    await new Promise((r) => setTimeout(r, 600));
    expect((await domain()).state).toBe('active');
    offset = 0;
  });
});
