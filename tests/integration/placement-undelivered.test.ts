/**
 * A placement probe the provider refused, or still deferred at the deadline, is not a placement result: at the deadline it is `not-delivered`
 * (with the refusal as its error), never `missing`. Until 1 Dec 2026 a DMARC refusal was recorded `missing`,
 * counted in kurir_placement_results_total{folder="missing"} and added a wrong `missing-probes` incident finding.
 */
import { expect, it } from 'vitest';
import { seedGatewayOverrides, waitPlacement } from '../helpers/dovecot-seeds.js';
import { ADMIN_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { gmailSeedStackForSuite } from '../helpers/gmail-seed-gateway.js';

const USER = 'kurir.seed1@gmail.test';
/** A second seed whose MX keeps deferring; its mailbox cannot be searched either (the double knows only USER). */
const DEFERRED = 'kurir.seed2@yahoo.test';
const PASS = 'pw';
const auth = { authorization: `Bearer ${ADMIN_KEY}` };
let t: TestGateway;

gmailSeedStackForSuite(
  {
    user: USER,
    pass: PASS,
    seedAddresses: [USER, DEFERRED],
    mxScript: () => (ctx) => {
      if (ctx.stage === 'rcpt' && ctx.address === DEFERRED) return { code: 451, message: '4.7.0 Try again later' };
      if (ctx.stage === 'rcpt') return { code: 550, message: "5.7.26 Unauthenticated email from example.test is not accepted due to domain's DMARC policy" };
      return undefined;
    },
    gateway: ({ dns, gmail, mx }) =>
      startTestGateway({
        dns,
        gatewayOptions: { env: { SEED_PASSWORD: PASS } },
        overrides: seedGatewayOverrides({
          seeds: [
            { name: 'gmail-1', provider: 'gmail', address: USER, auth: { method: 'app-password', passwordEnv: 'SEED_PASSWORD' } },
            { name: 'yahoo-1', provider: 'yahoo', address: DEFERRED, auth: { method: 'app-password', passwordEnv: 'SEED_PASSWORD' } },
          ],
          imapPort: gmail.port,
          mxPort: mx.port,
          deadlineSeconds: 4,
        }),
      }),
  },
  (s) => {
    t = s.t;
  },
);

it('records a refused probe as not-delivered, not missing, and keeps it out of the rate, the metric and the incident', async () => {
  const p = await waitPlacement(t.url, (x) => (x.providers.find((y: { provider: string }) => y.provider === 'gmail')?.results.length ?? 0) >= 1, 20_000);
  const gmailPlacement = p.providers.find((y: { provider: string }) => y.provider === 'gmail');
  const r = gmailPlacement.results[0];
  expect(r.result).toBe('not-delivered');
  expect(r.error).toMatch(/^bounced: .*5\.7\.26/);
  expect(gmailPlacement.inboxRate1h).toBeNull();
  expect(gmailPlacement.counts24h).toMatchObject({ missing: 0, 'not-delivered': 1 });

  const msg = await (await fetch(`${t.url}/v1/messages/${r.messageId}`, { headers: auth })).json();
  expect(msg.status).toBe('bounced');
  const placed = msg.events.filter((e: { type: string }) => e.type === 'placement');
  expect(placed).toHaveLength(1);
  expect(placed[0]).toMatchObject({ result: 'not-delivered', seed: 'gmail-1', provider: 'gmail' });

  const inc = await (await fetch(`${t.url}/v1/incidents`, { headers: auth })).json();
  const findings = inc.providers.find((x: { provider: string }) => x.provider === 'gmail').findings as Array<{ kind: string; text: string }>;
  expect(findings.map((f) => f.kind)).not.toContain('missing-probes');
  expect(findings.some((f) => f.kind === 'auth-failure' && f.text.includes('5.7.26'))).toBe(true);

  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  expect(metrics).not.toMatch(/^kurir_placement_results_total\{provider="gmail",folder="missing"\} [1-9]/m);
}, 40_000);

it('records a probe still deferred at the deadline as not-delivered, with the deferral, also when its seed cannot be searched', async () => {
  const p = await waitPlacement(t.url, (x) => (x.providers.find((y: { provider: string }) => y.provider === 'yahoo')?.results.length ?? 0) >= 1, 20_000);
  const yahoo = p.providers.find((y: { provider: string }) => y.provider === 'yahoo');
  expect(yahoo.results[0]).toMatchObject({ result: 'not-delivered', error: expect.stringMatching(/^deferred: .*451/) });
  expect(yahoo.counts24h).toMatchObject({ missing: 0, 'seed-unreachable': 0, 'not-delivered': 1 });
}, 40_000);
