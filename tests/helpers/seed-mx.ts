/**
 * The receiving MX of seed mailboxes: a real smtp-server (tests/helpers/receiver.ts) that checks each
 * message with mailauth's authenticate() against the loopback DNS, stamps the resulting
 * Authentication-Results, and hands it to Dovecot over LMTP. Per recipient domain the test decides
 * what the "provider" does: file it normally (`inbox`), mark it as spam so Dovecot's Sieve rule files
 * it into Junk (`junk`), or answer 250 and drop it (`drop`: the mail that vanished); or
 * refuse every recipient of the domain at RCPT with a given reply (`setRefusal`: a provider refusing us).
 */
import { authenticate } from 'mailauth';
import nodemailer from 'nodemailer';
import { makeResolver } from './dns-server.js';
import { startReceiver, type Receiver, type Reply } from './receiver.js';

export type SeedMode = 'inbox' | 'junk' | 'drop';

/** Header the Sieve script of tests/helpers/dovecot.ts users looks for. */
export const SPAM_HEADER = 'X-Test-Spam';
/** Sieve script: files messages marked by the seed MX into Junk. */
export const JUNK_SIEVE = `require ["fileinto"];\nif header :is "${SPAM_HEADER}" "yes" { fileinto "Junk"; stop; }\n`;

export interface SeedMx {
  receiver: Receiver;
  port: number;
  setMode(domain: string, mode: SeedMode): void;
  /** Refuses every recipient of `domain` at RCPT with `reply` (null: accept again). */
  setRefusal(domain: string, reply: Reply | null): void;
  /** Messages handed to LMTP, per recipient domain. */
  delivered: Map<string, number>;
  close(): Promise<void>;
}

export async function startSeedMx(opts: { dnsAddress: string; lmtpPort: number; hostname?: string }): Promise<SeedMx> {
  const modes = new Map<string, SeedMode>();
  const refusals = new Map<string, Reply>();
  const delivered = new Map<string, number>();
  const lmtp = nodemailer.createTransport({ lmtp: true, host: '127.0.0.1', port: opts.lmtpPort });
  const resolver = makeResolver(opts.dnsAddress);
  const mta = opts.hostname ?? 'mx.seed.test';
  const receiver = await startReceiver({
    hostname: mta,
    async script(ctx) {
      if (ctx.stage === 'rcpt' && ctx.address) return refusals.get(ctx.address.split('@')[1].toLowerCase());
      if (ctx.stage !== 'data' || !ctx.raw) return undefined;
      const domain = ctx.rcptTo[0].split('@')[1].toLowerCase();
      const mode = modes.get(domain) ?? 'inbox';
      if (mode === 'drop') return undefined;
      const auth = await authenticate(ctx.raw, {
        ip: ctx.remoteAddress,
        helo: ctx.clientHostname,
        sender: ctx.mailFrom ?? '',
        mta,
        resolver,
        disableBimi: true,
        disableArc: true,
      });
      const stamp = auth.headers + (mode === 'junk' ? `${SPAM_HEADER}: yes\r\n` : '');
      await lmtp.sendMail({ envelope: { from: ctx.mailFrom ?? '', to: ctx.rcptTo }, raw: Buffer.concat([Buffer.from(stamp), ctx.raw]) });
      delivered.set(domain, (delivered.get(domain) ?? 0) + 1);
      return undefined;
    },
  });
  return {
    receiver,
    port: receiver.port,
    delivered,
    setMode: (domain, mode) => modes.set(domain.toLowerCase(), mode),
    setRefusal: (domain, reply) => void (reply ? refusals.set(domain.toLowerCase(), reply) : refusals.delete(domain.toLowerCase())),
    async close() {
      lmtp.close();
      await receiver.close();
    },
  };
}
