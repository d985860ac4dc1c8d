/**
 * Writes made in one event-loop turn leave a socket together (src/lib/coalesced-writes.ts), or later while held: on a
 * plain TCP socket to a loopback server, and on every Redis connection `createRedis` opens, also after a reconnect.
 * The system-call counts come from /proc/self/io (`syscw`), read around a burst of commands issued in one turn.
 */
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { coalesceSocketWrites, holdSocketWrites } from '../../src/lib/coalesced-writes.js';
import { closeRedis, createRedis, waitReady } from '../../src/store/redis.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const key = `kurir-test-coalesce-${Math.random().toString(36).slice(2, 8)}`;

/** Write system calls this process has made so far. */
function writeCalls(): number {
  return Number(/^syscw:\s+(\d+)/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1]);
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('coalesceSocketWrites', () => {
  let server: net.Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  it('holds the writes of one turn and sends them together, in order, when the turn ends', async () => {
    const received: Buffer[] = [];
    let ended!: () => void;
    const done = new Promise<void>((r) => (ended = r));
    server = net.createServer((s) => {
      s.on('data', (d) => received.push(d));
      s.on('end', () => ended());
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    coalesceSocketWrites(socket);
    coalesceSocketWrites(socket); // a second call changes nothing
    socket.write('one ');
    socket.write(Buffer.from('two '));
    socket.write('three\n');
    expect(socket.writableCorked).toBe(1);
    expect(socket.writableLength).toBe(14);
    await turn();
    expect(socket.writableCorked).toBe(0);
    socket.write('four\n'); // a later turn is corked and flushed again
    expect(socket.writableCorked).toBe(1);
    await turn();
    expect(socket.writableCorked).toBe(0);
    socket.end('five\n'); // end flushes whatever is held
    await done;
    expect(Buffer.concat(received).toString()).toBe('one two three\nfour\nfive\n');
  });

  it('keeps writes corked past their turn while held, and sends them once the last hold is released', async () => {
    const received: string[] = [];
    server = net.createServer((s) => s.on('data', (d) => received.push(d.toString())));
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    try {
      // A socket that does not coalesce: holding it changes nothing.
      holdSocketWrites(socket)();
      coalesceSocketWrites(socket);
      const first = holdSocketWrites(socket);
      const second = holdSocketWrites(socket);
      socket.write('mail\n');
      await turn();
      await turn();
      expect(socket.writableCorked).toBe(1);
      socket.write('rcpt\n');
      first();
      first(); // a second release of the same hold does nothing
      await turn();
      expect(socket.writableCorked).toBe(1);
      second();
      await turn();
      expect(socket.writableCorked).toBe(0);
      await new Promise((r) => setTimeout(r, 50));
      expect(received.join('')).toBe('mail\nrcpt\n');
    } finally {
      socket.destroy(); // also when an assertion fails, so the server can close
    }
  });
});

describe('createRedis', () => {
  let redis: Redis | undefined;
  afterAll(async () => {
    if (redis) {
      await redis.del(key);
      await closeRedis(redis);
    }
  });

  /** Issues `n` INCRs in one turn; returns their answers and the write system calls made until all answered. */
  async function burst(r: Redis, n: number): Promise<{ answers: number[]; writes: number }> {
    const before = writeCalls();
    const answers = await Promise.all(Array.from({ length: n }, () => r.incr(key)));
    return { answers, writes: writeCalls() - before };
  }

  it('sends the commands of one turn in a few writes, not one each, and after a reconnect too', async () => {
    redis = createRedis(REDIS_URL, 'command');
    await waitReady(redis);
    await redis.del(key);
    const first = await burst(redis, 200);
    expect(first.answers).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    // One writev for the burst; the margin covers the test runner's own messages to its parent.
    expect(first.writes).toBeLessThan(20);

    // The server drops the connection; the new socket ioredis opens is coalesced as well.
    const admin = createRedis(REDIS_URL, 'command');
    await waitReady(admin);
    const id = await redis.client('ID');
    const reconnected = new Promise((r) => redis?.once('ready', r));
    await admin.client('KILL', 'ID', String(id));
    await closeRedis(admin);
    await reconnected;
    const second = await burst(redis, 200);
    expect(second.answers).toEqual(Array.from({ length: 200 }, (_, i) => i + 201));
    expect(second.writes).toBeLessThan(20);
  });
});
