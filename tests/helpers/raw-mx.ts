/**
 * What the raw-message tests (tests/integration/raw-*.test.ts) send through: a test gateway that delivers to
 * smtp-server on loopback as the MX of `dest.test` (DNS on loopback, the gateway's DKIM keys, SPF and a strict DMARC
 * policy for example.test published), and the ways in: SMTP DATA and HTTP `message/rfc822`. Each test file starts its
 * own and closes it in afterAll.
 */
import { authenticate } from 'mailauth';
import nodemailer from 'nodemailer';
import { makeResolver, startDnsServer, type DnsServer } from './dns-server.js';
import { startReceiver, type ReceivedMessage, type Receiver } from './receiver.js';
import { API_KEY, SMTP_USER, startTestGateway, type TestGateway } from './test-gateway.js';

export interface RawMx {
  t: TestGateway;
  receiver: Receiver;
  dns: DnsServer;
  /** Sends a raw message over SMTP (STARTTLS, AUTH, envelope sender noreply@example.test); answers the reply to DATA, 250 or refusal. */
  smtpReply(message: string | Buffer, to: string[]): Promise<string>;
  /** Sends a raw message over SMTP and answers its queued id (throws on a refusal). */
  sendSmtp(message: string | Buffer, to: string[]): Promise<string>;
  /** POSTs a raw message over HTTP with the envelope recipients in the query; answers status and body. */
  postRaw(message: string | Buffer, to: string[], headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  /** Waits until message `id` is delivered and answers the copies the MX received for it (its VERP names the id). */
  delivered(id: string): Promise<ReceivedMessage[]>;
  /** The DKIM results mailauth reports for a copy at the MX: [signing domain, result] per signature. */
  dkimOf(copy: ReceivedMessage): Promise<Array<[string, string]>>;
  close(): Promise<void>;
}

/** Starts the MX, DNS and gateway; the gateway's config takes `overrides` besides the MX port. */
export async function startRawMx(overrides: Record<string, unknown> = {}): Promise<RawMx> {
  const receiver = await startReceiver({ hostname: 'mx.dest.test' });
  const dns = await startDnsServer({
    'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
    'mx.dest.test': { A: ['127.0.0.1'] },
    'example.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
    '_dmarc.example.test': { TXT: ['v=DMARC1; p=reject; adkim=s'] },
    'bounce.example.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
  });
  const delivery = (overrides.delivery ?? {}) as Record<string, unknown>;
  const t = await startTestGateway({ dns, overrides: { ...overrides, delivery: { ...delivery, mxPort: receiver.port } } });
  t.publishDkim(dns);

  const smtpReply = async (message: string | Buffer, to: string[]): Promise<string> => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.smtp, auth: SMTP_USER, tls: { rejectUnauthorized: false } });
    try {
      return (await transport.sendMail({ envelope: { from: 'noreply@example.test', to }, raw: message })).response;
    } catch (err) {
      return (err as { response?: string }).response ?? String(err);
    } finally {
      transport.close();
    }
  };

  return {
    t,
    receiver,
    dns,
    smtpReply,
    async sendSmtp(message, to) {
      const reply = await smtpReply(message, to);
      const id = /^250 .*queued as ([0-9a-z]+)/.exec(reply)?.[1];
      if (!id) throw new Error(`SMTP refused the message: ${reply}`);
      return id;
    },
    async postRaw(message, to, headers = {}) {
      const query = to.map((r) => `to=${encodeURIComponent(r)}`).join('&');
      const res = await fetch(`${t.url}/v1/messages?${query}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'message/rfc822', ...headers },
        body: typeof message === 'string' ? message : new Uint8Array(message),
      });
      return { status: res.status, body: await res.json() };
    },
    async delivered(id) {
      await t.waitForStatus(id, (s) => s.status === 'delivered');
      return receiver.messages.filter((m) => m.mailFrom.startsWith(`b+${id}.`));
    },
    async dkimOf(copy) {
      const auth = await authenticate(copy.raw, { ip: '127.0.0.1', helo: copy.clientHostname, sender: copy.mailFrom, resolver: makeResolver(dns.address) });
      return auth.dkim.results.map((r: any) => [r.signingDomain, r.status.result]);
    },
    async close() {
      await t.close();
      await receiver.close();
      await dns.close();
    },
  };
}
