/**
 * Opportunistic STARTTLS against a receiver whose TLS is broken (it offers STARTTLS, answers 220, then breaks the
 * handshake): without a requirement for TLS the message goes in clear on a new connection, as to a receiver that
 * never offered STARTTLS, instead of being deferred on every attempt until it expires. Where TLS is required
 * (MTA-STS enforce, a smarthost with credentials) or certificates are verified, nothing is sent in clear.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSmtpPool } from '../../../src/delivery/connection-pool.js';
import { sendMessage } from '../../../src/delivery/smtp-client.js';
import { closeScripted, scripted } from '../../helpers/scripted-mx.js';

afterEach(closeScripted);

const opts = { ehloName: 'kurir.example.test', timeouts: { connectMs: 5000, greetingMs: 5000, socketMs: 10_000 } };
const envelope = { from: 'b+1@bounce.example.test', to: ['x@dest.test'] };
const raw = Buffer.from('From: a@example.test\r\nTo: x@dest.test\r\nSubject: t\r\n\r\nhello\r\n');

describe('a receiver whose STARTTLS handshake fails', () => {
  it('gets the message in clear on a second connection when TLS is opportunistic, counted as a TLS failure', async () => {
    const mx = await scripted({ brokenStartTls: true });
    const target = { host: '127.0.0.1', port: mx.port, servername: 'mx.dest.test' };
    const result = await sendMessage(target, envelope, raw, opts);
    expect(result).toMatchObject({ connected: true, tls: false, tlsFailure: 'validation-failure', outcomes: [{ kind: 'delivered', code: 250 }] });
    expect(mx.bodies).toHaveLength(1);
    expect(mx.commands.filter((c) => c === 'STARTTLS')).toHaveLength(1);

    const pool = createSmtpPool();
    try {
      const pooled = await pool.send(target, envelope, raw, opts);
      expect(pooled).toMatchObject({ connected: true, tls: false, tlsFailure: 'validation-failure', outcomes: [{ kind: 'delivered' }] });
      expect(mx.bodies).toHaveLength(2);
    } finally {
      await pool.close();
    }
  });

  it('is deferred, and nothing is sent in clear, when TLS is required or certificates are verified', async () => {
    const mx = await scripted({ brokenStartTls: true });
    for (const extra of [{ requireTls: true, verifyTls: true, tlsRequiredBy: 'MTA-STS policy of dest.test, enforce' }, { verifyTls: true }]) {
      const result = await sendMessage({ host: '127.0.0.1', port: mx.port, servername: 'mx.dest.test', ...extra }, envelope, raw, opts);
      expect(result).toMatchObject({ connected: false, tlsFailure: 'validation-failure', outcomes: [{ kind: 'temp', code: null }] });
    }
    expect(mx.commands.filter((c) => c.startsWith('MAIL'))).toEqual([]);
    expect(mx.bodies).toEqual([]);
  });
});
