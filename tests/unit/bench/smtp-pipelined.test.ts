import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pacedPool } from '../../../bench/loops.js';
import { PipelinedSession, rawMessage, smtpPipelinedLoop, smtpPipelinedPaced } from '../../../bench/smtp-pipelined.js';
import { selfSignedCert } from '../../helpers/tls.js';

interface Received {
  user: string | undefined;
  secure: boolean;
  from: string;
  to: string[];
  raw: Buffer;
  /** performance.now() at MAIL FROM: when the client sent the message. */
  mailAt: number;
}

describe('bench SMTP load client with PIPELINING (real smtp-server, STARTTLS + AUTH)', () => {
  const received: Received[] = [];
  let server: SMTPServer;
  let port = 0;
  /** How long the server waits before its reply to the final dot (a slow gateway). */
  let replyDelayMs = 0;
  const mailAt = new Map<string, number>();

  beforeAll(async () => {
    const cert = await selfSignedCert('localhost');
    server = new SMTPServer({
      key: cert.key,
      cert: cert.cert,
      logger: false,
      closeTimeout: 1000,
      authMethods: ['PLAIN'],
      onAuth(auth, _session, cb) {
        if (auth.username === 'bench' && auth.password === 'secret') cb(null, { user: auth.username });
        else cb(Object.assign(new Error('5.7.8 bad credentials'), { responseCode: 535 }));
      },
      onMailFrom(_address, session, cb) {
        mailAt.set(session.id, performance.now());
        cb();
      },
      onRcptTo(address, _session, cb) {
        if (address.address.startsWith('refuse')) cb(Object.assign(new Error('5.1.1 no such user'), { responseCode: 550 }));
        else cb();
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          received.push({
            user: session.user as string | undefined,
            secure: session.secure,
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
            mailAt: mailAt.get(session.id) ?? Number.NaN,
          });
          const reply = (): void => cb(null, `2.0.0 Ok: queued as m${received.length}`);
          if (replyDelayMs > 0) setTimeout(reply, replyDelayMs);
          else reply();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('sends over TLS after AUTH, pipelining MAIL, RCPT and DATA, and the message arrives byte for byte', async () => {
    received.length = 0;
    const session = await PipelinedSession.open(port, { user: 'bench', pass: 'secret' });
    expect(session.pipelining).toBe(true);
    const raw = Buffer.from('Subject: dots\r\n\r\n.leading dot\r\nplain\r\n'.replace(/^\./gm, '..'));
    await session.send('a@example.test', 'b@dest.test', raw);
    const msg = rawMessage(7, 'c@dest.test');
    await session.send('a@example.test', 'c@dest.test', msg);
    session.close();
    expect(received.map((r) => [r.user, r.secure, r.from, r.to])).toEqual([
      ['bench', true, 'a@example.test', ['b@dest.test']],
      ['bench', true, 'a@example.test', ['c@dest.test']],
    ]);
    // smtp-server undoes the dot-stuffing: the body is what was meant.
    expect(received[0].raw.toString()).toBe('Subject: dots\r\n\r\n.leading dot\r\nplain\r\n');
    // QUIT ends the session on both sides: nothing is left open on the server.
    const openAfterQuit = (server as unknown as { connections: Set<unknown> }).connections;
    for (let i = 0; i < 50 && openAfterQuit.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(openAfterQuit.size).toBe(0);
    expect(received[1].raw.equals(msg)).toBe(true);
    expect(msg.length).toBeGreaterThan(4096);
    expect(msg.toString()).toMatch(/^From: Bench <noreply@example\.test>\r\nTo: c@dest\.test\r\nSubject: Benchmark 7\r\n/);
  });

  it('reports a refused recipient with the reply and stays in step for the next message', async () => {
    received.length = 0;
    const session = await PipelinedSession.open(port, { user: 'bench', pass: 'secret' });
    await expect(session.send('a@example.test', 'refuse@dest.test', rawMessage(1, 'refuse@dest.test'))).rejects.toThrow(
      /RCPT TO:<refuse@dest\.test>: 550 5\.1\.1 no such user/,
    );
    await session.send('a@example.test', 'ok@dest.test', rawMessage(2, 'ok@dest.test'));
    session.close();
    expect(received.map((r) => r.to)).toEqual([['ok@dest.test']]);
  });

  it('fails to open a session with wrong credentials, naming the step', async () => {
    await expect(PipelinedSession.open(port, { user: 'bench', pass: 'wrong' })).rejects.toThrow(/^AUTH: 535/);
    // and leaves no connection open at the server
    const open = (server as unknown as { connections: Set<unknown> }).connections;
    for (let i = 0; i < 50 && open.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(open.size).toBe(0);
  });

  it('runs a closed loop over several sessions: every message once, one untimed per session first', async () => {
    received.length = 0;
    const originalAuth = { user: 'bench', pass: 'secret' };
    const r = await smtpPipelinedLoop(port, 30, 3, 100, Date.now() + 20_000, undefined, originalAuth);
    expect(r.count).toBe(30);
    expect(r.errors).toBe(0);
    const to = received.flatMap((m) => m.to).sort();
    expect(to.filter((a) => a.startsWith('warm'))).toEqual(['warm0@dest.test', 'warm1@dest.test', 'warm2@dest.test']);
    expect(to.filter((a) => a.startsWith('user'))).toEqual(Array.from({ length: 30 }, (_, i) => `user${100 + i}@dest.test`).sort());
    // Each message's final dot → 250 is part of its MAIL FROM → 250, so its percentiles are no larger.
    expect(r.dataEndP50).toBeGreaterThan(0);
    expect(r.dataEndP50).toBeLessThanOrEqual(r.p50);
    expect(r.dataEndP99).toBeLessThanOrEqual(r.p99);
  });

  const paced = (rate: number, total: number, sessions: number, firstNumber: number) =>
    smtpPipelinedPaced({ port, rate, total, sessions, firstNumber, deadline: Date.now() + 20_000, auth: { user: 'bench', pass: 'secret' } });

  it('paces an open loop: every message once, sent no sooner than it is due', async () => {
    received.length = 0;
    const r = await paced(200, 40, 4, 500);
    expect(r.count).toBe(40);
    expect(r.errors).toBe(0);
    const timed = received.filter((m) => m.to[0].startsWith('user'));
    expect(timed.map((m) => m.to[0]).sort()).toEqual(Array.from({ length: 40 }, (_, i) => `user${500 + i}@dest.test`).sort());
    const sentAt = (n: number): number => timed.find((m) => m.to[0] === `user${500 + n}@dest.test`)?.mailAt ?? Number.NaN;
    // No message reached the server before it was due (same process, same clock; the server's own delays can only
    // make an arrival later, so this holds on a busy machine too). Message 39 is due 195 ms after message 0.
    for (let n = 0; n < 40; n++) expect(sentAt(n)).toBeGreaterThanOrEqual(r.dueAt(n));
    expect(sentAt(39) - r.dueAt(0)).toBeGreaterThanOrEqual(195);
    // Each message's id from the server's final reply, and its due time 5 ms after the one before.
    expect(new Set(r.ids).size).toBe(40);
    for (const id of r.ids) expect(id).toMatch(/^m\d+$/);
    expect(r.dueAt(39) - r.dueAt(0)).toBeCloseTo(195, 6);
  });

  it('refuses a paced run without a session or a rate instead of waiting forever', async () => {
    await expect(pacedPool(0, 100, 5, Date.now() + 1000, async () => undefined)).rejects.toThrow(/at least one session and a positive rate \(got 0, 100\)/);
    await expect(pacedPool(2, 0, 5, Date.now() + 1000, async () => undefined)).rejects.toThrow(/got 2, 0/);
  });

  it('counts the wait for a free session in the latency, from when each message was due', async () => {
    received.length = 0;
    replyDelayMs = 40;
    try {
      // One session, a message due every 10 ms, each answered after 40 ms: the fifth is due at 40 ms but can only
      // go once the four before it are answered (160 ms or more), so it waited 120 ms or more past its due time.
      const r = await paced(100, 5, 1, 600);
      expect(r.count).toBe(5);
      expect(r.maxLagMs).toBeGreaterThanOrEqual(115);
      expect(r.max).toBeGreaterThanOrEqual(155);
      // The server's accept alone (final dot → 250) is the 40 ms reply delay, without the wait for the session.
      expect(r.dataEndP50).toBeGreaterThanOrEqual(39);
      expect(r.dataEndP99).toBeLessThan(r.max - 60);
    } finally {
      replyDelayMs = 0;
    }
  });
});
