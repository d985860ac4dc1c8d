import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createSmtpPool, type SmtpPool } from '../../../src/delivery/connection-pool.js';
import { sendMessage, type SmtpTarget } from '../../../src/delivery/smtp-client.js';
import { startReceiver, type Receiver, type ReceiverOptions } from '../../helpers/receiver.js';

const sendOpts = { ehloName: 'kurir.example.test', timeouts: { connectMs: 5000, greetingMs: 5000, socketMs: 10_000 } };
const FROM = 'bounce@bounce.example.test';
const raw = (n: number): Buffer => Buffer.from(`From: a@example.test\r\nTo: b@dest.test\r\nSubject: m${n}\r\n\r\nbody ${n}\r\n`);
const targetOf = (port: number): SmtpTarget => ({ host: '127.0.0.1', port, servername: 'mx.example.test' });

/** A loopback TCP relay in front of the receiver: counts client sockets and can cut them all at once. */
interface Relay {
  port: number;
  readonly open: number;
  cutAll(): void;
  close(): Promise<void>;
}

async function startRelay(upstreamPort: number): Promise<Relay> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const cut = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.pipe(upstream).on('error', cut);
    upstream.pipe(client).on('error', cut);
    for (const s of pair) s.on('error', cut).on('close', cut);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get open() {
      return pairs.size;
    },
    cutAll() {
      for (const [client, upstream] of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const r = await startReceiver(opts);
  cleanups.push(() => r.close());
  return r;
}

function pool(opts: Parameters<typeof createSmtpPool>[0] = {}): SmtpPool {
  const p = createSmtpPool(opts);
  cleanups.push(() => p.close());
  return p;
}

async function until(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('createSmtpPool', () => {
  it('sends 20 sequential messages over one STARTTLS connection', async () => {
    const r = await receiver();
    const events: Array<{ reused: boolean; tls: boolean }> = [];
    const p = pool({ onConnection: (info) => events.push(info) });
    const took: number[] = [];
    for (let i = 0; i < 20; i++) {
      const started = performance.now();
      const res = await p.send(targetOf(r.port), { from: FROM, to: [`u${i}@dest.test`] }, raw(i), sendOpts);
      took.push(performance.now() - started);
      expect(res).toMatchObject({ connected: true, tls: true, outcomes: [{ address: `u${i}@dest.test`, kind: 'delivered', code: 250 }] });
    }
    // A reused session costs a few ms on loopback; with Nagle left on, each message would stall ≥40 ms on delayed ACK.
    const median = took.slice(1).sort((a, b) => a - b)[9];
    expect(median).toBeLessThan(30);
    expect(r.connections).toBe(1);
    expect(r.messages).toHaveLength(20);
    expect(r.messages.every((m) => m.secure)).toBe(true);
    expect(events.filter((e) => !e.reused)).toHaveLength(1);
    expect(events.every((e) => e.tls)).toBe(true);
    expect(p.stats()).toEqual({ open: 1, idle: 1 });
  });

  it('opens one connection per concurrent send and reuses them for the next round', async () => {
    const r = await receiver();
    const p = pool();
    const round = (k: number) =>
      Promise.all(Array.from({ length: 10 }, (_, i) => p.send(targetOf(r.port), { from: FROM, to: [`r${k}-${i}@dest.test`] }, raw(i), sendOpts)));
    await round(1);
    const afterFirst = r.connections;
    const second = await round(2);
    expect(second.every((res) => res.outcomes[0].kind === 'delivered')).toBe(true);
    expect(afterFirst).toBeLessThanOrEqual(10);
    expect(r.connections).toBe(afterFirst);
    expect(r.messages).toHaveLength(20);
    expect(p.stats()).toEqual({ open: afterFirst, idle: afterFirst });
  });

  it('resets the session after rejections and delivers the next message on the same connection', async () => {
    const r = await receiver({ rules: { 'nobody@dest.test': { code: 550, message: '5.1.1 no such user' } } });
    const p = pool();
    const t = targetOf(r.port);
    const mixed = await p.send(t, { from: FROM, to: ['nobody@dest.test', 'ok@dest.test'] }, raw(1), sendOpts);
    expect(mixed.outcomes).toMatchObject([
      { address: 'nobody@dest.test', kind: 'perm', code: 550, reply: '550 5.1.1 no such user' },
      { address: 'ok@dest.test', kind: 'delivered' },
    ]);
    const allRejected = await p.send(t, { from: FROM, to: ['nobody@dest.test'] }, raw(2), sendOpts);
    expect(allRejected.outcomes).toMatchObject([{ kind: 'perm', code: 550 }]);
    const next = await p.send(t, { from: FROM, to: ['ok2@dest.test'] }, raw(3), sendOpts);
    expect(next.outcomes).toMatchObject([{ address: 'ok2@dest.test', kind: 'delivered' }]);
    expect(r.connections).toBe(1);
    expect(r.messages.map((m) => m.rcptTo)).toEqual([['ok@dest.test'], ['ok2@dest.test']]);
  });

  it('retries once on a new connection when the idle one was cut before MAIL FROM was answered', async () => {
    const r = await receiver();
    const relay = await startRelay(r.port);
    cleanups.push(() => relay.close());
    const reused: boolean[] = [];
    const p = pool({ onConnection: (info) => reused.push(info.reused) });
    await p.send(targetOf(relay.port), { from: FROM, to: ['a@dest.test'] }, raw(1), sendOpts);
    // Cut in the same tick as the send: the pool cannot have noticed, so the MAIL FROM goes to a dead socket.
    relay.cutAll();
    const res = await p.send(targetOf(relay.port), { from: FROM, to: ['b@dest.test'] }, raw(2), sendOpts);
    expect(res.outcomes).toMatchObject([{ address: 'b@dest.test', kind: 'delivered' }]);
    expect(reused).toEqual([false, true, false]);
    expect(r.connections).toBe(2);
    expect(r.messages).toHaveLength(2);
  });

  it('retries once when a reused connection answers MAIL FROM with 421', async () => {
    const r = await receiver({
      script: (ctx) => (ctx.stage === 'mail' && ctx.attempt === 2 ? { code: 421, message: '4.4.2 idle too long, closing' } : undefined),
    });
    const reused: boolean[] = [];
    const p = pool({ onConnection: (info) => reused.push(info.reused) });
    const results = [];
    for (let i = 1; i <= 3; i++) results.push(await p.send(targetOf(r.port), { from: FROM, to: [`u${i}@dest.test`] }, raw(i), sendOpts));
    expect(results.map((res) => res.outcomes[0].kind)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(reused).toEqual([false, true, false, true]);
    expect(r.connections).toBe(2);
    expect(r.messages).toHaveLength(3);
  });

  it('does not retry a new connection that fails (no false deliveries, same results as sendMessage)', async () => {
    const r = await receiver({ script: (ctx) => (ctx.stage === 'mail' ? { code: 421, message: '4.4.2 closing' } : undefined) });
    const p = pool();
    const res = await p.send(targetOf(r.port), { from: FROM, to: ['a@dest.test'] }, raw(1), sendOpts);
    const direct = await sendMessage(targetOf(r.port), { from: FROM, to: ['a@dest.test'] }, raw(1), sendOpts);
    expect(res).toEqual(direct);
    expect(res.outcomes).toMatchObject([{ kind: 'temp', code: 421 }]);
    expect(r.connections).toBe(2);
    expect(p.stats()).toEqual({ open: expect.any(Number), idle: 0 });
  });

  it('drops an idle connection the server closed, then delivers after the receiver restarts on the same port', async () => {
    const first = await startReceiver();
    const port = first.port;
    const p = pool();
    await p.send(targetOf(port), { from: FROM, to: ['a@dest.test'] }, raw(1), sendOpts);
    expect(p.stats().idle).toBe(1);
    await first.close(); // smtp-server sends 421 to open sessions after its close timeout, then closes them
    await until(() => p.stats().open === 0 && p.stats().idle === 0);
    const second = await receiver({ port });
    const res = await p.send(targetOf(port), { from: FROM, to: ['b@dest.test'] }, raw(2), sendOpts);
    expect(res.outcomes).toMatchObject([{ kind: 'delivered' }]);
    expect(second.messages).toHaveLength(1);
  });

  it('reports an unreachable target like sendMessage does', async () => {
    const relay = await startRelay(1); // nothing listens on port 1: the relay's upstream fails at once
    cleanups.push(() => relay.close());
    const p = pool();
    const res = await p.send(targetOf(relay.port), { from: FROM, to: ['a@dest.test'] }, raw(1), sendOpts);
    expect(res).toMatchObject({ connected: false, tls: false, outcomes: [{ address: 'a@dest.test', kind: 'temp', code: null }] });
    expect(p.stats()).toEqual({ open: 0, idle: 0 });
  });

  it('binds to the local address of each send and pools per address; an address not on the host is a temporary outcome', async () => {
    const r = await receiver({ tls: false });
    const p = pool();
    const from = (localAddress: string, ehloName: string) => ({ ...sendOpts, localAddress, ehloName });
    for (let i = 0; i < 4; i++) {
      const [address, helo] = i % 2 ? ['127.0.0.3', 'b.example'] : ['127.0.0.2', 'a.example'];
      const res = await p.send(targetOf(r.port), { from: FROM, to: [`u${i}@dest.test`] }, raw(i), from(address, helo));
      expect(res.connected).toBe(true);
      expect(Boolean(res.reused)).toBe(i >= 2);
    }
    expect(r.messages.map((m) => `${m.remoteAddress} ${m.clientHostname}`)).toEqual([
      '127.0.0.2 a.example',
      '127.0.0.3 b.example',
      '127.0.0.2 a.example',
      '127.0.0.3 b.example',
    ]);
    expect(r.connections).toBe(2);
    const unbound = await p.send(targetOf(r.port), { from: FROM, to: ['x@dest.test'] }, raw(9), from('192.0.2.55', 'c.example'));
    expect(unbound).toMatchObject({
      connected: false,
      outcomes: [{ address: 'x@dest.test', kind: 'temp', code: null, reply: 'bind EADDRNOTAVAIL 192.0.2.55' }],
    });
  });

  it('respects maxMessagesPerConnection', async () => {
    const r = await receiver();
    const p = pool({ maxMessagesPerConnection: 3 });
    for (let i = 0; i < 7; i++) await p.send(targetOf(r.port), { from: FROM, to: [`u${i}@dest.test`] }, raw(i), sendOpts);
    expect(r.messages).toHaveLength(7);
    expect(r.connections).toBe(3);
  });

  it('asks messagesPerConnection per send: a limit per destination, null for none, undefined for the default', async () => {
    const r = await receiver();
    const asked: Array<[string | undefined, string[]]> = [];
    const p = pool({
      maxMessagesPerConnection: 4,
      messagesPerConnection: (target, recipients) => {
        asked.push([target.servername, [...recipients]]);
        return target.servername === 'mx.three.test' ? 3 : target.servername === 'mx.unlimited.test' ? null : undefined;
      },
    });
    const sendTo = async (servername: string, n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await p.send({ ...targetOf(r.port), servername }, { from: FROM, to: [`u${i}@${servername}`] }, raw(i), sendOpts);
    };
    await sendTo('mx.three.test', 7); // ⌈7/3⌉ = 3 connections
    expect(r.connections).toBe(3);
    await sendTo('mx.default.test', 9); // the pool's own limit, 4: 3 connections
    expect(r.connections).toBe(6);
    await sendTo('mx.unlimited.test', 150); // past the pool's own 4 (and the usual 100): 1 connection
    expect(r.connections).toBe(7);
    expect(r.messages).toHaveLength(166);
    expect(asked[0]).toEqual(['mx.three.test', ['u0@mx.three.test']]);
  });

  it('keeps at most maxIdlePerTarget idle connections and closes idle ones after idleTimeoutMs', async () => {
    const r = await receiver();
    const relay = await startRelay(r.port);
    cleanups.push(() => relay.close());
    const p = pool({ maxIdlePerTarget: 2, idleTimeoutMs: 150 });
    await Promise.all([1, 2, 3, 4].map((i) => p.send(targetOf(relay.port), { from: FROM, to: [`u${i}@dest.test`] }, raw(i), sendOpts)));
    expect(p.stats().idle).toBe(2);
    await until(() => relay.open === 0 && p.stats().open === 0);
    expect(p.stats()).toEqual({ open: 0, idle: 0 });
  });

  it('close() quits idle connections and the receiver sees them end', async () => {
    const r = await startReceiver();
    const relay = await startRelay(r.port);
    const p = createSmtpPool();
    await Promise.all([1, 2, 3].map((i) => p.send(targetOf(relay.port), { from: FROM, to: [`u${i}@dest.test`] }, raw(i), sendOpts)));
    expect(p.stats()).toEqual({ open: 3, idle: 3 });
    expect(relay.open).toBe(3);
    await p.close();
    expect(p.stats()).toEqual({ open: 0, idle: 0 });
    await until(() => relay.open === 0);
    // smtp-server holds close() for 1 s while sessions are open; with none left it closes at once.
    const started = Date.now();
    await r.close();
    expect(Date.now() - started).toBeLessThan(500);
    await relay.close();
  });

  it('sendMessage still runs a single transaction per connection and closes it', async () => {
    const r = await receiver({ rules: { 'nobody@dest.test': { code: 550, message: '5.1.1 no such user' } } });
    const res = await sendMessage(targetOf(r.port), { from: FROM, to: ['nobody@dest.test', 'ok@dest.test'] }, raw(1), sendOpts);
    expect(res).toMatchObject({
      connected: true,
      tls: true,
      outcomes: [
        { kind: 'perm', code: 550 },
        { kind: 'delivered', code: 250 },
      ],
    });
    await sendMessage(targetOf(r.port), { from: FROM, to: ['ok@dest.test'] }, raw(2), sendOpts);
    expect(r.connections).toBe(2);
  });
});
