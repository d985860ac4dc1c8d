/**
 * Delivery to a real MTA: Kurir's connection pool (src/delivery/connection-pool.ts) sending to Postfix as the
 * recipients' MX (tests/helpers/postfix-mx.ts), over STARTTLS with pipelined transactions (Postfix offers
 * PIPELINING; src/delivery/pipelined-transaction.ts). Each refusal Postfix can give inside a transaction — an
 * unknown recipient at RCPT, a sender at MAIL FROM, the content after the body — is reported per recipient,
 * and the same connection carries the next message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSmtpPool, type SmtpPool } from '../../src/delivery/connection-pool.js';
import { canPipeline } from '../../src/delivery/pipelined-transaction.js';
import { endSession, openSession } from '../../src/delivery/smtp-client.js';
import { postfixMxMissing, startPostfixMx, type PostfixMx } from '../helpers/postfix-mx.js';

const missing = postfixMxMissing();
const DOMAIN = 'dest.test';
const sendOpts = { ehloName: 'kurir.example.test', timeouts: { connectMs: 5000, greetingMs: 10_000, socketMs: 20_000 } };
const FROM = 'b+pfx1.abc@bounce.example.test';

function message(subject: string, to: string): Buffer {
  return Buffer.from(
    `From: Kurir <noreply@example.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n\r\n` +
      `Your code is 123456.\r\n.a line that starts with a dot\r\n`,
  );
}

describe.skipIf(missing !== null)(missing === null ? 'delivery to Postfix as the MX' : `delivery to Postfix as the MX (SKIPPED: ${missing})`, () => {
  let mx: PostfixMx;
  let pool: SmtpPool;
  const reused: boolean[] = [];
  const target = () => ({ host: '127.0.0.1', port: mx.port, servername: `mx.${DOMAIN}` });

  beforeAll(async () => {
    mx = await startPostfixMx({ domain: DOMAIN, users: ['ana', 'bor', 'cene'], refuseSenders: ['refused@bounce.example.test'], refuseSubject: 'FORBIDDEN' });
    pool = createSmtpPool({ maxIdlePerTarget: 4, onConnection: (c) => reused.push(c.reused) });
  }, 60_000);
  afterAll(async () => {
    await pool?.close();
    await mx?.stop();
  });

  /** Waits until Postfix has put `n` messages into the user's Maildir (delivery is asynchronous after the 250). */
  async function mailboxOf(user: string, n: number): Promise<string[]> {
    for (let i = 0; i < 100; i++) {
      const m = mx.mailbox(user);
      if (m.length >= n) return m;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${user}: ${mx.mailbox(user).length} of ${n} messages\n${mx.logTail()}`);
  }

  it('offers PIPELINING and STARTTLS, and the session pipelines', async () => {
    const conn = await openSession(target(), sendOpts);
    expect(conn.secure).toBe(true);
    expect(canPipeline(conn, { from: FROM, to: [`ana@${DOMAIN}`] })).toBe(true);
    endSession(conn, true);
  });

  it('delivers to the known recipients, refuses the unknown one at RCPT with its own reply, and keeps the body intact', async () => {
    const to = [`ana@${DOMAIN}`, `nobody@${DOMAIN}`, `bor@${DOMAIN}`];
    const r = await pool.send(target(), { from: FROM, to }, message('first', to[0]), sendOpts);
    expect(r.connected).toBe(true);
    expect(r.tls).toBe(true);
    expect(r.outcomes.map((o) => [o.address, o.kind, o.code])).toEqual([
      [`ana@${DOMAIN}`, 'delivered', 250],
      [`nobody@${DOMAIN}`, 'perm', 550],
      [`bor@${DOMAIN}`, 'delivered', 250],
    ]);
    expect(r.outcomes[1].reply).toMatch(/^550 5\.1\.1 .*User unknown/);
    const [stored] = await mailboxOf('ana', 1);
    expect(stored).toContain('Subject: first');
    expect(stored).toContain('\n.a line that starts with a dot');
    expect(await mailboxOf('bor', 1)).toHaveLength(1);
  });

  it('a sender refused at MAIL FROM refuses every recipient with that reply; the same connection then delivers', async () => {
    const before = reused.length;
    const to = [`ana@${DOMAIN}`, `cene@${DOMAIN}`];
    const refused = await pool.send(target(), { from: 'refused@bounce.example.test', to }, message('refused sender', to[0]), sendOpts);
    expect(refused.outcomes.map((o) => o.kind)).toEqual(['perm', 'perm']);
    expect(refused.outcomes[0].reply).toMatch(/^554 5\.7\.1 .*sender refused by policy/);
    expect(refused.outcomes[1].reply).toBe(refused.outcomes[0].reply);
    const next = await pool.send(target(), { from: FROM, to: [`cene@${DOMAIN}`] }, message('after the refusal', `cene@${DOMAIN}`), sendOpts);
    expect(next.outcomes[0]).toMatchObject({ kind: 'delivered', code: 250 });
    expect(reused.slice(before)).toEqual([true, true]);
    const box = await mailboxOf('cene', 1);
    expect(box.some((m) => m.includes('Subject: after the refusal'))).toBe(true);
    expect(box.some((m) => m.includes('refused sender'))).toBe(false);
  });

  it('content refused after the body fails the accepted recipients with that reply; the connection carries on', async () => {
    const before = reused.length;
    const to = [`bor@${DOMAIN}`, `ghost@${DOMAIN}`];
    const r = await pool.send(target(), { from: FROM, to }, message('FORBIDDEN words', to[0]), sendOpts);
    expect(r.outcomes[0]).toMatchObject({ address: `bor@${DOMAIN}`, kind: 'perm', code: 550 });
    expect(r.outcomes[0].reply).toMatch(/content refused by policy/);
    expect(r.outcomes[1]).toMatchObject({ address: `ghost@${DOMAIN}`, kind: 'perm', code: 550 });
    expect(r.outcomes[1].reply).toMatch(/User unknown/);
    const next = await pool.send(target(), { from: FROM, to: [`bor@${DOMAIN}`] }, message('fine again', `bor@${DOMAIN}`), sendOpts);
    expect(next.outcomes[0].kind).toBe('delivered');
    expect(reused.slice(before)).toEqual([true, true]);
  });

  it('delivers 60 messages over four pooled connections, each once', async () => {
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const user = ['ana', 'bor', 'cene'][i % 3];
        return pool.send(target(), { from: FROM, to: [`${user}@${DOMAIN}`] }, message(`bulk ${i}`, `${user}@${DOMAIN}`), sendOpts);
      }),
    );
    expect(results.every((r) => r.outcomes[0].kind === 'delivered')).toBe(true);
    const all = [...(await mailboxOf('ana', 21)), ...(await mailboxOf('bor', 22)), ...(await mailboxOf('cene', 21))];
    const bulk = all.map((m) => /Subject: (bulk \d+)/.exec(m)?.[1]).filter((s): s is string => s !== undefined);
    expect(new Set(bulk).size).toBe(60);
    expect(bulk).toHaveLength(60);
  });
});
