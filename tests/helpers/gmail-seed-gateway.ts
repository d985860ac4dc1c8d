/**
 * The placement tests' loopback Gmail: a test gateway with one Gmail seed (`gmail-1`, app password) searched on the
 * Gmail IMAP double, and the stack around it (the double, DNS for the seeds' domains, the seeds' MX).
 */
import { afterAll, beforeAll } from 'vitest';
import { closeAll } from './close-all.js';
import { startDnsServer, type DnsServer } from './dns-server.js';
import { seedGatewayOverrides, seedZone } from './dovecot-seeds.js';
import { startGmailImap, type GmailImap } from './gmail-imap.js';
import { startReceiver, type Receiver, type Script } from './receiver.js';
import { startTestGateway, type TestGateway } from './test-gateway.js';

/** Starts a gateway whose single seed `gmail-1` (`user`, password `pass`) is searched on `imapPort` and reached via `mxPort`. */
export function startGmailSeedGateway(opts: {
  dns: DnsServer;
  user: string;
  pass: string;
  imapPort: number;
  mxPort: number;
  deadlineSeconds: number;
}): Promise<TestGateway> {
  return startTestGateway({
    dns: opts.dns,
    gatewayOptions: { env: { SEED_GMAIL_1_PASSWORD: opts.pass } },
    overrides: seedGatewayOverrides({
      seeds: [{ name: 'gmail-1', provider: 'gmail', address: opts.user, auth: { method: 'app-password', passwordEnv: 'SEED_GMAIL_1_PASSWORD' } }],
      imapPort: opts.imapPort,
      mxPort: opts.mxPort,
      deadlineSeconds: opts.deadlineSeconds,
    }),
  });
}

/** The parts {@link gmailSeedStackForSuite} starts. */
export interface GmailSeedStack {
  gmail: GmailImap;
  dns: DnsServer;
  mx: Receiver;
  t: TestGateway;
}

/**
 * Registers, where beforeAll would go, the beforeAll that starts the Gmail IMAP double holding `user`'s mailbox
 * (`pass`), DNS for the seed addresses (`seedZone`, default `[user]`), the seeds' MX `mx.seed.test` answering with
 * `mxScript(gmail)` (which may file what it receives into the double), and a gateway: `gateway(parts)`, or else
 * {@link startGmailSeedGateway} with `deadlineSeconds`; and hands them to `use`. `prepareImap` runs on the
 * double before the rest starts. The afterAll closes gateway, MX, DNS and double, in that order.
 */
export function gmailSeedStackForSuite(
  opts: {
    user: string;
    pass: string;
    seedAddresses?: string[];
    prepareImap?: (gmail: GmailImap) => void;
    mxScript: (gmail: GmailImap) => Script;
    deadlineSeconds?: number;
    gateway?: (parts: Omit<GmailSeedStack, 't'>) => Promise<TestGateway>;
  },
  use: (stack: GmailSeedStack) => void,
): void {
  let gmail: GmailImap | undefined;
  let dns: DnsServer | undefined;
  let mx: Receiver | undefined;
  let t: TestGateway | undefined;
  beforeAll(async () => {
    gmail = await startGmailImap({ user: opts.user, pass: opts.pass });
    opts.prepareImap?.(gmail);
    dns = await startDnsServer(seedZone(opts.seedAddresses ?? [opts.user]));
    mx = await startReceiver({ hostname: 'mx.seed.test', script: opts.mxScript(gmail) });
    const parts = { gmail, dns, mx };
    if (!opts.gateway && opts.deadlineSeconds === undefined) throw new Error('gmailSeedStackForSuite: deadlineSeconds or gateway is needed');
    t = opts.gateway
      ? await opts.gateway(parts)
      : await startGmailSeedGateway({ dns, user: opts.user, pass: opts.pass, imapPort: gmail.port, mxPort: mx.port, deadlineSeconds: opts.deadlineSeconds! });
    use({ ...parts, t });
  }, 30_000);
  afterAll(() => closeAll(t, mx, dns, gmail));
}
