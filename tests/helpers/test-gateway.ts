/**
 * Starts a real Kurir gateway in-process for integration tests: real Redis on 127.0.0.1:6379 under a
 * unique key prefix, listeners on ephemeral ports, DKIM keys generated into a temp folder, and (when
 * given) DNS from a loopback server. `publishDkim` puts the keys' public records into that DNS zone.
 * `logger` replaces the default (silent unless KURIR_TEST_LOG) logger, e.g. to read what was logged.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { dnsRecordFor, loadPrivateKey } from '../../src/dkim/keys.js';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway.js';
import { createLogger, type Logger } from '../../src/lib/logger.js';
import type { DnsServer } from './dns-server.js';

export const API_KEY = 'dev-api-key-change-me-0001';
export const ADMIN_KEY = 'dev-admin-key-change-me-0001';
export const SMTP_USER = { user: 'booking', pass: 'dev-smtp-password' };

export interface TestGateway {
  gateway: Gateway;
  config: Config;
  dataDir: string;
  /** Base URL of the HTTP API. */
  url: string;
  /** POST /v1/messages with the booking key; returns status and parsed body. */
  submit(body: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  /** GET /v1/messages/:id with the booking key. */
  status(id: string): Promise<any>;
  /** Polls the status until `predicate` holds or `timeoutMs` passes. */
  waitForStatus(id: string, predicate: (s: any) => boolean, timeoutMs?: number): Promise<any>;
  publishDkim(dns: DnsServer): void;
  close(): Promise<void>;
}

function merge(a: Record<string, any>, b: Record<string, any>): Record<string, any> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b))
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? merge(out[k], v) : v;
  return out;
}

/** Deletes every key below a prefix (test clean-up). */
export async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis('redis://127.0.0.1:6379');
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await redis.quit();
}

/** Builds a config like the default one, isolated for a test. */
export function testConfig(dataDir: string, overrides: Record<string, unknown> = {}, dnsAddress?: string, fixedPrefix?: string): Config {
  const prefix = fixedPrefix ?? `kurir-test-${Math.random().toString(36).slice(2, 10)}`;
  const base = {
    dataDir,
    log: { level: process.env.KURIR_TEST_LOG ?? 'silent' },
    redis: { prefix, manage: 'never' },
    http: { port: 0 },
    smtp: { port: 0 },
    feedback: { port: 0 },
    dns: { servers: dnsAddress ? [dnsAddress] : [], timeoutSeconds: 1, tries: 1 },
    // Off unless a test turns it on: it would query DNS for every test gateway's domains in the background.
    domainKeys: { selfCheck: { enabled: false } },
    // On the event loop unless a test asks for threads: a signing thread per test gateway made the integration
    // files about 15 % slower. The threads are covered by signer.test.ts (every case both ways), sign-pool.test.ts,
    // and domains.test.ts (a second gateway signs in two threads through key rotation and revocation).
    dkim: { signingThreads: 0 },
    delivery: { retrySchedule: [1], retryJitter: 0, connectTimeoutSeconds: 2, greetingTimeoutSeconds: 3, socketTimeoutSeconds: 5, shutdownGraceSeconds: 2 },
    domains: [
      {
        name: 'example.test',
        dkim: [
          { selector: 'kurir1', algorithm: 'rsa', privateKeyFile: join(dataDir, 'dkim/rsa.pem'), generate: true },
          { selector: 'kurir1e', algorithm: 'ed25519', privateKeyFile: join(dataDir, 'dkim/ed.pem'), generate: true },
        ],
      },
    ],
  };
  return loadConfig({ file: 'config/default.yaml', overrides: merge(base, overrides) });
}

/**
 * Starts a gateway for a test; `close()` stops it and removes its Redis keys and temp folder. With
 * `prefix`, several gateways share one Redis prefix (a cluster); then the caller drops the keys
 * (`dropPrefix`) once all of them are closed.
 */
export async function startTestGateway(
  opts: { overrides?: Record<string, unknown>; dns?: DnsServer; gatewayOptions?: GatewayOptions; prefix?: string; logger?: Logger } = {},
): Promise<TestGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kurir-test-'));
  const config = testConfig(dataDir, opts.overrides, opts.dns?.address, opts.prefix);
  const gateway = await startGateway(config, opts.logger ?? createLogger({ level: config.log.level }), opts.gatewayOptions);
  const url = `http://127.0.0.1:${gateway.ports.http}`;
  const auth = { authorization: `Bearer ${API_KEY}` };
  const t: TestGateway = {
    gateway,
    config,
    dataDir,
    url,
    async submit(body, headers = {}) {
      const res = await fetch(`${url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth, ...headers },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    },
    async status(id) {
      const res = await fetch(`${url}/v1/messages/${id}`, { headers: auth });
      return res.json();
    },
    async waitForStatus(id, predicate, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      let last: any;
      while (Date.now() < end) {
        last = await t.status(id);
        if (predicate(last)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`status of ${id} did not match within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    },
    publishDkim(dns) {
      for (const d of config.domains) {
        for (const k of d.dkim) {
          const key = loadPrivateKey(readFileSync(k.privateKeyFile, 'utf8'));
          dns.set(`${k.selector}._domainkey.${d.name}`, 'TXT', [dnsRecordFor(k.algorithm, key.publicKeyBase64)]);
        }
      }
    },
    async close() {
      await gateway.close();
      if (!opts.prefix) await dropPrefix(config.redis.prefix);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

/**
 * Submits `message` to one recipient over HTTP and waits until it is delivered to the test receiver;
 * answers its id, the VERP address it arrived with, and its Message-ID without angle brackets.
 */
export async function submitDelivered(
  t: TestGateway,
  receiver: { messages: Array<{ rcptTo: string[]; mailFrom: string }> },
  message: Record<string, unknown>,
  to: string,
): Promise<{ id: string; verp: string; messageId: string }> {
  const res = await t.submit({ ...message, to: [to] });
  if (res.status !== 202) throw new Error(`submission to ${to} answered ${res.status}: ${JSON.stringify(res.body)}`);
  const s = await t.waitForStatus(res.body.id, (x) => x.status === 'delivered');
  const msg = receiver.messages.find((m) => m.rcptTo.includes(to));
  if (!msg) throw new Error(`${to} is delivered but not at the receiver`);
  return { id: res.body.id, verp: msg.mailFrom, messageId: String(s.messageId).replace(/^<|>$/g, '') };
}

/** One HTTP API call with the admin key; answers the status and the parsed JSON body (null when empty). */
export async function adminRequest(baseUrl: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(baseUrl + path, {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
