/**
 * A cancel that races a delivery run's outcome (POST /v1/messages/:id/cancel while a job is in its SMTP
 * transaction): a recipient the run delivered stays delivered, and the cancel's `expired` names only the
 * recipients it cancelled. The run is simulated by recording its 250 while the cancel removes the jobs (the
 * moment the real one can land); store, scripts and Redis are real. Until 1 Dec 2026 the cancel overwrote the
 * delivery: the recipient ended `expired` and the booking system got `delivered`, then `expired`.
 */
import { afterAll, expect, it } from 'vitest';
import { cancelMessage, type DeliveryControlDeps } from '../../src/admin/delivery-control.js';
import { createKeys } from '../../src/store/keys.js';
import { MessageStore } from '../../src/store/message-store.js';
import type { AppendedEvent, EventSink } from '../../src/store/message-store-types.js';
import { createRedis, waitReady } from '../../src/store/redis.js';
import { messageRecord } from '../helpers/message-record.js';
import { dropPrefix } from '../helpers/test-gateway.js';

const prefix = `kurir-test-cancel-race-${Math.random().toString(36).slice(2, 8)}`;
const keys = createKeys(prefix);
const redis = createRedis('redis://127.0.0.1:6379', 'command');
afterAll(async () => {
  redis.disconnect();
  await dropPrefix(prefix);
});

const delivered = (address: string) => ({
  update: { address, state: { status: 'delivered' as const, attempts: 1, updatedAt: Date.now(), reply: '250 ok' } },
  event: { type: 'delivered' as const, at: Date.now(), recipients: [address], host: 'mx.dest.test', reply: '250 ok' },
});

it('a delivery recorded while a cancel runs stays delivered; the cancel expires only the others', async () => {
  await waitReady(redis);
  const told: Array<{ type: string; recipients: string[] }> = [];
  const sink: EventSink = {
    async onEvents(_record, events: AppendedEvent[]) {
      for (const { event } of events) if ('recipients' in event) told.push({ type: event.type, recipients: event.recipients });
    },
  };
  const messages = new MessageStore(redis, keys, 600, sink);
  const record = messageRecord('cancelrace01', ['amy@dest.test', 'bob@other.test']);
  await messages.create(record, Buffer.from('x'));
  const queue = {
    async queueFor() {
      return {
        async removeJob(jobId: string) {
          if (!jobId.endsWith('_dest.test')) return 'removed';
          // The run in its SMTP transaction gets its 250 and records it now.
          const d = delivered('amy@dest.test');
          await messages.update(record.id, [d.update], [d.event], record);
          return 'running';
        },
      };
    },
  };
  const shaper = { forgetHeld: async () => undefined }; // nothing held here
  const deps = { queue, messages, shaper, clock: { now: () => Date.now() } } as unknown as DeliveryControlDeps;
  const res = await cancelMessage(deps, record.id, 'admin-dev');
  expect(res).toEqual({ id: record.id, cancelled: ['bob@other.test'], inFlight: ['dest.test'] });
  const view = await messages.get(record.id);
  expect(view?.recipients['amy@dest.test'].status).toBe('delivered');
  expect(view?.recipients['bob@other.test'].status).toBe('expired');
  expect(told).toEqual([
    { type: 'delivered', recipients: ['amy@dest.test'] },
    { type: 'expired', recipients: ['bob@other.test'] },
  ]);
});

it('the record script never lets `expired` replace a final state, even when a cancel read the states before the delivery landed', async () => {
  const messages = new MessageStore(redis, keys, 600);
  const record = messageRecord('cancelrace02', ['amy@dest.test']);
  await messages.create(record, Buffer.from('x'));
  const d = delivered('amy@dest.test');
  await messages.update(record.id, [d.update], [d.event], record);
  const expired = { status: 'expired' as const, attempts: 1, updatedAt: Date.now(), reply: 'cancelled by admin-dev' };
  await messages.update(record.id, [{ address: 'amy@dest.test', state: expired }], [], record);
  expect((await messages.get(record.id))?.recipients['amy@dest.test'].status).toBe('delivered');
  // A bounce after a delivery (a DSN) still replaces it: only `expired` is held back.
  const bounced = { status: 'bounced' as const, attempts: 1, updatedAt: Date.now(), reply: '550 5.1.1 gone', category: 'invalid-recipient' };
  await messages.update(record.id, [{ address: 'amy@dest.test', state: bounced }], [], record);
  expect((await messages.get(record.id))?.recipients['amy@dest.test'].status).toBe('bounced');
});
