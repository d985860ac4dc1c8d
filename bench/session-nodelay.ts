/**
 * What TCP_NODELAY on the delivery client's socket buys per SMTP session: N messages sent one after
 * another over one STARTTLS session to a loopback receiver (tests/helpers/receiver.ts), with Nagle's
 * algorithm off (as openSession leaves it, through SMTPConnection's private `_socket`) and back on.
 * `npx tsx bench/session-nodelay.ts` (N=200 by default).
 */
import type SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { endSession, openSession, runTransaction } from '../src/delivery/smtp-client.js';
import { startReceiver } from '../tests/helpers/receiver.js';

const receiver = await startReceiver({ tls: true });
const raw = Buffer.from(`From: a@example.test\r\nTo: b@dest.test\r\nSubject: x\r\n\r\n${'y'.repeat(3000)}\r\n`);
const N = Number(process.env.N ?? 200);
const socketOf = (conn: SMTPConnection) => (conn as unknown as { _socket: { setNoDelay(on: boolean): void } })._socket;

for (const round of [1, 2]) {
  for (const noDelay of [true, false]) {
    const conn = await openSession(
      { host: '127.0.0.1', port: receiver.port, verifyTls: false },
      { ehloName: 'gw.test', timeouts: { connectMs: 2000, greetingMs: 3000, socketMs: 5000 } },
    );
    socketOf(conn).setNoDelay(noDelay);
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      const tx = await runTransaction(conn, { from: 'a@example.test', to: ['b@dest.test'] }, raw);
      if (tx.outcomes[0].kind !== 'delivered') throw new Error(JSON.stringify(tx.outcomes));
    }
    const ms = performance.now() - t0;
    console.log(`round ${round}, TCP_NODELAY ${noDelay ? 'on ' : 'off'}: ${N} messages in ${ms.toFixed(0)} ms, ${(ms / N).toFixed(2)} ms per message`);
    endSession(conn, true);
  }
}
await receiver.close();
