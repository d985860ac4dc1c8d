/**
 * RSA is always signed (docs/domains.md): a runtime-managed domain never becomes active signing with Ed25519
 * alone. Found by an audit (1 Dec 2026): revoking the waiting RSA key, then verifying the Ed25519 one, made a
 * new domain active with Ed25519 only (A1), and in a rotation retired the good old RSA key (A2).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { publishDkim } from '../helpers/sender-domains.js';
import { ADMIN_KEY, dropPrefix, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

const PREFIX = `kurir-test-domain-rsa-${Math.random().toString(36).slice(2, 8)}`;
let dns: DnsServer;
let g: TestGateway;

const admin = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
  const res = await fetch(`${g.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
};

/**
 * The signatures (`algorithm:selector`) intake puts on a message from `domain`. A 503 (busy, or Redis slow under
 * the whole suite's load) is retried as a client would; any other answer fails naming it.
 */
const signatures = async (domain: string): Promise<string[]> => {
  const post = () =>
    fetch(`${g.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ from: `hello@${domain}`, to: ['someone@nowhere.test'], subject: 's', text: 'b' }),
    });
  let res = await post();
  for (let i = 0; res.status === 503 && i < 5; i++) {
    await new Promise((r) => setTimeout(r, 200));
    res = await post();
  }
  const posted = await res.text();
  if (res.status !== 202) throw new Error(`POST /v1/messages answered ${res.status}: ${posted}`);
  const { id } = JSON.parse(posted) as { id: string };
  const got = await admin('GET', `/v1/messages/${id}`);
  if (got.status !== 200) throw new Error(`GET /v1/messages/${id} answered ${got.status}: ${JSON.stringify(got.body)}`);
  return (got.body.dkim as Array<{ algorithm: string; selector: string }>).map((x) => `${x.algorithm}:${x.selector}`);
};

const keyStates = (d: any): string[] => d.keys.map((k: any) => `${k.algorithm}:${k.status}`);

beforeAll(async () => {
  dns = await startDnsServer({});
  g = await startTestGateway({
    dns,
    prefix: PREFIX,
    overrides: { domainKeys: { masterKey: 'd'.repeat(64), sendingIps: ['127.0.0.1'], refreshSeconds: 0.2, rotation: null } },
  });
}, 30_000);
afterAll(async () => {
  await g?.close();
  await dropPrefix(PREFIX);
  await dns?.close();
});

describe('a domain always signs with RSA', () => {
  it('refuses to verify a new domain whose waiting RSA key was revoked (no Ed25519-only activation)', async () => {
    const D = 'edonly.test';
    const added = await admin('POST', '/v1/domains', { name: D, ed25519: true });
    expect(added.status).toBe(201);
    const [rsa, ed] = added.body.keys;
    const revoked = await admin('POST', `/v1/domains/${D}/keys/${rsa.selector}/revoke`);
    expect(revoked.status).toBe(200);
    publishDkim(dns, revoked.body.records);
    const v = await admin('POST', `/v1/domains/${D}/verify`);
    expect(v.status).toBe(409);
    expect(v.body.error.code).toBe('CONFLICT');
    expect(v.body.error.message).toContain('no RSA key active or waiting');
    expect(v.body.error.message).toContain(ed.selector);
    const after = await admin('GET', `/v1/domains/${D}`);
    expect(after.body.state).toBe('pending-dns');
    expect(keyStates(after.body)).toEqual(['rsa:revoked', 'ed25519:pending']);
  });

  it('keeps the old RSA key signing when a rotation’s new RSA key was revoked and only the new Ed25519 key is verified', async () => {
    const D = 'edrot.test';
    const added = await admin('POST', '/v1/domains', { name: D, ed25519: true });
    publishDkim(dns, added.body.records);
    expect((await admin('POST', `/v1/domains/${D}/verify`)).body.state).toBe('active');
    const rot = await admin('POST', `/v1/domains/${D}/rotate`);
    const newRsa = rot.body.keys.find((k: any) => k.status === 'pending' && k.algorithm === 'rsa');
    const revoked = await admin('POST', `/v1/domains/${D}/keys/${newRsa.selector}/revoke`);
    publishDkim(dns, revoked.body.records);
    const v = await admin('POST', `/v1/domains/${D}/verify`);
    expect(v.status).toBe(200);
    expect(v.body.state).toBe('active');
    // old RSA active, old Ed25519 retired, new RSA revoked, new Ed25519 active
    expect(keyStates(v.body)).toEqual(['rsa:active', 'ed25519:retired', 'rsa:revoked', 'ed25519:active']);
    expect(v.body.keys[0].selector).toBe(added.body.keys[0].selector);
    const switched = v.body.events.at(-1);
    expect(switched.message).toContain(`${added.body.keys[1].selector} retired`);
    expect(switched.message).not.toContain(added.body.keys[0].selector);
    const newEd = v.body.keys[3].selector;
    await until(async () => (await signatures(D)).includes(`ed25519-sha256:${newEd}`), 15_000, 'signing with the new Ed25519 key', 100);
    expect(await signatures(D)).toEqual([`rsa-sha256:${added.body.keys[0].selector}`, `ed25519-sha256:${newEd}`]);
  });
});
