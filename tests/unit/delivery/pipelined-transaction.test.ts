import type SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { canPipeline } from '../../../src/delivery/pipelined-transaction.js';
import { endSession, openSession, resetSession, runTransaction } from '../../../src/delivery/smtp-client.js';
import { closeScripted, scripted, type Scripted } from '../../helpers/scripted-mx.js';

afterEach(closeScripted);

const opts = { ehloName: 'kurir.example.test', timeouts: { connectMs: 5000, greetingMs: 5000, socketMs: 10_000 } };
const FROM = 'b+1@bounce.example.test';
const raw = Buffer.from('From: a@example.test\r\nTo: x@dest.test\r\nSubject: t\r\n\r\nline one\r\n.a line that starts with a dot\r\n');

async function session(port: number): Promise<SMTPConnection> {
  return openSession({ host: '127.0.0.1', port }, opts);
}

/** The chunk (if any) that carried the whole envelope. */
const envelopeChunk = (s: Scripted): string | undefined => s.chunks.find((c) => c.includes('MAIL FROM:'));

describe('pipelined transactions (RFC 2920)', () => {
  it('sends MAIL, every RCPT and DATA in one write, then the dot-stuffed body, and keeps the session clean', async () => {
    const mx = await scripted();
    const conn = await session(mx.port);
    expect(canPipeline(conn, { from: FROM, to: ['x@dest.test'] })).toBe(true);
    const tx = await runTransaction(conn, { from: FROM, to: ['x@dest.test', 'y@dest.test'] }, raw);
    expect(tx).toEqual({
      outcomes: [
        { address: 'x@dest.test', kind: 'delivered', code: 250, reply: '250 2.0.0 queued as Q1' },
        { address: 'y@dest.test', kind: 'delivered', code: 250, reply: '250 2.0.0 queued as Q1' },
      ],
      next: 'reuse',
      beforeMail: false,
    });
    expect(envelopeChunk(mx)).toBe(`MAIL FROM:<${FROM}>\r\nRCPT TO:<x@dest.test>\r\nRCPT TO:<y@dest.test>\r\nDATA\r\n`);
    expect(mx.bodies[0]).toContain('\r\n..a line that starts with a dot\r\n');
    // The same session carries a second message, pipelined too.
    const again = await runTransaction(conn, { from: FROM, to: ['z@dest.test'] }, raw);
    expect(again.outcomes[0].kind).toBe('delivered');
    expect(mx.chunks.filter((c) => c.startsWith('MAIL FROM:')).length).toBe(2);
    endSession(conn, true);
  });

  it('sends one command per reply when the server does not offer PIPELINING, or when pipelining is off', async () => {
    for (const [script, pipelining] of [
      [{ pipelining: false }, undefined],
      [{}, false],
    ] as const) {
      const mx = await scripted(script);
      const conn = await session(mx.port);
      const tx = await runTransaction(conn, { from: FROM, to: ['x@dest.test'] }, raw, { pipelining });
      expect(tx.outcomes[0].kind).toBe('delivered');
      expect(envelopeChunk(mx)).toBe(`MAIL FROM:<${FROM}>\r\n`);
      expect(mx.commands.slice(-3)).toEqual([`MAIL FROM:<${FROM}>`, 'RCPT TO:<x@dest.test>', 'DATA']);
      endSession(conn, true);
    }
  });

  it('reports a refused recipient with its own reply and delivers to the others', async () => {
    const mx = await scripted({ rcpt: (a) => (a === 'gone@dest.test' ? '550 5.1.1 no such user' : '250 2.1.5 ok') });
    const conn = await session(mx.port);
    const tx = await runTransaction(conn, { from: FROM, to: ['x@dest.test', 'gone@dest.test'] }, raw);
    expect(tx.outcomes).toEqual([
      { address: 'x@dest.test', kind: 'delivered', code: 250, reply: '250 2.0.0 queued as Q1' },
      { address: 'gone@dest.test', kind: 'perm', code: 550, reply: '550 5.1.1 no such user' },
    ]);
    expect(tx.next).toBe('reset');
    expect(mx.bodies).toHaveLength(1);
    endSession(conn, true);
  });

  it('gives every recipient the MAIL FROM refusal (marked as such), consumes the 503s of the pipelined commands and stays usable', async () => {
    let inTransaction = false;
    const mx = await scripted({
      mail: (n) => (n === 1 ? '550 5.7.1 sender refused' : '250 2.1.0 ok'),
      rcpt: () => (inTransaction ? '250 2.1.5 ok' : '503 5.5.1 need MAIL first'),
      data: () => (inTransaction ? '354 go ahead' : '503 5.5.1 need RCPT first'),
    });
    const conn = await session(mx.port);
    const tx = await runTransaction(conn, { from: FROM, to: ['x@dest.test', 'y@dest.test'] }, raw);
    expect(tx).toEqual({
      outcomes: [
        { address: 'x@dest.test', kind: 'perm', code: 550, reply: '550 5.7.1 sender refused', refusedAt: 'mail' },
        { address: 'y@dest.test', kind: 'perm', code: 550, reply: '550 5.7.1 sender refused', refusedAt: 'mail' },
      ],
      next: 'reset',
      beforeMail: false,
    });
    expect(mx.bodies).toHaveLength(0);
    inTransaction = true;
    await resetSession(conn);
    const next = await runTransaction(conn, { from: FROM, to: ['x@dest.test'] }, raw);
    expect(next.outcomes[0]).toMatchObject({ kind: 'delivered', code: 250 });
    expect(mx.bodies).toHaveLength(1);
    endSession(conn, true);
  });

  it('marks a MAIL FROM refusal without pipelining too, and a recipient refused at RCPT not', async () => {
    const mx = await scripted({ pipelining: false, mail: (n) => (n === 1 ? '553 5.7.1 sender not owned by user' : '250 2.1.0 ok') });
    const conn = await session(mx.port);
    const tx = await runTransaction(conn, { from: FROM, to: ['x@dest.test'] }, raw);
    expect(tx.outcomes).toEqual([{ address: 'x@dest.test', kind: 'perm', code: 553, reply: '553 5.7.1 sender not owned by user', refusedAt: 'mail' }]);
    await resetSession(conn);
    const mx2 = await scripted({ pipelining: false, rcpt: () => '550 5.1.1 no such user' });
    const conn2 = await session(mx2.port);
    const refused = await runTransaction(conn2, { from: FROM, to: ['x@dest.test'] }, raw);
    expect(refused.outcomes).toEqual([{ address: 'x@dest.test', kind: 'perm', code: 550, reply: '550 5.1.1 no such user' }]);
    endSession(conn, true);
    endSession(conn2, true);
  });

  it('when every recipient is refused and DATA is refused too, reports each refusal and sends no body', async () => {
    const mx = await scripted({
      rcpt: (a) => (a === 'full@dest.test' ? '452 4.2.2 mailbox full' : '550 5.1.1 no such user'),
      data: () => '554 5.5.1 no valid recipients',
    });
    const conn = await session(mx.port);
    const tx = await runTransaction(conn, { from: FROM, to: ['gone@dest.test', 'full@dest.test'] }, raw);
    expect(tx.outcomes).toEqual([
      { address: 'gone@dest.test', kind: 'perm', code: 550, reply: '550 5.1.1 no such user' },
      { address: 'full@dest.test', kind: 'temp', code: 452, reply: '452 4.2.2 mailbox full' },
    ]);
    expect(tx.next).toBe('reset');
    expect(mx.bodies).toHaveLength(0);
    endSession(conn, true);
  });

  it('when every recipient is refused but DATA is answered 354, ends the empty message with a lone dot', async () => {
    const mx = await scripted({ rcpt: () => '550 5.1.1 no such user', final: () => '554 5.5.1 no recipients' });
    const conn = await session(mx.port);
    const tx = await runTransaction(conn, { from: FROM, to: ['gone@dest.test'] }, raw);
    expect(tx.outcomes).toEqual([{ address: 'gone@dest.test', kind: 'perm', code: 550, reply: '550 5.1.1 no such user' }]);
    expect(tx.next).toBe('reset');
    expect(mx.bodies).toEqual(['']);
    expect(mx.chunks.join('')).not.toContain('line one');
    endSession(conn, true);
  });

  it('a refused body makes the accepted recipients fail with its reply; a refused DATA likewise', async () => {
    const mx = await scripted({ final: () => '451 4.3.0 try later' });
    const conn = await session(mx.port);
    const tx = await runTransaction(conn, { from: FROM, to: ['x@dest.test'] }, raw);
    expect(tx.outcomes).toEqual([{ address: 'x@dest.test', kind: 'temp', code: 451, reply: '451 4.3.0 try later' }]);
    expect(tx.next).toBe('reset');
    endSession(conn, true);

    const mx2 = await scripted({ data: () => '554 5.7.0 not today', rcpt: (a) => (a === 'gone@dest.test' ? '550 5.1.1 no such user' : '250 ok') });
    const conn2 = await session(mx2.port);
    const tx2 = await runTransaction(conn2, { from: FROM, to: ['x@dest.test', 'gone@dest.test'] }, raw);
    expect(tx2.outcomes).toEqual([
      { address: 'x@dest.test', kind: 'perm', code: 554, reply: '554 5.7.0 not today' },
      { address: 'gone@dest.test', kind: 'perm', code: 550, reply: '550 5.1.1 no such user' },
    ]);
    endSession(conn2, true);
  });

  it('a 421 to MAIL FROM followed by the server closing means nothing was committed', async () => {
    const mx = await scripted({ mail: () => '421 4.3.2 shutting down', rcpt: () => 'close' });
    const conn = await session(mx.port);
    const tx = await runTransaction(conn, { from: FROM, to: ['x@dest.test', 'y@dest.test'] }, raw);
    expect(tx.next).toBe('discard');
    expect(tx.beforeMail).toBe(true);
    expect(tx.outcomes).toEqual([
      { address: 'x@dest.test', kind: 'temp', code: 421, reply: '421 4.3.2 shutting down' },
      { address: 'y@dest.test', kind: 'temp', code: 421, reply: '421 4.3.2 shutting down' },
    ]);
  });

  it('a connection lost after MAIL FROM was accepted, or during the body, leaves every recipient temporary', async () => {
    const mx = await scripted({ data: () => 'close', rcpt: (a) => (a === 'gone@dest.test' ? '550 5.1.1 no such user' : '250 ok') });
    const conn = await session(mx.port);
    const tx = await runTransaction(conn, { from: FROM, to: ['x@dest.test', 'gone@dest.test'] }, raw);
    expect(tx.next).toBe('discard');
    expect(tx.beforeMail).toBe(false);
    expect(tx.outcomes[0]).toMatchObject({ address: 'x@dest.test', kind: 'temp', code: null });
    expect(tx.outcomes[1]).toEqual({ address: 'gone@dest.test', kind: 'perm', code: 550, reply: '550 5.1.1 no such user' });

    const mx2 = await scripted({ final: () => 'close' });
    const conn2 = await session(mx2.port);
    const tx2 = await runTransaction(conn2, { from: FROM, to: ['x@dest.test'] }, raw);
    expect(tx2).toMatchObject({ next: 'discard', beforeMail: false, outcomes: [{ address: 'x@dest.test', kind: 'temp', code: null }] });
  });

  it('a session the server dropped while idle fails before MAIL FROM was answered', async () => {
    const mx = await scripted();
    const conn = await session(mx.port);
    await mx.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const tx = await runTransaction(conn, { from: FROM, to: ['x@dest.test'] }, raw);
    expect(tx).toMatchObject({ next: 'discard', beforeMail: true, outcomes: [{ kind: 'temp' }] });
  });

  it('leaves internationalised addresses and an LMTP session to nodemailer', async () => {
    const mx = await scripted();
    const conn = await session(mx.port);
    expect(canPipeline(conn, { from: FROM, to: ['jože@primer.si'] })).toBe(false);
    expect(canPipeline(conn, { from: 'pošta@primer.si', to: ['x@dest.test'] })).toBe(false);
    expect(canPipeline(conn, { from: '', to: ['x@dest.test'] })).toBe(true);
    expect(canPipeline(conn, { from: FROM, to: [] })).toBe(false);
    (conn as unknown as { options: { lmtp?: boolean } }).options.lmtp = true;
    expect(canPipeline(conn, { from: FROM, to: ['x@dest.test'] })).toBe(false);
    endSession(conn, false);
  });
});
