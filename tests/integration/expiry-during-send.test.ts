/**
 * A message whose TTL runs out while its attempt waits on an MX host that never greets: the gateway must not
 * hand it to the next MX host after its expiry, and records it `expired`. Until 1 Dec 2026 expiry was checked
 * only when the job started, and the second MX got the verification code after its TTL (recorded `delivered`).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { primaryAndBackupMx } from '../helpers/mx-zones.js';

let dns: DnsServer;
let receiver: Receiver;
let t: TestGateway;
let silent: Server;
const sockets: Socket[] = [];

beforeAll(async () => {
  receiver = await startReceiver({ tls: false, hostname: 'mx2.slow.test' });
  // The preferred MX accepts the connection and never greets: the client waits its greeting timeout (3 s in tests).
  silent = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => silent.listen(receiver.port, '127.0.0.2', () => resolve()));
  dns = await startDnsServer({
    ...primaryAndBackupMx('slow.test'),
  });
  t = await startTestGateway({ dns, overrides: { delivery: { mxPort: receiver.port, mtaSts: { enabled: false } } } });
});

afterAll(async () => {
  await t?.close();
  await receiver?.close();
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await dns?.close();
});

it('records a message expired, and sends it to no further MX host, when its TTL ends while the first one is silent', async () => {
  const res = await t.submit({
    from: 'noreply@example.test',
    to: ['applicant@slow.test'],
    subject: 'Your code',
    text: 'Code: 123456',
    priority: 'verification',
    ttl: 2,
  });
  expect(res.status).toBe(202);
  const final = await t.waitForStatus(res.body.id, (s) => ['delivered', 'expired', 'bounced'].includes(s.status), 20_000);
  expect(final.status).toBe('expired');
  expect(final.recipients['applicant@slow.test']).toMatchObject({ status: 'expired', reply: 'message expired before delivery' });
  const events = final.events.map((e: { type: string; host?: string }) => (e.host ? `${e.type} ${e.host}` : e.type));
  expect(events).toEqual(['queued', `attempt mx1.slow.test[127.0.0.2]:${receiver.port}`, 'expired']);
  expect(sockets.length).toBe(1);
  expect(receiver.connections).toBe(0);
  expect(receiver.messages).toEqual([]);
});
