/**
 * A seed search that fails partway (IMAP NO on a later folder) after it already found and deleted a probe in
 * INBOX: the failed outcome still lists that probe, and the placement service records it as `inbox`.
 * Until 1 Dec 2026 the failure dropped the list: the deleted inbox probe was never recorded, and later showed as
 * `other` ([Gmail]/All Mail, Gmail's default "archive" expunge) or `missing`. Uses the loopback Gmail IMAP double.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { placementSchema } from '../../src/config/placement-schema.js';
import { searchSeed } from '../../src/placement/mailbox-search.js';
import { newProbeToken } from '../../src/placement/probe-message.js';
import { waitPlacement } from '../helpers/dovecot-seeds.js';
import { startGmailImap, type GmailImap } from '../helpers/gmail-imap.js';
import type { Receiver } from '../helpers/receiver.js';
import { ADMIN_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gmailSeedStackForSuite } from '../helpers/gmail-seed-gateway.js';

const USER = 'kurir.seed1@gmail.test';
const PASS = 'pw';
const SPAM = '[Gmail]/Spam';
const defaults = placementSchema.parse({});
let gmail: GmailImap;

/** Makes every SELECT of [Gmail]/Spam fail (the folder vanishes for that one command), as a flaky server would. */
function failSpamSelect(double: GmailImap): void {
  const folders = (double.store as unknown as { folders: Map<string, unknown> }).folders;
  let saved: unknown;
  double.onCommand = (cmd, args) => {
    if (saved !== undefined) folders.set(SPAM, saved);
    saved = undefined;
    if (cmd === 'SELECT' && args[0] === SPAM) {
      saved = folders.get(SPAM);
      folders.delete(SPAM);
    }
  };
}

const probe = (token: string): string =>
  ['From: verify@example.test', `To: ${USER}`, 'Subject: code', `X-Kurir-Probe: ${token}`, '', `ref ${token}`, ''].join('\r\n');

for (const expungeBehavior of ['archive', 'deleteForever'] as const) {
  describe(`searchSeed failing after INBOX (${expungeBehavior})`, () => {
    beforeEach(async () => {
      gmail = await startGmailImap({ user: USER, pass: PASS, expungeBehavior });
    });
    afterEach(async () => {
      await gmail.close();
    });

    it('answers the inbox probe it already found and deleted', async () => {
      const inInbox = newProbeToken();
      const notYet = newProbeToken(); // still in flight: the search goes on past INBOX and fails at the spam folder
      gmail.deliver(probe(inInbox), { category: 'primary' });
      failSpamSelect(gmail);
      const out = await searchSeed({
        seed: {
          name: 'gmail-1',
          provider: 'gmail',
          address: USER,
          imap: { host: '127.0.0.1', port: gmail.port, tls: false, verifyTls: true },
          auth: { method: 'app-password', passwordEnv: 'X', tokenCacheSeconds: 600 },
          intervalSeconds: 600,
        },
        login: { user: USER, pass: PASS },
        tokens: [inInbox, notYet],
        junkNames: defaults.junkNames,
        skipNames: defaults.skipNames,
        deleteUnknownBefore: Date.now() - 86_400_000,
        timeoutMs: 5000,
      });
      expect(out.ok).toBe(false);
      expect(out.found).toEqual([expect.objectContaining({ token: inInbox, folder: 'inbox', mailbox: 'INBOX' })]);
      expect(gmail.store.view(gmail.store.folder('INBOX')!)).toHaveLength(0);
    });
  });
}

describe('placement service: a search failing after INBOX still records the inbox probe', () => {
  let mx: Receiver;
  let t: TestGateway;

  gmailSeedStackForSuite(
    {
      user: USER,
      pass: PASS,
      prepareImap: failSpamSelect,
      // The first probe is accepted (the test files it into INBOX); later ones are deferred and stay in flight.
      mxScript: () => (ctx) => (ctx.stage === 'rcpt' && ctx.attempt > 1 ? { code: 451, message: '4.3.0 try again later' } : undefined),
      deadlineSeconds: 60,
    },
    (s) => {
      ({ gmail, mx, t } = s);
    },
  );

  it('records inbox for the probe found before the spam folder failed', async () => {
    const [first] = await mx.waitFor(1, 15_000);
    const requested = await fetch(`${t.url}/v1/placement/probes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(requested.status).toBe(202);
    // The second probe is in flight once the MX has deferred it; only then does the first reach INBOX.
    const deadline = Date.now() + 15_000;
    while (mx.attempts(USER) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(mx.attempts(USER)).toBeGreaterThanOrEqual(2);
    gmail.deliver(first.raw, { category: 'primary' });

    const p = await waitPlacement(t.url, (x) => (x.providers.find((y: { provider: string }) => y.provider === 'gmail')?.results.length ?? 0) >= 1, 15_000);
    const gmailPlacement = p.providers.find((y: { provider: string }) => y.provider === 'gmail');
    expect(gmailPlacement.results).toHaveLength(1);
    expect(gmailPlacement.results[0]).toMatchObject({ result: 'inbox', mailbox: 'INBOX' });
    expect(gmailPlacement.seeds[0]).toMatchObject({ state: 'unreachable', reason: 'protocol' });
  }, 45_000);
});
