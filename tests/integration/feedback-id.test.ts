/**
 * Feedback-ID end to end: the configured `<class prefix>:<senderId>` is added at intake before DKIM
 * signing, replaces a client's own Feedback-ID for that class, and is covered by Kurir's signature
 * (mailauth verifies it against the loopback DNS, `feedback-id` is in h=, and changing the header
 * breaks the signature). A class without a configured prefix keeps the client's header, signed too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authenticate } from 'mailauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeResolver, startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestGateway, submitDelivered, type TestGateway } from '../helpers/test-gateway.js';

let dns: DnsServer;
let receiver: Receiver;
let t: TestGateway;
let keyDir: string;

const base = { from: 'Passport office <noreply@example.test>', subject: 'Your code', text: 'Code: 123456' };

beforeAll(async () => {
  receiver = await startReceiver();
  dns = await startDnsServer({
    'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
    'mx.dest.test': { A: ['127.0.0.1'] },
    'example.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
    '_dmarc.example.test': { TXT: ['v=DMARC1; p=reject'] },
    'bounce.example.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
  });
  keyDir = mkdtempSync(join(tmpdir(), 'kurir-fbid-'));
  t = await startTestGateway({
    dns,
    overrides: {
      delivery: { mxPort: receiver.port },
      domains: [
        {
          name: 'example.test',
          dkim: [{ selector: 'kurir1', algorithm: 'rsa', privateKeyFile: join(keyDir, 'rsa.pem'), generate: true }],
          feedbackId: { senderId: 'kurir', verification: 'verification:booking', bulk: 'newsletter:booking' },
        },
      ],
    },
  });
  t.publishDkim(dns);
});

afterAll(async () => {
  await t?.close();
  await receiver?.close();
  await dns?.close();
  rmSync(keyDir, { recursive: true, force: true });
});

/** The unfolded values of every `name` header field of a raw message. */
function fields(raw: Buffer, name: string): string[] {
  const header = raw
    .toString('latin1')
    .split('\r\n\r\n')[0]
    .replace(/\r\n[ \t]+/g, ' ');
  return header
    .split('\r\n')
    .filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))
    .map((l) => l.slice(name.length + 1).trim());
}

async function verify(raw: Buffer, mailFrom: string): Promise<string[]> {
  const auth = await authenticate(raw, { ip: '127.0.0.1', helo: 'localhost', sender: mailFrom, resolver: makeResolver(dns.address) });
  return auth.dkim.results.map((r: any) => r.status.result);
}

describe('Feedback-ID', () => {
  it('adds the configured Feedback-ID for the class, replacing the client’s, covered by the DKIM signature', async () => {
    const { verp } = await submitDelivered(
      t,
      receiver,
      { ...base, priority: 'verification', headers: { 'Feedback-ID': 'client:own:ids:x' } },
      'alice@dest.test',
    );
    const msg = receiver.messages.find((m) => m.rcptTo.includes('alice@dest.test'))!;
    expect(fields(msg.raw, 'Feedback-ID')).toEqual(['verification:booking:kurir']);
    const [signature] = fields(msg.raw, 'DKIM-Signature');
    const h = /(?:^|;)\s*h=([^;]+)/.exec(signature)![1].replace(/\s+/g, '').toLowerCase().split(':');
    expect(h).toContain('feedback-id');
    expect(await verify(msg.raw, verp)).toEqual(['pass']);

    // The signature covers the header: another value no longer verifies.
    const tampered = Buffer.from(msg.raw.toString('latin1').replace('Feedback-ID: verification:booking:kurir', 'Feedback-ID: bulk:booking:kurir'), 'latin1');
    expect(fields(tampered, 'Feedback-ID')).toEqual(['bulk:booking:kurir']);
    expect(await verify(tampered, verp)).toEqual(['fail']);
  });

  it('uses the prefix of the message’s own class (bulk)', async () => {
    await submitDelivered(t, receiver, { ...base, priority: 'bulk' }, 'bob@dest.test');
    const msg = receiver.messages.find((m) => m.rcptTo.includes('bob@dest.test'))!;
    expect(fields(msg.raw, 'Feedback-ID')).toEqual(['newsletter:booking:kurir']);
  });

  it('keeps, and signs, the client’s Feedback-ID for a class without a configured prefix', async () => {
    const { verp } = await submitDelivered(
      t,
      receiver,
      { ...base, priority: 'normal', headers: { 'Feedback-ID': 'receipt:booking:app:kurir' } },
      'carol@dest.test',
    );
    const msg = receiver.messages.find((m) => m.rcptTo.includes('carol@dest.test'))!;
    expect(fields(msg.raw, 'Feedback-ID')).toEqual(['receipt:booking:app:kurir']);
    const [signature] = fields(msg.raw, 'DKIM-Signature');
    expect(signature.replace(/\s+/g, '').toLowerCase()).toMatch(/h=[^;]*feedback-id/);
    expect(await verify(msg.raw, verp)).toEqual(['pass']);
  });

  it('adds no Feedback-ID when neither the configuration nor the client gives one', async () => {
    await submitDelivered(t, receiver, { ...base, priority: 'normal' }, 'dave@dest.test');
    const msg = receiver.messages.find((m) => m.rcptTo.includes('dave@dest.test'))!;
    expect(fields(msg.raw, 'Feedback-ID')).toEqual([]);
  });
});
