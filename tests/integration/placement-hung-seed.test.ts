/**
 * One seed mailbox whose IMAP server hangs must not hold back the others. The first seed's IMAP "server" accepts the
 * connection and says nothing (a firewall that drops after the handshake, a stuck proxy) until the test lets it go;
 * the second seed is a real Dovecot. The gmail probe is placed (inbox) while the hung search still waits: until
 * 2 Dec 2026 the placement loop took the seeds one after the other, and gmail was not even probed until the hung
 * search timed out (30 s).
 */
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPlacement, seedGatewayOverrides, seedZone, waitPlacement } from '../helpers/dovecot-seeds.js';
import { dovecotAvailable, startDovecot, type Dovecot } from '../helpers/dovecot.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { JUNK_SIEVE, startSeedMx, type SeedMx } from '../helpers/seed-mx.js';
import { startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const available = dovecotAvailable();
if (!available.ok) console.warn(`placement hung-seed test SKIPPED: ${available.reason}`);

const SEEDS = [
  { name: 'yahoo-1', provider: 'yahoo', address: 'seed@yahoo.test', pass: 'yahoo-secret-1' },
  { name: 'gmail-1', provider: 'gmail', address: 'seed@gmail.test', pass: 'gmail-secret-1' },
];

let dovecot: Dovecot | undefined;
let dns: DnsServer | undefined;
let mx: SeedMx | undefined;
let t: TestGateway | undefined;
const held: Socket[] = [];
let released = false;
const silent = createServer((socket) => {
  socket.on('error', () => {});
  if (released) socket.end('* BYE going away\r\n');
  else held.push(socket);
});

/** Lets the hung connections go (and every later one): a BYE and close, so a search fails now instead of at its timeout. */
function release(): void {
  released = true;
  for (const s of held.splice(0)) s.end('* BYE going away\r\n');
}

describe.skipIf(!available.ok)(available.ok ? 'a hung seed mailbox' : `a hung seed mailbox (SKIPPED: ${available.reason})`, () => {
  beforeAll(async () => {
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    dovecot = await startDovecot({ users: SEEDS.map((s) => ({ user: s.address, pass: s.pass })), sieve: JUNK_SIEVE });
    dns = await startDnsServer(seedZone(SEEDS.map((s) => s.address)));
    mx = await startSeedMx({ dnsAddress: dns.address, lmtpPort: dovecot.lmtpPort });
    const overrides = seedGatewayOverrides({
      seeds: SEEDS.map((s) => ({ ...s, auth: { method: 'password', passwordEnv: `SEED_${s.provider.toUpperCase()}_PASSWORD` } })),
      imapPort: dovecot.imapPort,
      mxPort: mx.port,
      deadlineSeconds: 4,
    }) as { placement: { seeds: Array<{ imap: { port: number } }> } };
    // The first seed in the config, the one the old loop searched first, talks to the silent server.
    overrides.placement.seeds[0].imap.port = (silent.address() as { port: number }).port;
    const env = Object.fromEntries(SEEDS.map((s) => [`SEED_${s.provider.toUpperCase()}_PASSWORD`, s.pass]));
    t = await startTestGateway({ dns, gatewayOptions: { env }, overrides });
    t.publishDkim(dns);
  }, 30_000);

  afterAll(async () => {
    release();
    await t?.close();
    await mx?.close();
    await dns?.close();
    await dovecot?.close();
    await new Promise((r) => silent.close(r));
  });

  it("places gmail's probe while yahoo's IMAP search hangs; yahoo then becomes unreachable, not missing", async () => {
    const byProvider = (p: any, name: string): any => p.providers.find((x: any) => x.provider === name);
    const p = await waitPlacement(t!.url, (x) => byProvider(x, 'gmail')?.results.length >= 1);
    expect(byProvider(p, 'gmail').results[0]).toMatchObject({ result: 'inbox', seed: 'gmail-1' });
    // The yahoo search is still held: its connection is open and no yahoo result exists yet.
    expect(held.length).toBeGreaterThanOrEqual(1);
    expect(byProvider(p, 'yahoo')?.results ?? []).toHaveLength(0);

    release();
    const after = await waitPlacement(t!.url, (x) => byProvider(x, 'yahoo')?.results.length >= 1);
    expect(byProvider(after, 'yahoo').results[0].result).toBe('seed-unreachable');
    expect(byProvider(after, 'yahoo').seeds[0]).toMatchObject({ state: 'unreachable' });
    expect(byProvider(await getPlacement(t!.url), 'gmail').results[0].result).toBe('inbox');
  }, 60_000);
});
