import { describe, expect, it } from 'vitest';
import { buildPayload, signatureHeader, verifySignature, webhookTargets } from '../../../src/webhooks/events.js';
import type { MessageRecord } from '../../../src/store/types.js';

const record: MessageRecord = {
  id: '01abc',
  owner: 'booking',
  interface: 'http',
  mailFrom: 'noreply@example.test',
  fromDomain: 'example.test',
  recipients: ['a@dest.test', 'b@dest.test'],
  priority: 'verification',
  createdAt: 0,
  expiresAt: 1,
  size: 10,
  messageId: '<x@example.test>',
  dkim: [],
  tags: ['t'],
  metadata: { k: 'v' },
};

describe('webhook payloads and signatures', () => {
  it('builds the payload of an event: id per event, ISO times, extra event fields kept', () => {
    const p = buildPayload(
      record,
      { type: 'deferred', at: 1000, recipients: ['a@dest.test'], reply: '451 4.7.1 later', category: 'greylist', nextAttemptAt: 61_000 },
      3,
    );
    expect(p).toEqual({
      id: '01abc.3',
      type: 'deferred',
      messageId: '01abc',
      recipient: 'a@dest.test',
      recipients: ['a@dest.test'],
      at: '1970-01-01T00:00:01.000Z',
      headerMessageId: '<x@example.test>',
      tags: ['t'],
      metadata: { k: 'v' },
      reply: '451 4.7.1 later',
      category: 'greylist',
      nextAttemptAt: '1970-01-01T00:01:01.000Z',
    });
    const two = buildPayload(record, { type: 'delivered', at: 0, recipients: ['a@dest.test', 'b@dest.test'], host: 'mx', reply: '250 ok' }, 4);
    expect(two.recipient).toBeUndefined();
    expect(two.recipients).toHaveLength(2);
  });

  it('signs t.body with HMAC-SHA256 and verifies in constant time within the tolerance', () => {
    const header = signatureHeader('s3cret-s3cret-s3cret', 1_700_000_000, '{"a":1}');
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verifySignature('s3cret-s3cret-s3cret', header, '{"a":1}', 1_700_000_100)).toBe(true);
    expect(verifySignature('s3cret-s3cret-s3cret', header, '{"a":2}', 1_700_000_100)).toBe(false);
    expect(verifySignature('other-secret-other', header, '{"a":1}', 1_700_000_100)).toBe(false);
    expect(verifySignature('s3cret-s3cret-s3cret', header, '{"a":1}', 1_700_000_301)).toBe(false);
    expect(verifySignature('s3cret-s3cret-s3cret', 'garbage', '{"a":1}', 1_700_000_000)).toBe(false);
  });

  it('reads webhooks per API key from config, all event types by default', () => {
    const targets = webhookTargets({
      apiKeys: [
        { name: 'a', key: 'k'.repeat(16), domains: ['*'], admin: false, webhook: { url: 'http://127.0.0.1/h', secret: 's'.repeat(16) } },
        { name: 'b', key: 'l'.repeat(16), domains: ['*'], admin: false, webhook: { url: 'http://127.0.0.1/h', secret: 's'.repeat(16), events: ['bounced'] } },
        { name: 'c', key: 'm'.repeat(16), domains: ['*'], admin: false },
      ],
    });
    expect([...targets.keys()]).toEqual(['a', 'b']);
    expect(targets.get('a')!.events.size).toBe(6);
    expect([...targets.get('b')!.events]).toEqual(['bounced']);
  });
});
