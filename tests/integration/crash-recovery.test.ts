/**
 * kill -9 of a gateway process while messages are queued and in flight loses none: after a restart on
 * the same Redis every accepted message reaches the receiver (at least once; duplicates are counted).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startChildGateway, writeChildConfig } from '../helpers/child-gateway.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { freePort } from '../helpers/ports.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { API_KEY, dropPrefix } from '../helpers/test-gateway.js';

let dns: DnsServer;
let receiver: Receiver;
let dir: string;
let child: ChildProcess | null = null;
const prefix = `kurir-test-crash-${Math.random().toString(36).slice(2, 8)}`;

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

beforeAll(async () => {
  // A slow receiver keeps deliveries in flight when the process is killed.
  receiver = await startReceiver({
    script: async (ctx) => {
      if (ctx.stage === 'data') await new Promise((r) => setTimeout(r, 40));
      return undefined;
    },
  });
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
  dir = mkdtempSync(join(tmpdir(), 'kurir-crash-'));
});

afterAll(async () => {
  child?.kill('SIGKILL');
  await receiver?.close();
  await dns?.close();
  await dropPrefix(prefix);
  rmSync(dir, { recursive: true, force: true });
});

it('loses no accepted message when the process is killed with SIGKILL mid-load', async () => {
  const httpPort = await freePort();
  const configFile = writeChildConfig({
    dir,
    prefix,
    httpPort,
    extra: {
      dns: { servers: [dns.address], timeoutSeconds: 1, tries: 1 },
      delivery: { mxPort: receiver.port, concurrency: 5, retrySchedule: [1], jobLockSeconds: 3, shutdownGraceSeconds: 2 },
      apiKeys: [{ name: 'booking', key: API_KEY, domains: ['example.test'] }],
    },
  });
  child = await startChildGateway(configFile, httpPort);

  const accepted: string[] = [];
  let killed = false;
  const submitOne = async (n: number): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'noreply@example.test', to: [`user${n}@dest.test`], subject: `code ${n}`, text: `Code ${n}`, priority: 'verification' }),
    }).catch(() => null);
    if (res?.status === 202) accepted.push(((await res.json()) as { id: string }).id);
  };
  // 8 concurrent submitters; the process is killed once 150 messages have been accepted.
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (!killed && next < 400) {
        await submitOne(next++);
        if (accepted.length >= 150 && !killed) {
          killed = true;
          child!.kill('SIGKILL');
        }
      }
    }),
  );
  await exited(child!);
  const deliveredBeforeRestart = new Set(receiver.messages.map((m) => /^b\+([0-9a-z]+)\./.exec(m.mailFrom)?.[1])).size;
  expect(deliveredBeforeRestart).toBeLessThan(accepted.length);

  child = await startChildGateway(configFile, httpPort);
  const deadline = Date.now() + 40_000;
  const idsAtReceiver = (): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const m of receiver.messages) {
      const id = /^b\+([0-9a-z]+)\./.exec(m.mailFrom)?.[1];
      if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return counts;
  };
  while (Date.now() < deadline && !accepted.every((id) => idsAtReceiver().has(id))) await new Promise((r) => setTimeout(r, 200));
  const counts = idsAtReceiver();
  const missing = accepted.filter((id) => !counts.has(id));
  const duplicates = [...counts.values()].filter((c) => c > 1).length;
  console.log(`crash test: accepted ${accepted.length}, delivered before kill ${deliveredBeforeRestart}, missing ${missing.length}, duplicated ${duplicates}`);
  expect(missing).toEqual([]);
  expect(duplicates).toBeLessThanOrEqual(10);
  child.kill('SIGTERM');
  await exited(child);
  child = null;
}, 90_000);
