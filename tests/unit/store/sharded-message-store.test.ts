/**
 * ShardedMessageStore extends MessageStore: a method it does not override would silently read or write the
 * main Redis for a message that lives on a shard. Every method of MessageStore must be routed.
 */
import { describe, expect, it } from 'vitest';
import { MessageStore } from '../../../src/store/message-store.js';
import { ShardedMessageStore } from '../../../src/store/sharded-message-store.js';

/** Helpers that only ever run inside a routed call on the shard's own store. */
const INTERNAL = new Set(['constructor', 'idsIn', 'handOn']);

describe('ShardedMessageStore', () => {
  it('overrides every method of MessageStore', () => {
    const methods = Object.getOwnPropertyNames(MessageStore.prototype).filter((n) => !INTERNAL.has(n));
    expect(methods.length).toBeGreaterThan(10);
    const routed = new Set(Object.getOwnPropertyNames(ShardedMessageStore.prototype));
    expect(methods.filter((m) => !routed.has(m))).toEqual([]);
  });
});
