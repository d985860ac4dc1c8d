/**
 * The delivery pipeline's dependencies for tests that call runDelivery directly: a test config (DNS from the
 * loopback server), real Redis under `prefix`, a MessageStore, a real ProviderShaper behind the shaping gate
 * and the given (usually manual) clock; plus `queueMessage`, which stores a message as intake would.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Priority } from '../../src/config/schema.js';
import type { DeliveryDeps, DeliveryJob } from '../../src/delivery/pipeline.js';
import { createResolver } from '../../src/delivery/resolver.js';
import { loadBounceRules } from '../../src/feedback/classify/rules.js';
import type { Clock } from '../../src/lib/clock.js';
import { newMessageId } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/logger.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createProviderMap } from '../../src/metrics/provider.js';
import { createShapingGate } from '../../src/shaping/gate.js';
import { ProviderShaper } from '../../src/shaping/provider-shaper.js';
import { loadThrottleRules } from '../../src/shaping/throttle-rules.js';
import { createKeys } from '../../src/store/keys.js';
import { MessageStore } from '../../src/store/message-store.js';
import type { EventSink } from '../../src/store/message-store-types.js';
import type { DnsServer } from './dns-server.js';
import { dropPrefix, testConfig } from './test-gateway.js';

export interface DeliveryTestDeps {
  deps: DeliveryDeps;
  shaper: ProviderShaper;
  messages: MessageStore;
  /** Removes the temp folder and the Redis keys under the prefix. */
  cleanUp(): Promise<void>;
}

/**
 * Builds the pipeline's dependencies over `redis` and `dns` (none: no resolver servers), the config `overrides` on
 * top of the test config; `sink` makes the message store's event sink (webhooks), its events through the outbox.
 */
export function deliveryTestDeps(o: {
  redis: Redis;
  dns?: DnsServer;
  clock: Clock;
  prefix: string;
  overrides: Record<string, unknown>;
  sink?: (made: Pick<DeliveryDeps, 'config' | 'metrics' | 'providers' | 'logger'>) => EventSink;
}): DeliveryTestDeps {
  const dataDir = mkdtempSync(join(tmpdir(), 'kurir-pipeline-'));
  const config = testConfig(dataDir, o.overrides, o.dns?.address, o.prefix);
  const keys = createKeys(o.prefix);
  const providers = createProviderMap(config.shaping.providers);
  const metrics = createMetrics({ defaultMetrics: false, providers: providers.names() });
  const logger = createLogger({ level: 'silent' });
  const { clock, redis } = o;
  const sink = o.sink?.({ config, metrics, providers, logger });
  const messages = new MessageStore(redis, keys, 86_400, sink, { outboxGraceMs: sink ? 60_000 : 0 });
  const shaper = new ProviderShaper({ redis, keys, config, providers, rules: loadThrottleRules(config.shaping.throttleRulesFile), metrics, logger, clock });
  const gate = createShapingGate(shaper, { clock, logger, recheckMs: 60_000 });
  const resolver = createResolver(config.dns);
  const deps: DeliveryDeps = {
    config,
    clock,
    resolver,
    messages,
    metrics,
    providers,
    logger,
    verpSecret: 'test-secret',
    rules: loadBounceRules(config.feedback.rulesFile),
    gate,
  };
  return {
    deps,
    shaper,
    messages,
    async cleanUp() {
      await dropPrefix(o.prefix);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Stores a message to `to` (one address or several of one domain) as intake would, expiring `ttlMs` from now; returns its job. */
export async function queueMessage(
  messages: MessageStore,
  clock: Clock,
  to: string | string[],
  ttlMs: number,
  priority: Priority = 'bulk',
): Promise<DeliveryJob> {
  const recipients = typeof to === 'string' ? [to] : to;
  const id = newMessageId(clock.now());
  const body = Buffer.from(`From: noreply@example.test\r\nTo: ${recipients.join(', ')}\r\nSubject: hi\r\n\r\nhi\r\n`);
  await messages.create(
    {
      id,
      owner: 'test',
      interface: 'http',
      mailFrom: 'noreply@example.test',
      fromDomain: 'example.test',
      recipients,
      priority,
      createdAt: clock.now(),
      expiresAt: clock.now() + ttlMs,
      size: body.length,
      messageId: `<${id}@example.test>`,
      dkim: [],
    },
    body,
  );
  const domain = recipients[0].slice(recipients[0].indexOf('@') + 1);
  return { id: `${id}_${domain}`, messageId: id, domain, priority, attemptsStarted: 1 };
}
