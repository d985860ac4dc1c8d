/**
 * MX fallback with runDelivery against real Redis (unique prefix), DNS on loopback and raw scripted receivers:
 * a host that refuses the connection or greets with a refusal does not end the attempt, and a refusal at the
 * greeting, before a single recipient was named, never bounces one (RFC 7504's 521 "does not accept mail" aside).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDelivery, type DeliveryDeps } from '../../../src/delivery/pipeline.js';
import type { MessageStore } from '../../../src/store/message-store.js';
import { deliveryTestDeps, queueMessage, type DeliveryTestDeps } from '../../helpers/delivery-deps.js';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';
import { closeScripted, scripted, type Scripted } from '../../helpers/scripted-mx.js';
import { manualClock } from '../../helpers/until.js';
import { primaryAndBackupMx } from '../../helpers/mx-zones.js';

const clock = manualClock(1_800_000_000_000);
let redis: Redis;
let dns: DnsServer;
let mx: Scripted;
let greeting = '554 5.7.1 mx.scripted.test: no SMTP service here';
let t: DeliveryTestDeps;
let deps: DeliveryDeps;
let messages: MessageStore;

beforeAll(async () => {
  redis = new Redis('redis://127.0.0.1:6379');
  mx = await scripted({ greeting: () => greeting });
  // mx1 (preferred) is 127.0.0.2, where nothing listens on the receiver's port: the connection is refused.
  dns = await startDnsServer({
    ...primaryAndBackupMx('backup.test'),
    'single.test': { MX: [{ exchange: 'mx2.backup.test', priority: 10 }] },
  });
  t = deliveryTestDeps({
    redis,
    dns,
    clock,
    prefix: `kurir-test-mx-fallback-${Math.random().toString(36).slice(2, 8)}`,
    overrides: { delivery: { retrySchedule: [30], retryJitter: 0, mxPort: mx.port } },
  });
  ({ deps, messages } = t);
});

afterAll(async () => {
  await redis.quit();
  await dns.close();
  await closeScripted();
  await t.cleanUp();
});

describe('runDelivery over several MX hosts', () => {
  it('tries the next MX when the first refuses the connection; a 5xx greeting there defers, never bounces', async () => {
    greeting = '554 5.7.1 mx.scripted.test: no SMTP service here';
    const job = await queueMessage(messages, clock, 'x@backup.test', 3_600_000, 'normal');
    expect(await runDelivery(deps, job)).toEqual({ next: 'retry', at: clock.now() + 30_000 });
    const view = await messages.get(job.messageId);
    expect(view!.events.filter((e) => e.type === 'attempt').map((e) => e.type === 'attempt' && e.host)).toEqual([
      `mx1.backup.test[127.0.0.2]:${mx.port}`,
      `mx2.backup.test[127.0.0.1]:${mx.port}`,
    ]);
    expect(view!.recipients['x@backup.test']).toMatchObject({ status: 'deferred', reply: greeting });
  });

  it('a single MX greeting with 554 defers too; one greeting with 521 (RFC 7504: accepts no mail) bounces', async () => {
    greeting = '554 mx.scripted.test ESMTP not accepting messages right now';
    const busy = await queueMessage(messages, clock, 'x@single.test', 3_600_000, 'normal');
    expect(await runDelivery(deps, busy)).toEqual({ next: 'retry', at: clock.now() + 30_000 });
    expect((await messages.get(busy.messageId))!.recipients['x@single.test']).toMatchObject({ status: 'deferred' });

    greeting = '521 5.3.2 mx.scripted.test does not accept mail';
    const never = await queueMessage(messages, clock, 'y@single.test', 3_600_000, 'normal');
    expect(await runDelivery(deps, never)).toEqual({ next: 'done' });
    expect((await messages.get(never.messageId))!.recipients['y@single.test']).toMatchObject({ status: 'bounced', reply: greeting });
  });
});
