/**
 * A 202 survives a Redis restart. Under HTTP load (16 concurrent clients), the gateway's own Redis
 * (never the shared one; AOF everysec, appendfsync always for the kill) is shut down cleanly or killed with SIGKILL and started again on
 * the same data; every message answered 202 must reach the receiver. Requests refused while Redis is
 * down must be 503, never 500.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { loadThroughFault, restartRedis } from '../helpers/fault-load.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

let dns: DnsServer;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
  dns = await startDnsServer({ 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
});
afterAll(async () => {
  await receiver?.close();
  await dns?.close();
});

function idsAtReceiver(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of receiver.messages) {
    const id = /^b\+([0-9a-z]+)\./.exec(m.mailFrom)?.[1];
    if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

async function loadWithFault(fault: 'shutdown' | 'kill'): Promise<void> {
  // SIGKILL: appendfsync always, so that Redis itself keeps every write it answered (with everysec it postpones
  // its AOF write while a background fsync is slow and answers meanwhile: docs/reliability.md); what is tested
  // is the gateway's side of the crash.
  const redis: PrivateRedis = await startPrivateRedis({ appendfsync: fault === 'kill' ? 'always' : 'everysec' });
  let t: TestGateway | null = null;
  try {
    t = await startTestGateway({
      dns,
      overrides: {
        redis: { url: redis.url },
        limits: { enabled: false },
        // An active job whose Redis went away is taken again once its lock lapses: a short lock keeps that in the wait.
        delivery: { mxPort: receiver.port, concurrency: 10, retrySchedule: [1], jobLockSeconds: 6, reconcile: { intervalSeconds: 2, graceSeconds: 2 } },
      },
    });
    // The clients behave like the booking system: a 503 is retried after a short pause, until 800 are accepted.
    const target = 800;
    const { accepted, statuses, submitted, faulted } = await loadThroughFault({
      url: t.url,
      target,
      faultAfter: 300,
      forMs: 60_000,
      body: (i) => ({ from: 'noreply@example.test', to: [`user${i}-${fault}@dest.test`], subject: `code ${i}`, text: `Code ${i}`, priority: 'verification' }),
      fault: () => restartRedis(redis, fault),
    });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !accepted.every((id) => idsAtReceiver().has(id))) await new Promise((r) => setTimeout(r, 250));
    const counts = idsAtReceiver();
    const lost = accepted.filter((id) => !counts.has(id));
    const duplicated = accepted.filter((id) => (counts.get(id) ?? 0) > 1).length;
    console.log(
      `redis ${fault}: submitted ${submitted}, answers ${JSON.stringify(Object.fromEntries(statuses))}, accepted ${accepted.length}, delivered ${accepted.length - lost.length}, lost ${lost.length}, duplicated ${duplicated}`,
    );
    expect(faulted).toBe(true);
    expect(accepted.length).toBeGreaterThanOrEqual(target);
    // Every refusal during the outage is a clean "try later", never a 500.
    expect([...statuses.keys()].filter((s) => s !== 202 && s !== 503)).toEqual([]);
    expect(lost).toEqual([]);
  } finally {
    await t?.close().catch(() => undefined);
    await redis.destroy();
  }
}

it('loses no accepted message when Redis is shut down and restarted under load', async () => {
  await loadWithFault('shutdown');
}, 120_000);

it('loses no accepted message when Redis is killed (SIGKILL) and restarted under load', async () => {
  await loadWithFault('kill');
}, 120_000);
