/**
 * The HTTP API against a real gateway (roles: api only, so messages stay queued) on real Redis, over
 * real HTTP on loopback: acceptance and status, raw messages, idempotency, auth and scope, every
 * documented refusal, health, metrics, OpenAPI, and Redis going away.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { buildApp } from '../../src/http/app.js';
import { CredentialRegistry } from '../../src/intake/credentials.js';
import type { IntakeService } from '../../src/intake/intake-service.js';
import { KurirError } from '../../src/lib/errors.js';
import { createLogger } from '../../src/lib/logger.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { MessageStore } from '../../src/store/message-store.js';
import { dropPrefix } from '../helpers/test-gateway.js';

const BOOKING_KEY = 'http-test-booking-key-0001';
const OTHER_KEY = 'http-test-other-team-key-0001';
const ADMIN_KEY = 'http-test-admin-key-0001';
const MAX_BYTES = 256 * 1024;

const dataDir = mkdtempSync(join(tmpdir(), 'kurir-http-'));
const run = Math.random().toString(36).slice(2, 10);
const prefixes: string[] = [];

function makeConfig(prefix: string): Config {
  prefixes.push(prefix);
  const key = (name: string, algorithm: 'rsa' | 'ed25519') => ({
    selector: name,
    algorithm,
    privateKeyFile: join(dataDir, `dkim/${name}.pem`),
    generate: true,
  });
  return loadConfig({
    file: 'config/default.yaml',
    overrides: {
      roles: ['api'],
      dataDir,
      log: { level: 'silent' },
      redis: { prefix, manage: 'never' },
      http: { port: 0, maxMessageBytes: MAX_BYTES },
      smtp: { enabled: false, port: 0 },
      domains: [
        { name: 'example.test', dkim: [key('kurir1', 'rsa')] },
        { name: 'other.test', dkim: [key('other1', 'ed25519')] },
        { name: 'nokey.test', dkim: [] },
      ],
      apiKeys: [
        { name: 'booking', key: BOOKING_KEY, domains: ['example.test'] },
        { name: 'other-team', key: OTHER_KEY, domains: ['other.test'] },
        { name: 'ops', key: ADMIN_KEY, domains: ['*'], admin: true },
      ],
      smtpAccounts: [],
    },
  });
}

type Opts = { key?: string | null; json?: unknown; raw?: string; type?: string; headers?: Record<string, string> };

/** Real HTTP against a gateway: the booking key unless `key` says otherwise (null: no Authorization). */
function client(base: () => string) {
  return async (method: string, path: string, opts: Opts = {}): Promise<{ status: number; headers: Headers; body: any; text: string }> => {
    const headers: Record<string, string> = { ...opts.headers };
    const key = opts.key === undefined ? BOOKING_KEY : opts.key;
    if (key !== null) headers.authorization = `Bearer ${key}`;
    if (opts.json !== undefined || opts.raw !== undefined)
      headers['content-type'] = opts.type ?? (opts.raw !== undefined ? 'message/rfc822' : 'application/json');
    const res = await fetch(`${base()}${path}`, { method, headers, body: opts.raw ?? (opts.json === undefined ? undefined : JSON.stringify(opts.json)) });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined; // metrics, docs
    }
    return { status: res.status, headers: res.headers, body, text };
  };
}

/** Messages stored under a prefix, counted with a connection of our own. */
async function countMessages(prefix: string): Promise<number> {
  const redis = new Redis('redis://127.0.0.1:6379');
  let [cursor, n] = ['0', 0];
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:msg:*`, 'COUNT', 1000);
    [cursor, n] = [next, n + keys.length];
  } while (cursor !== '0');
  await redis.quit();
  return n;
}

/** kurir_intake_messages_accepted_total over HTTP, all priorities, from the gateway's own registry. */
async function acceptedOverHttp(): Promise<number> {
  const { values } = await gateway.metrics.intakeAccepted.get();
  return values.filter((v) => v.labels.interface === 'http').reduce((sum, v) => sum + v.value, 0);
}

const message = (over: Record<string, unknown> = {}) => ({
  from: 'Passport office <noreply@example.test>',
  to: ['alice@dest.test'],
  subject: 'Your code',
  text: 'Code: 123456',
  ...over,
});

const RAW = ['From: Passport office <noreply@example.test>', 'To: carol@dest.test', 'Subject: Raw code', '', 'Code: 777777', ''].join('\r\n');

let gateway: Gateway;
let prefix: string;
const api = client(() => `http://127.0.0.1:${gateway.ports.http}`);

beforeAll(async () => {
  const config = makeConfig(`kurir-http-${run}`);
  prefix = config.redis.prefix;
  gateway = await startGateway(config, createLogger({ level: 'silent' }));
});

afterAll(async () => {
  await gateway?.close();
  for (const p of prefixes) await dropPrefix(p);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('POST /v1/messages and GET /v1/messages/:id', () => {
  it('accepts JSON with 202 and shows it queued with its timeline', async () => {
    const before = Date.now();
    const res = await api('POST', '/v1/messages', {
      json: message({ cc: ['bob@dest.test'], priority: 'verification', ttl: 600, tags: ['signup'], metadata: { user: '42' } }),
    });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      id: expect.stringMatching(/^[0-9a-z]{22}$/),
      status: 'queued',
      confirmToken: expect.stringMatching(/^[0-9a-z]{22}\.[A-Za-z0-9_-]{22}$/),
    });
    const got = await api('GET', `/v1/messages/${res.body.id}`);
    expect(got.status).toBe(200);
    const s = got.body;
    expect(s).toMatchObject({
      id: res.body.id,
      status: 'queued',
      from: 'noreply@example.test',
      to: ['alice@dest.test', 'bob@dest.test'],
      priority: 'verification',
      subject: 'Your code',
      tags: ['signup'],
      metadata: { user: '42' },
      dkim: [{ domain: 'example.test', selector: 'kurir1', algorithm: 'rsa-sha256' }],
    });
    expect(s.messageId).toMatch(/^<.+@.+>$/);
    expect(s.size).toBeGreaterThan(100);
    expect(Date.parse(s.createdAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(s.expiresAt) - Date.parse(s.createdAt)).toBe(600_000);
    expect(s.recipients['alice@dest.test']).toMatchObject({ status: 'queued', attempts: 0 });
    expect(s.events).toEqual([{ type: 'queued', at: s.createdAt }]);
  });

  it('encodes IDN recipient domains with punycode', async () => {
    const res = await api('POST', '/v1/messages', { json: message({ to: ['user@bücher.example'] }) });
    expect(res.status).toBe(202);
    const got = await api('GET', `/v1/messages/${res.body.id}`);
    expect(got.body.to).toEqual(['user@xn--bcher-kva.example']);
    expect(Object.keys(got.body.recipients)).toEqual(['user@xn--bcher-kva.example']);
  });

  it('accepts a raw message/rfc822 with the envelope in the query or in X-Kurir-* headers', async () => {
    const q = await api('POST', '/v1/messages?to=carol@dest.test&to=dave@dest.test&priority=bulk&ttl=120', { raw: RAW });
    expect(q.status).toBe(202);
    const s = (await api('GET', `/v1/messages/${q.body.id}`)).body;
    expect(s).toMatchObject({
      status: 'queued',
      from: 'noreply@example.test',
      to: ['carol@dest.test', 'dave@dest.test'],
      priority: 'bulk',
      subject: 'Raw code',
    });
    expect(Date.parse(s.expiresAt) - Date.parse(s.createdAt)).toBe(120_000);

    const h = await api('POST', '/v1/messages', {
      raw: RAW,
      headers: { 'x-kurir-to': 'erin@dest.test, frank@dest.test', 'x-kurir-priority': 'verification', 'x-kurir-from': 'bounces@example.test' },
    });
    expect(h.status).toBe(202);
    const s2 = (await api('GET', `/v1/messages/${h.body.id}`)).body;
    expect(s2).toMatchObject({ to: ['erin@dest.test', 'frank@dest.test'], priority: 'verification', from: 'bounces@example.test' });

    // A comma inside a quoted local part (RFC 5321 allows it) does not split the list; until 2 Dec 2026 it did (400).
    const quoted = await api('POST', `/v1/messages?to=${encodeURIComponent('"doe,jo\\"hn"@dest.test, gil@dest.test')}`, { raw: RAW });
    expect(quoted.status).toBe(202);
    expect((await api('GET', `/v1/messages/${quoted.body.id}`)).body.to).toEqual(['"doe,jo\\"hn"@dest.test', 'gil@dest.test']);

    const none = await api('POST', '/v1/messages', { raw: RAW });
    expect(none.status).toBe(400);
    expect(none.body.error).toMatchObject({ code: 'VALIDATION', field: 'to' });
    const badTtl = await api('POST', '/v1/messages?to=carol@dest.test&ttl=0', { raw: RAW });
    expect(badTtl.status).toBe(400);
    expect(badTtl.body.error.field).toBe('ttl');
    // Each refusal names the field it is about and that field's rule (until 1 Dec 2026 a bad X-Kurir-Ttl was
    // answered with the Idempotency-Key's rule, "must be 1 to 255 printable ASCII characters").
    const ttlRule = (field: string) => ({ code: 'VALIDATION', field, message: `${field}: must be a whole number of seconds from 1 to 604800` });
    for (const [path, headers, field] of [
      ['/v1/messages?to=carol@dest.test&ttl=abc', {}, 'ttl'],
      ['/v1/messages?to=carol@dest.test', { 'x-kurir-ttl': 'abc' }, 'X-Kurir-Ttl'],
      ['/v1/messages?to=carol@dest.test', { 'x-kurir-ttl': '0' }, 'X-Kurir-Ttl'],
    ] as Array<[string, Record<string, string>, string]>) {
      const res = await api('POST', path, { raw: RAW, headers });
      expect(res.status).toBe(400);
      expect(res.body.error).toEqual(ttlRule(field));
    }
  });

  it('Idempotency-Key: same key and body → same id, stored once; different body → 409', async () => {
    const headers = { 'idempotency-key': `signup-${run}` };
    const storedBefore = await countMessages(prefix);
    const acceptedBefore = await acceptedOverHttp();
    const first = await api('POST', '/v1/messages', { json: message({ subject: 'Once', tags: ['a'] }), headers });
    // Same body with its keys in another order.
    const reordered = { tags: ['a'], text: 'Code: 123456', subject: 'Once', to: ['alice@dest.test'], from: 'Passport office <noreply@example.test>' };
    const second = await api('POST', '/v1/messages', { json: reordered, headers });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await countMessages(prefix)).toBe(storedBefore + 1);
    // The replay answered the first acceptance again; kurir_intake_messages_accepted_total counts it once.
    expect(await acceptedOverHttp()).toBe(acceptedBefore + 1);

    const conflict = await api('POST', '/v1/messages', { json: message({ subject: 'Something else' }), headers });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(await countMessages(prefix)).toBe(storedBefore + 1);

    // Raw submissions hash the bytes and the envelope.
    const rawHeaders = { 'idempotency-key': `raw-${run}` };
    const r1 = await api('POST', '/v1/messages?to=carol@dest.test', { raw: RAW, headers: rawHeaders });
    const r2 = await api('POST', '/v1/messages?to=carol@dest.test', { raw: RAW, headers: rawHeaders });
    const r3 = await api('POST', '/v1/messages?to=other@dest.test', { raw: RAW, headers: rawHeaders });
    expect([r1.status, r2.status, r3.status]).toEqual([202, 202, 409]);
    expect(r2.body.id).toBe(r1.body.id);

    // A replay returns the first answer even when the recipient was suppressed since.
    const replayHeaders = { 'idempotency-key': `replay-${run}` };
    const before = await api('POST', '/v1/messages', { json: message({ to: ['later-gone@dest.test'] }), headers: replayHeaders });
    await gateway.suppressions.add({ address: 'later-gone@dest.test', reason: 'invalid-recipient', source: 'test', at: Date.now() });
    const after = await api('POST', '/v1/messages', { json: message({ to: ['later-gone@dest.test'] }), headers: replayHeaders });
    expect(before.status).toBe(202);
    expect(after.status).toBe(202);
    expect(after.body.id).toBe(before.body.id);
    const fresh = await api('POST', '/v1/messages', { json: message({ to: ['later-gone@dest.test'] }) });
    expect(fresh.status).toBe(422);

    const bad = await api('POST', '/v1/messages', { json: message(), headers: { 'idempotency-key': 'x'.repeat(256) } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual({
      code: 'VALIDATION',
      field: 'Idempotency-Key',
      message: 'Idempotency-Key: must be 1 to 255 printable ASCII characters',
    });
  });

  it('401 without a key or with an unknown one', async () => {
    const missing = await api('POST', '/v1/messages', { key: null, json: message() });
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe('AUTH_REQUIRED');
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const unknown = await api('POST', '/v1/messages', { key: 'not-a-real-key-at-all', json: message() });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe('AUTH_FAILED');
    expect(unknown.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const get = await api('GET', '/v1/messages/0000000000000000000000', { key: null });
    expect(get.status).toBe(401);
  });

  it('403 for a sender domain outside the key scope or not configured; 422 for a domain without DKIM key', async () => {
    const scoped = await api('POST', '/v1/messages', { json: message({ from: 'noreply@other.test' }) });
    expect(scoped.status).toBe(403);
    expect(scoped.body.error).toMatchObject({ code: 'SENDER_NOT_ALLOWED', field: 'from' });
    const unknown = await api('POST', '/v1/messages', { key: ADMIN_KEY, json: message({ from: 'noreply@unknown.test' }) });
    expect(unknown.status).toBe(403);
    expect(unknown.body.error.code).toBe('SENDER_NOT_ALLOWED');
    const otherOk = await api('POST', '/v1/messages', { key: OTHER_KEY, json: message({ from: 'noreply@other.test' }) });
    expect(otherOk.status).toBe(202);
    const noKey = await api('POST', '/v1/messages', { key: ADMIN_KEY, json: message({ from: 'noreply@nokey.test' }) });
    expect(noKey.status).toBe(422);
    expect(noKey.body.error).toMatchObject({ code: 'NO_DKIM_KEY', field: 'from' });
  });

  it('400 with the failing field', async () => {
    const malformed = await api('POST', '/v1/messages', { raw: '{"from": "a@example.test", "to": [', type: 'application/json' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({ code: 'VALIDATION', field: 'body' });

    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ to: undefined }, 'to', 'VALIDATION'],
      [{ to: [] }, 'to', 'VALIDATION'],
      [{ to: ['ok@dest.test', 'not an address'] }, 'to[1]', 'BAD_ADDRESS'],
      [{ to: ['ok@dest.test', 42] }, 'to[1]', 'VALIDATION'],
      [{ subject: 'Hi\r\nBcc: victim@dest.test' }, 'subject', 'HEADER_INJECTION'],
      [{ headers: { 'X-Ok': 'yes', Received: 'from evil' } }, 'headers.Received', 'VALIDATION'],
      [{ headers: { 'X-Trace': 'a\nb' } }, 'headers.X-Trace', 'HEADER_INJECTION'],
      [{ bogus: true }, 'bogus', 'VALIDATION'],
      [{ priority: 'urgent' }, 'priority', 'VALIDATION'],
      [{ ttl: '60' }, 'ttl', 'VALIDATION'],
      [{ ttl: 0 }, 'ttl', 'VALIDATION'],
      [{ tags: Array.from({ length: 11 }, (_, i) => `t${i}`) }, 'tags', 'VALIDATION'],
      [{ tags: ['x'.repeat(65)] }, 'tags[0]', 'VALIDATION'],
      [{ metadata: { n: 1 } }, 'metadata.n', 'VALIDATION'],
      [{ attachments: [{ filename: 'a.txt' }] }, 'attachments[0].content', 'VALIDATION'],
      [{ text: undefined }, 'text', 'VALIDATION'],
    ];
    const stored = await countMessages(prefix);
    for (const [over, field, code] of cases) {
      const res = await api('POST', '/v1/messages', { json: message(over) });
      expect({ status: res.status, field: res.body?.error?.field, code: res.body?.error?.code }, JSON.stringify(over)).toEqual({ status: 400, field, code });
      expect(res.body.error.message).toContain(field);
    }
    expect(await countMessages(prefix)).toBe(stored);
  });

  it('413 for oversized bodies, 415 for other content types', async () => {
    const big = await api('POST', '/v1/messages', { json: message({ text: 'x'.repeat(MAX_BYTES + 10) }) });
    expect(big.status).toBe(413);
    expect(big.body.error).toMatchObject({ code: 'TOO_LARGE', details: { limitBytes: MAX_BYTES } });
    const bigRaw = await api('POST', '/v1/messages?to=carol@dest.test', { raw: RAW + 'x'.repeat(MAX_BYTES) });
    expect(bigRaw.status).toBe(413);
    expect(bigRaw.body.error.code).toBe('TOO_LARGE');
    const text = await api('POST', '/v1/messages', { raw: 'hello', type: 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe('UNSUPPORTED_MEDIA');
    const form = await api('POST', '/v1/messages', { raw: 'a=b', type: 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
  });

  it('422 for a suppressed recipient, naming the address and the reason', async () => {
    await gateway.suppressions.add({ address: 'blocked@dest.test', reason: 'hard-bounce', source: 'test', at: Date.now() });
    const res = await api('POST', '/v1/messages', { json: message({ to: ['alice@dest.test', 'Blocked@dest.test'] }) });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('SUPPRESSED');
    expect(res.body.error.message).toContain('blocked@dest.test');
    expect(res.body.error.message).toContain('hard-bounce');
    expect(res.body.error.details.suppressed[0]).toMatchObject({ address: 'blocked@dest.test', reason: 'hard-bounce' });
  });

  it("404 for another key's message and unknown ids; admin keys see every message", async () => {
    const res = await api('POST', '/v1/messages', { json: message() });
    const id = res.body.id as string;
    const other = await api('GET', `/v1/messages/${id}`, { key: OTHER_KEY });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('NOT_FOUND');
    const admin = await api('GET', `/v1/messages/${id}`, { key: ADMIN_KEY });
    expect(admin.status).toBe(200);
    expect(admin.body.id).toBe(id);
    expect((await api('GET', '/v1/messages/0000000000000000000000')).status).toBe(404);
    expect((await api('GET', '/v1/messages/..%2Fetc')).status).toBe(404);
    expect((await api('GET', '/v1/nothing-here')).body.error.code).toBe('NOT_FOUND');
  });
});

describe('operations and documentation', () => {
  it('/healthz, /readyz (no worker in this process) and /metrics', async () => {
    expect(await api('GET', '/healthz', { key: null })).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await api('GET', '/readyz', { key: null })).toMatchObject({ status: 200, body: { status: 'ready', redis: true, worker: null } });
    const metrics = await api('GET', '/metrics', { key: null });
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(metrics.text).toMatch(/kurir_intake_messages_accepted_total\{interface="http",priority="normal"\} [1-9]/);
    // Two: the 422 test and the fresh submission in the idempotency-replay test.
    expect(metrics.text).toMatch(/kurir_intake_messages_refused_total\{interface="http",reason="SUPPRESSED"\} 2/);
  });

  it('/docs/json is an OpenAPI 3 document with the routes, bearer security and error responses; /docs serves the UI', async () => {
    const doc = (await api('GET', '/docs/json', { key: null })).body;
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    const post = doc.paths['/v1/messages'].post;
    expect(Object.keys(post.requestBody.content)).toEqual(['application/json', 'message/rfc822']);
    expect(post.requestBody.content['message/rfc822'].schema).toMatchObject({ type: 'string', format: 'binary' });
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['202', '400', '401', '403', '409', '413', '415', '422', '429', '503']));
    expect(post.security).toEqual([{ bearerAuth: [] }]);
    expect(post.parameters.map((p: any) => p.name)).toEqual(expect.arrayContaining(['to', 'idempotency-key']));
    expect(doc.paths['/v1/messages/{id}'].get.responses['200']).toBeDefined();
    expect(doc.paths['/readyz']).toBeDefined();
    const ui = await fetch(`http://127.0.0.1:${gateway.ports.http}/docs/`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });
});

describe('Redis unavailable', () => {
  it('answers 503 UNAVAILABLE and stores nothing; /readyz turns 503', async () => {
    const config = makeConfig(`kurir-http-down-${run}`);
    const down = await startGateway(config, createLogger({ level: 'silent' }));
    const downApi = client(() => `http://127.0.0.1:${down.ports.http}`);
    try {
      expect((await downApi('POST', '/v1/messages', { json: message() })).status).toBe(202);
      down.redis.disconnect();
      const res = await downApi('POST', '/v1/messages', { json: message({ subject: 'While down' }) });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('UNAVAILABLE');
      expect(await countMessages(config.redis.prefix)).toBe(1);
      const get = await downApi('GET', '/v1/messages/0000000000000000000000');
      expect(get.status).toBe(503);
      const ready = await downApi('GET', '/readyz', { key: null });
      expect(ready).toMatchObject({ status: 503, body: { status: 'unavailable', redis: false } });
      expect((await downApi('GET', '/healthz', { key: null })).status).toBe(200);
    } finally {
      await down.close();
    }
  });
});

describe('error mapping without Redis (app.inject)', () => {
  it('429 carries Retry-After; unexpected failures are 500 INTERNAL without details', async () => {
    const config = makeConfig(`kurir-http-inject-${run}`);
    let fail: unknown = new KurirError('RATE_LIMITED', 'Too many messages for this key', { retryAfterSeconds: 7 });
    const intake = { accept: async () => Promise.reject(fail), countRefusal: () => undefined } as unknown as IntakeService;
    const app = await buildApp({
      config,
      logger: createLogger({ level: 'silent' }),
      intake,
      credentials: new CredentialRegistry(config),
      messages: {} as MessageStore,
      metrics: createMetrics({ defaultMetrics: false }),
      readiness: async () => ({ redis: true, worker: false }),
    });
    try {
      const send = () => app.inject({ method: 'POST', url: '/v1/messages', headers: { authorization: `Bearer ${BOOKING_KEY}` }, payload: message() });
      const limited = await send();
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['retry-after']).toBe('7');
      expect(limited.json().error.code).toBe('RATE_LIMITED');
      fail = new Error('secret internals');
      const internal = await send();
      expect(internal.statusCode).toBe(500);
      expect(internal.json()).toEqual({ error: { code: 'INTERNAL', message: 'Internal error' } });
      fail = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
      expect((await send()).statusCode).toBe(503);
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ status: 'unavailable', redis: true, worker: false });
    } finally {
      await app.close();
    }
  });
});
