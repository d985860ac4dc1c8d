/**
 * A gateway whose listening port is already taken stops its start before it delivers anything: deliveries (and
 * placement probes) start only once every listener is bound. Until 2 Dec 2026 the worker started first, took queued
 * mail and delivered it until the listener failed (a fault-injection audit saw a few messages go out before the
 * EADDRINUSE exit), so a restart loop cut deliveries mid-transaction and each such message was sent again later.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { dropPrefix, startTestGateway } from '../helpers/test-gateway.js';

const prefix = `kurir-test-porttaken-${Math.random().toString(36).slice(2, 8)}`;
let receiver: Receiver;
let taken: Server;
let takenPort = 0;

beforeAll(async () => {
  receiver = await startReceiver({ tls: false });
  taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  takenPort = (taken.address() as { port: number }).port;
});

afterAll(async () => {
  await receiver.close();
  await new Promise((r) => taken.close(r));
  await dropPrefix(prefix);
});

it('a port already taken stops the start before any queued message is delivered; a start that binds delivers it', async () => {
  const smarthost = { delivery: { smarthost: { host: '127.0.0.1', port: receiver.port } } };
  // Queue a message with a gateway that has no worker.
  const intake = await startTestGateway({ prefix, overrides: { roles: ['intake', 'api'], ...smarthost } });
  const res = await intake.submit({ from: 'noreply@example.test', to: ['applicant@example.org'], subject: 'Your code', text: 'Code: 123456' });
  expect(res.status).toBe(202);
  await intake.close();

  // A gateway with the worker role whose HTTP port is taken: the start fails, naming the port, and sends nothing.
  await expect(startTestGateway({ prefix, overrides: { roles: ['intake', 'api', 'worker'], http: { port: takenPort }, ...smarthost } })).rejects.toThrow(
    /EADDRINUSE/,
  );
  await new Promise((r) => setTimeout(r, 1500));
  expect(receiver.messages).toHaveLength(0);

  // The same gateway on a free port delivers the queued message.
  const worker = await startTestGateway({ prefix, overrides: { roles: ['intake', 'api', 'worker'], ...smarthost } });
  try {
    const [got] = await receiver.waitFor(1, 15_000);
    expect(got.rcptTo).toEqual(['applicant@example.org']);
  } finally {
    await worker.close();
  }
}, 40_000);
