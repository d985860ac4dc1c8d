/** A test gateway with one Gmail seed (`gmail-1`, app password) searched on the loopback Gmail IMAP double. */
import type { DnsServer } from './dns-server.js';
import { seedGatewayOverrides } from './dovecot-seeds.js';
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
