/**
 * Helpers of the runtime-managed sender-domain tests (rotation by hand and on schedule): submit as a domain
 * with the admin key, wait for delivery, publish a domain's DKIM records in the loopback DNS, and verify a
 * delivered message the way a receiver does (mailauth against that DNS).
 */
import { authenticate } from 'mailauth';
import type { DnsServer } from './dns-server.js';
import { makeResolver } from './dns-server.js';
import { ADMIN_KEY, adminRequest, type TestGateway } from './test-gateway.js';
import { until } from './until.js';

/** POST /v1/messages with the admin key, From `hello@<domain>`. */
export async function submitFrom(t: TestGateway, domain: string, to: string, subject: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`${t.url}/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from: `Newsletter <hello@${domain}>`, to: [to], subject, text: `body of ${subject}` }),
  });
  return { status: r.status, body: (await r.json()) as any };
}

/** Polls GET /v1/messages/:id with the admin key (the messages are the admin key's) until delivered. */
export async function waitDelivered(t: TestGateway, id: string, timeoutMs = 10_000): Promise<any> {
  return until(
    async () => {
      const s = (await adminRequest(t.url, 'GET', `/v1/messages/${id}`)).body;
      return s?.status === 'delivered' ? s : null;
    },
    timeoutMs,
    `message ${id} delivered`,
    100,
  );
}

/** Publishes every DKIM record of a domain view's `records` in the loopback DNS, exactly as listed. */
export function publishDkim(dns: DnsServer, records: any[]): void {
  for (const r of records.filter((x: any) => x.purpose === 'dkim')) dns.set(r.name, 'TXT', [r.strings]);
}

/** The DKIM results of a delivered message as the receiver sees them (mailauth against the loopback DNS). */
export async function verifyAtReceiver(dns: DnsServer, raw: Buffer, mailFrom: string): Promise<Array<{ domain: string; selector: string; result: string }>> {
  const auth = await authenticate(raw, { ip: '127.0.0.1', helo: 'kurir.test', sender: mailFrom, mta: 'mx.dest.test', resolver: makeResolver(dns.address) });
  return auth.dkim.results.map((r: any) => ({ domain: r.signingDomain, selector: r.selector, result: r.status.result }));
}
