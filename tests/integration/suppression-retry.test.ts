/**
 * A write that is tried again must not lose the `suppressed` event: a hard bounce suppresses the address before the
 * outcome is recorded, and a retry of that record (Redis unavailable: whileUnavailable in
 * src/delivery/stages/outcome.ts, or a DSN sender retrying after a 451) finds the address already on the list.
 * The suppression policy answers `ours` for the same message and source, so the retry records the event. Until
 * 1 Dec 2026 the address was suppressed and the booking system never told.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { classifyAttempt, recordAttempt } from '../../src/delivery/stages/outcome.js';
import type { DeliveryDeps } from '../../src/delivery/stages/job.js';
import { loadBounceRules, rulesClassifier } from '../../src/feedback/classify/rules.js';
import { DeliveryFeedback } from '../../src/feedback/suppression/delivery-feedback.js';
import { SuppressionPolicy } from '../../src/feedback/suppression/policy.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { createKeys } from '../../src/store/keys.js';
import { MessageStore } from '../../src/store/message-store.js';
import type { AppendedEvent, RecipientUpdate, UpdateResult } from '../../src/store/message-store-types.js';
import { createRedis, waitReady } from '../../src/store/redis.js';
import { SuppressionStore } from '../../src/store/suppression-store.js';
import type { MessageRecord, TimelineEvent } from '../../src/store/types.js';
import { messageRecord } from '../helpers/message-record.js';
import { dropPrefix, testConfig } from '../helpers/test-gateway.js';

const prefix = `kurir-test-sup-retry-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const redis = createRedis('redis://127.0.0.1:6379', 'command');
const logger = pino({ level: 'silent' });
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'kurir-sup-retry-'));
  await waitReady(redis);
});
afterAll(async () => {
  redis.disconnect();
  await dropPrefix(prefix);
  rmSync(dataDir, { recursive: true, force: true });
});

/** A store whose first update fails as ioredis does when the connection drops before the write. */
class DroppingStore extends MessageStore {
  private dropped = false;
  override async updateDetailed(id: string, updates: RecipientUpdate[], events: TimelineEvent[], record?: MessageRecord): Promise<UpdateResult> {
    if (!this.dropped) {
      this.dropped = true;
      throw new Error('Connection is closed.');
    }
    return super.updateDetailed(id, updates, events, record);
  }
}

function policyFor(config: ReturnType<typeof testConfig>): SuppressionPolicy {
  return new SuppressionPolicy({
    redis,
    keys,
    suppressions: new SuppressionStore(redis, keys),
    metrics: createMetrics({ defaultMetrics: false }),
    logger,
    config: config.feedback,
  });
}

it('a hard bounce whose record is written again after a dropped connection still records and tells `suppressed`', async () => {
  const config = testConfig(dataDir);
  const told: string[] = [];
  const sink = { onEvents: async (_r: MessageRecord, events: AppendedEvent[]) => void told.push(...events.map((e) => e.event.type)) };
  const messages = new DroppingStore(redis, keys, 600, sink);
  const rules = loadBounceRules(config.feedback.rulesFile);
  const feedback = new DeliveryFeedback({ policy: policyFor(config), classify: rulesClassifier(rules), logger });
  const address = 'nobody@dest.test';
  const record = messageRecord('supretry0001', [address]);
  await messages.create(record, Buffer.from('x'));
  const now = Date.now();
  const outcome = { address, kind: 'perm' as const, code: 550, reply: '550 5.1.1 The email account that you tried to reach does not exist' };
  const attempt = classifyAttempt(rules, [outcome], { attempt: 1, now, retryAt: null, host: 'mx.dest.test' });
  const deps = { config, metrics: createMetrics({ defaultMetrics: false }), messages, feedback, logger } as unknown as DeliveryDeps;
  await recordAttempt(deps, { record, pending: [address], attempt: 1, body: null } as never, 'other', attempt, [], now);

  expect(await new SuppressionStore(redis, keys).check([address])).toHaveLength(1);
  expect((await messages.get(record.id))?.events.map((e) => e.type)).toEqual(['queued', 'bounced', 'suppressed']);
  expect(told).toEqual(['bounced', 'suppressed']);
});

it('the policy answers `ours` again for the same message and source, and not for another message or source', async () => {
  const config = testConfig(dataDir);
  const policy = policyFor(config);
  const classification = rulesClassifier(loadBounceRules(config.feedback.rulesFile))({ code: 550, text: '550 5.1.1 user unknown' });
  const failure = { address: 'gone@dest.test', classification, source: 'dsn' as const, messageId: 'supretry0002', at: Date.now() };
  expect(await policy.onFailure(failure)).toMatchObject({ action: 'suppressed', added: true, ours: true });
  expect(await policy.onFailure(failure)).toMatchObject({ action: 'suppressed', added: false, ours: true });
  expect(await policy.onFailure({ ...failure, messageId: 'supretry0003' })).toMatchObject({ action: 'suppressed', added: false, ours: false });
  expect(await policy.onComplaint({ address: 'gone@dest.test', messageId: 'supretry0002', at: Date.now() })).toMatchObject({ added: false, ours: false });
});
