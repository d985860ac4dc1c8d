/**
 * What a receiver's reply means for a recipient, on both transaction paths (pipelined, and one command per
 * reply): replies RFC 5321 says not to take at face value must not bounce a recipient (a bounce is final, and
 * may suppress the address for good).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSmtpPool } from '../../../src/delivery/connection-pool.js';
import { endSession, openSession, runTransaction } from '../../../src/delivery/smtp-client.js';
import { closeScripted, scripted, type Script } from '../../helpers/scripted-mx.js';

afterEach(closeScripted);

const opts = { ehloName: 'kurir.example.test', timeouts: { connectMs: 5000, greetingMs: 5000, socketMs: 10_000 } };
const FROM = 'b+1@bounce.example.test';
const raw = Buffer.from('From: a@example.test\r\nTo: x@dest.test\r\nSubject: t\r\n\r\nhello\r\n');

/** One transaction to `to` against a receiver scripted by `script`, pipelined or not. */
async function transaction(script: Script, to: string[], pipelining: boolean) {
  const mx = await scripted({ ...script, pipelining });
  const conn = await openSession({ host: '127.0.0.1', port: mx.port }, opts);
  try {
    return { tx: await runTransaction(conn, { from: FROM, to }, raw, { pipelining }), mx };
  } finally {
    endSession(conn, false);
  }
}

describe.each([true, false])('reply classes (pipelining %s)', (pipelining) => {
  it('a 552 at RCPT TO is temporary (RFC 5321 4.5.3.1.10): the recipient is deferred, the others delivered', async () => {
    const rcpt = (a: string): string =>
      a === 'many@dest.test' ? '552 5.5.3 Too many recipients' : a === 'full@dest.test' ? '552 5.2.2 Mailbox full' : '250 2.1.5 ok';
    const { tx, mx } = await transaction({ rcpt }, ['x@dest.test', 'many@dest.test', 'full@dest.test'], pipelining);
    expect(tx.outcomes).toEqual([
      { address: 'x@dest.test', kind: 'delivered', code: 250, reply: '250 2.0.0 queued as Q1' },
      { address: 'many@dest.test', kind: 'temp', code: 552, reply: '552 5.5.3 Too many recipients' },
      { address: 'full@dest.test', kind: 'temp', code: 552, reply: '552 5.2.2 Mailbox full' },
    ]);
    expect(mx.bodies).toHaveLength(1);
  });

  it('a 552 to the message itself stays permanent (message too big)', async () => {
    const { tx } = await transaction({ final: () => '552 5.3.4 Message size exceeds fixed limit' }, ['x@dest.test'], pipelining);
    expect(tx.outcomes).toEqual([{ address: 'x@dest.test', kind: 'perm', code: 552, reply: '552 5.3.4 Message size exceeds fixed limit' }]);
  });

  it('a multiline reply whose lines disagree is temporary when any line is 4xx; one that agrees keeps its code', async () => {
    const rcpt = (a: string): string =>
      a === 'mixed@dest.test' ? '550-5.1.1 checking\r\n450 4.2.1 try again later' : a === 'gone@dest.test' ? '550-5.1.1 no such\r\n550 5.1.1 user' : '250 ok';
    const { tx } = await transaction({ rcpt }, ['x@dest.test', 'mixed@dest.test', 'gone@dest.test'], pipelining);
    expect(tx.outcomes.map(({ kind, code }) => ({ kind, code }))).toEqual([
      { kind: 'delivered', code: 250 },
      { kind: 'temp', code: 450 },
      { kind: 'perm', code: 550 },
    ]);
    const { tx: final } = await transaction({ final: () => '554-5.7.1 scanning failed\r\n451 4.3.0 try again later' }, ['x@dest.test'], pipelining);
    expect(final.outcomes).toEqual([{ address: 'x@dest.test', kind: 'temp', code: 451, reply: '554-5.7.1 scanning failed\n451 4.3.0 try again later' }]);
  });

  it('a 5xx whose enhanced code has class 4 is temporary (RFC 3463: 550 4.2.2, 554 4.7.1); a 4xx stays temporary with a class-5 code', async () => {
    const rcpt = (a: string): string =>
      a === 'full@dest.test'
        ? '550 4.2.2 Mailbox full'
        : a === 'moved@dest.test'
          ? '450 5.1.1 <moved@dest.test>: Recipient address rejected: User unknown'
          : a === 'gone@dest.test'
            ? '550 5.1.1 no such user'
            : '250 2.1.5 ok';
    const to = ['x@dest.test', 'full@dest.test', 'moved@dest.test', 'gone@dest.test'];
    const { tx } = await transaction({ rcpt, final: () => '554 4.7.1 try again later' }, to, pipelining);
    expect(tx.outcomes).toEqual([
      { address: 'x@dest.test', kind: 'temp', code: 554, reply: '554 4.7.1 try again later' },
      { address: 'full@dest.test', kind: 'temp', code: 550, reply: '550 4.2.2 Mailbox full' },
      { address: 'moved@dest.test', kind: 'temp', code: 450, reply: '450 5.1.1 <moved@dest.test>: Recipient address rejected: User unknown' },
      { address: 'gone@dest.test', kind: 'perm', code: 550, reply: '550 5.1.1 no such user' },
    ]);
    // A refusal of the sender alike: every recipient is deferred, none bounced.
    const { tx: mail } = await transaction({ mail: () => '550 4.7.0 Sender temporarily blocked' }, ['x@dest.test'], pipelining);
    expect(mail.outcomes).toMatchObject([{ address: 'x@dest.test', kind: 'temp', code: 550 }]);
  });

  it('no reply to the final dot (RFC 1047): temporary, the connection dropped and the message not resent at once', async () => {
    // The receiver has the whole body and never answers it: it may have taken the message or not. Kurir defers the
    // recipient and sends it again at its retry time (docs/delivery.md: a possible duplicate, never a loss).
    const mx = await scripted({ pipelining, final: () => 'stall' });
    const pool = createSmtpPool();
    try {
      const target = { host: '127.0.0.1', port: mx.port };
      const result = await pool.send(target, { from: FROM, to: ['x@dest.test'] }, raw, { ...opts, timeouts: { ...opts.timeouts, socketMs: 300 }, pipelining });
      expect(result.outcomes).toEqual([{ address: 'x@dest.test', kind: 'temp', code: null, reply: expect.stringMatching(/timeout/i) }]);
      expect(mx.bodies).toHaveLength(1);
      expect(mx.commands.filter((c) => c.startsWith('MAIL'))).toHaveLength(1);
      expect(pool.stats()).toEqual({ open: 0, idle: 0 });
    } finally {
      await pool.close();
    }
  });

  it('a refusal of the body, or a connection lost during it, leaves the recipients refused at RCPT with their own replies', async () => {
    const rcpt = (a: string): string => (a === 'later@dest.test' ? '450 4.2.1 try later' : a === 'gone@dest.test' ? '550 5.1.1 no such user' : '250 ok');
    const to = ['x@dest.test', 'later@dest.test', 'gone@dest.test'];
    const refusedAtRcpt = [
      { address: 'later@dest.test', kind: 'temp', code: 450, reply: '450 4.2.1 try later' },
      { address: 'gone@dest.test', kind: 'perm', code: 550, reply: '550 5.1.1 no such user' },
    ];
    const { tx } = await transaction({ rcpt, final: () => '554 5.7.1 content rejected' }, to, pipelining);
    expect(tx.outcomes).toEqual([{ address: 'x@dest.test', kind: 'perm', code: 554, reply: '554 5.7.1 content rejected' }, ...refusedAtRcpt]);
    const { tx: later } = await transaction({ rcpt, final: () => '451 4.3.0 try later' }, to, pipelining);
    expect(later.outcomes).toEqual([{ address: 'x@dest.test', kind: 'temp', code: 451, reply: '451 4.3.0 try later' }, ...refusedAtRcpt]);
    const { tx: lost } = await transaction({ rcpt, final: () => 'close' }, to, pipelining);
    expect(lost.outcomes).toEqual([{ address: 'x@dest.test', kind: 'temp', code: null, reply: expect.any(String) }, ...refusedAtRcpt]);
  });
});
