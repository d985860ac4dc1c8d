/**
 * Pre-send scoring with a real rspamd (Debian package, its own config dir, DNS from the loopback server):
 * a real message is scored after DKIM signing with the sending IP, HELO and VERP envelope, and the verdict
 * lands on the timeline and in kurir_rspamd_*; a GTUBE message is refused at intake (HTTP 422 SPAM_SCORE,
 * SMTP 550 5.7.1) and nothing is stored; probes are always scored and never refused; with rspamd down or
 * silent, mail still flows and the skip is counted by reason.
 */
import { createServer, type Server, type Socket } from 'node:net';
import nodemailer from 'nodemailer';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { PreSendScorer } from '../../src/scoring/pre-send-scorer.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { rspamdAvailable, startRspamd, type Rspamd } from '../helpers/rspamd.js';
import { SMTP_USER, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { closeAll } from '../helpers/close-all.js';

const available = rspamdAvailable();
if (!available.ok) console.warn(`rspamd scoring test SKIPPED: ${available.reason}`);

const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const SENDING_IP = '192.0.2.10';
const base = { from: 'Passport office <noreply@example.test>', subject: 'Your verification code', text: 'Your code is 123456.\n', priority: 'verification' };

let dns: DnsServer;
let receiver: Receiver;
let rspamd: Rspamd;
let t: TestGateway;

const scoring = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  scoring: {
    rspamd: { enabled: true, url: rspamd.url, sendingIp: SENDING_IP, sampleEvery: 1, maxPerSecond: null, topSymbols: 50, timeoutSeconds: 5, ...over },
  },
});

async function metric(gw: TestGateway, line: RegExp): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const found = text.split('\n').find((l) => line.test(l));
  return found ? Number(found.split(' ').pop()) : 0;
}

describe.skipIf(!available.ok)(available.ok ? 'pre-send scoring with rspamd' : `pre-send scoring with rspamd (SKIPPED: ${available.reason})`, () => {
  beforeAll(async () => {
    receiver = await startReceiver();
    dns = await startDnsServer({
      'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
      'mx.dest.test': { A: ['127.0.0.1'] },
      'example.test': { TXT: [`v=spf1 ip4:${SENDING_IP} -all`] },
      '_dmarc.example.test': { TXT: ['v=DMARC1; p=reject'] },
      'bounce.example.test': { TXT: [`v=spf1 ip4:${SENDING_IP} -all`] },
    });
    const started = Date.now();
    rspamd = await startRspamd({ dnsAddress: dns.address });
    console.info(`rspamd answered /ping ${Date.now() - started} ms after start`);
    t = await startTestGateway({ dns, overrides: { delivery: { mxPort: receiver.port }, ...scoring() } });
    t.publishDkim(dns);
  }, 40_000);

  afterAll(() => closeAll(t, rspamd, receiver, dns));

  it('scores a real message after signing: score, action and symbols on the timeline and in the metrics', async () => {
    const res = await t.submit({ ...base, to: ['alice@dest.test'] });
    expect(res.status).toBe(202);
    const s = await t.waitForStatus(res.body.id, (x) => x.status === 'delivered');
    expect(s.events.map((e: any) => e.type)).toEqual(['queued', 'scored', 'attempt', 'delivered']);
    const scored = s.events.find((e: any) => e.type === 'scored');
    expect(scored.scanner).toBe('rspamd');
    expect(typeof scored.score).toBe('number');
    expect(scored.score).toBeLessThan(scored.requiredScore);
    expect(scored.action).toBe('no action');
    expect(scored.sample).toBe('nth');
    const names = scored.symbols.map((x: any) => x.name);
    // rspamd verified Kurir's DKIM signature and SPF for the VERP return path from the sending IP: it got
    // the signed message, the envelope and the client IP delivery presents.
    expect(names).toContain('R_DKIM_ALLOW');
    expect(names).toContain('R_SPF_ALLOW');
    expect(names).toContain('DMARC_POLICY_ALLOW');
    const scores = scored.symbols.map((x: any) => x.score);
    expect(scores).toEqual([...scores].sort((a: number, b: number) => b - a));
    expect(await metric(t, /^kurir_rspamd_checks_total\{domain="example.test",action="no-action"\}/)).toBeGreaterThanOrEqual(1);
    expect(await metric(t, /^kurir_rspamd_score_count\{domain="example.test"\}/)).toBeGreaterThanOrEqual(1);
    // No scoring.rspamd.threshold: rspamd's own reject score (its required_score) is the threshold alerts compare with.
    expect(await metric(t, /^kurir_rspamd_threshold_score /)).toBe(scored.requiredScore);
    const seconds = await metric(t, /^kurir_rspamd_check_duration_seconds_sum /);
    const checks = await metric(t, /^kurir_rspamd_check_duration_seconds_count /);
    expect(checks).toBeGreaterThanOrEqual(1);
    console.info(`rspamd /checkv2: ${checks} request(s), mean ${((seconds / checks) * 1000).toFixed(1)} ms`);
  });

  it('refuses a message rspamd rejects (GTUBE) over HTTP with SPAM_SCORE 422, naming score and symbols; nothing is stored', async () => {
    const before = receiver.messages.length;
    const refusedBefore = await metric(t, /^kurir_intake_messages_refused_total\{interface="http",reason="SPAM_SCORE"\}/);
    const overBefore = await metric(t, /^kurir_rspamd_over_threshold_total\{domain="example.test"\}/);
    const res = await t.submit({ ...base, to: ['gtube@dest.test'], text: `Hello\n${GTUBE}\n` });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('SPAM_SCORE');
    expect(res.body.error.message).toMatch(/rspamd score 15\.0 \(action reject\).*top symbols: GTUBE/);
    expect(res.body.error.details.action).toBe('reject');
    expect(res.body.error.details.symbols.map((x: any) => x.name)).toContain('GTUBE');
    expect(await metric(t, /^kurir_intake_messages_refused_total\{interface="http",reason="SPAM_SCORE"\}/)).toBe(refusedBefore + 1);
    expect(await metric(t, /^kurir_rspamd_checks_total\{domain="example.test",action="reject"\}/)).toBeGreaterThanOrEqual(1);
    expect(await metric(t, /^kurir_rspamd_over_threshold_total\{domain="example.test"\}/)).toBe(overBefore + 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.messages.length).toBe(before);
    expect(receiver.messages.some((m) => m.rcptTo.includes('gtube@dest.test'))).toBe(false);
  });

  it('refuses the same over SMTP with 550 5.7.1', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: t.gateway.ports.smtp, auth: SMTP_USER, tls: { rejectUnauthorized: false } });
    const err = await transport.sendMail({ from: 'noreply@example.test', to: 'gtube-smtp@dest.test', subject: 'x', text: GTUBE }).then(
      () => null,
      (e: Error & { responseCode?: number; response?: string }) => e,
    );
    transport.close();
    expect(err?.responseCode).toBe(550);
    expect(err?.response).toMatch(/^550 5\.7\.1 .*rspamd score .*GTUBE/);
  });

  it('scores every placement probe and never refuses one', async () => {
    const overBefore = await metric(t, /^kurir_rspamd_over_threshold_total\{domain="example.test"\}/);
    const res = await t.submit({ ...base, to: ['probe@dest.test'], text: `Probe\n${GTUBE}\n`, tags: ['placement-probe'] });
    expect(res.status).toBe(202);
    const s = await t.waitForStatus(res.body.id, (x) => x.status === 'delivered');
    const scored = s.events.find((e: any) => e.type === 'scored');
    expect(scored).toMatchObject({ action: 'reject', sample: 'probe' });
    // Not refused, but counted: the alert on scores at the threshold sees what the real mail would meet.
    expect(await metric(t, /^kurir_rspamd_over_threshold_total\{domain="example.test"\}/)).toBe(overBefore + 1);
  });

  describe('sampling and rspamd not answering', () => {
    let gw: TestGateway | undefined;
    let silent: Server | undefined;
    let refusing: Server | undefined;
    const sockets: Socket[] = [];
    afterAll(async () => {
      await gw?.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => (silent ? silent.close(r) : r(undefined)));
      await new Promise((r) => (refusing ? refusing.close(r) : r(undefined)));
    });

    it('scores every Nth message only (probes always); a configured threshold is the exported one', async () => {
      const one = await startTestGateway({ dns, overrides: { delivery: { mxPort: receiver.port }, ...scoring({ sampleEvery: 3, threshold: 12 }) } });
      try {
        expect(await metric(one, /^kurir_rspamd_threshold_score /)).toBe(12);
        const ids: string[] = [];
        for (let i = 0; i < 6; i++) {
          const res = await one.submit({ ...base, to: [`sample${i}@dest.test`] });
          expect(res.status).toBe(202);
          ids.push(res.body.id);
        }
        const scored = await Promise.all(ids.map(async (id) => (await one.status(id)).events.some((e: any) => e.type === 'scored')));
        expect(scored).toEqual([true, false, false, true, false, false]);
        const probe = await one.submit({ ...base, to: ['probe2@dest.test'], tags: ['placement-probe'] });
        expect((await one.status(probe.body.id)).events.some((e: any) => e.type === 'scored')).toBe(true);
      } finally {
        await one.close();
      }
    });

    it('scores at most maxPerSecond sampled messages a second; probes are never held back; a capped sample is no skip', async () => {
      let now = Date.UTC(2026, 10, 30, 6, 0, 0, 100);
      const metrics = createMetrics();
      const config = configSchema.parse(scoring({ maxPerSecond: 2 })).scoring.rspamd;
      const scorer = new PreSendScorer({
        config,
        hostname: 'kurir.example.test',
        bounceDomain: 'bounce.example.test',
        verpSecret: 'v',
        metrics,
        logger: pino({ level: 'silent' }),
        now: () => now,
      });
      const req = (i: number, tags?: string[]) => ({
        id: `capped${String(i).padStart(16, '0')}`,
        domain: 'example.test',
        recipients: [`cap${i}@dest.test`],
        message: Buffer.from(`From: noreply@example.test\r\nTo: cap${i}@dest.test\r\nSubject: Your code\r\n\r\nYour code is ${i}.\r\n`),
        ...(tags ? { tags } : {}),
      });
      const within = [];
      for (let i = 0; i < 5; i++) within.push((await scorer.score(req(i)))?.type ?? null);
      expect(within).toEqual(['scored', 'scored', null, null, null]);
      expect((await scorer.score(req(5, ['placement-probe'])))?.sample).toBe('probe');
      now += 800; // the same second still
      expect(await scorer.score(req(6))).toBeNull();
      now += 100; // the next second begins
      expect((await scorer.score(req(7)))?.sample).toBe('nth');
      const checks = (await metrics.registry.getSingleMetric('kurir_rspamd_checks_total')?.get())?.values.reduce((n, v) => n + v.value, 0);
      expect(checks).toBe(4);
      const skipped = (await metrics.registry.getSingleMetric('kurir_rspamd_skipped_total')?.get())?.values.reduce((n, v) => n + v.value, 0);
      expect(skipped).toBe(0);
    });

    it('accepts and delivers when rspamd refuses connections or does not answer, counting each skip by reason', async () => {
      // A server that resets every connection (as a port with nothing listening would, but one no parallel
      // test can take over between our close and the gateway's connect), then one that never answers.
      refusing = createServer((sock) => sock.resetAndDestroy());
      await new Promise<void>((r) => refusing!.listen(0, '127.0.0.1', r));
      const closedPort = (refusing.address() as { port: number }).port;
      silent = createServer((sock) => sockets.push(sock));
      await new Promise<void>((r) => silent!.listen(0, '127.0.0.1', r));
      const silentPort = (silent.address() as { port: number }).port;

      gw = await startTestGateway({
        dns,
        overrides: { delivery: { mxPort: receiver.port }, ...scoring({ url: `http://127.0.0.1:${closedPort}`, timeoutSeconds: 0.3 }) },
      });
      const res = await gw.submit({ ...base, to: ['down@dest.test'] });
      expect(res.status).toBe(202);
      const s = await gw.waitForStatus(res.body.id, (x) => x.status === 'delivered');
      expect(s.events.map((e: any) => e.type)).toEqual(['queued', 'attempt', 'delivered']);
      expect(await metric(gw, /^kurir_rspamd_skipped_total\{reason="unreachable"\}/)).toBe(1);
      await gw.close();

      gw = await startTestGateway({
        dns,
        overrides: { delivery: { mxPort: receiver.port }, ...scoring({ url: `http://127.0.0.1:${silentPort}`, timeoutSeconds: 0.3 }) },
      });
      const started = Date.now();
      const slow = await gw.submit({ ...base, to: ['silent@dest.test'] });
      const tookMs = Date.now() - started;
      expect(slow.status).toBe(202);
      expect(tookMs).toBeLessThan(2000);
      await gw.waitForStatus(slow.body.id, (x) => x.status === 'delivered');
      expect(await metric(gw, /^kurir_rspamd_skipped_total\{reason="timeout"\}/)).toBe(1);
      expect(await metric(gw, /^kurir_rspamd_skipped_total\{reason="unreachable"\}/)).toBe(0);
    });

    it('still delivers after the real rspamd is stopped', async () => {
      await t.close();
      t = await startTestGateway({ dns, overrides: { delivery: { mxPort: receiver.port }, ...scoring() } });
      t.publishDkim(dns);
      await rspamd.close();
      const res = await t.submit({ ...base, to: ['after-stop@dest.test'] });
      expect(res.status).toBe(202);
      await t.waitForStatus(res.body.id, (x) => x.status === 'delivered');
      expect(await metric(t, /^kurir_rspamd_skipped_total\{reason="unreachable"\}/)).toBe(1);
    });
  });
});
