/**
 * Webhooks end to end: real gateway, DNS on loopback, an SMTP receiver as the recipients' MX, and a
 * node:http receiver on 127.0.0.1 as the booking system. Events arrive signed (checked with docs/webhooks.md's
 * verification snippet); a failing receiver gets retries with backoff, then the key's webhook is
 * paused (visible in GET /v1/webhooks): its events are held and probed until the receiver answers again.
 * A recipient of an SMTP message left out at the end of DATA (suppressed since its RCPT TO) is a `suppressed` event
 * with source `intake`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { SUPPRESSION_CHECK_FRESH_MS } from '../../src/intake/submission.js';
import { SmtpDialog } from '../helpers/smtp-dialog.js';
import { ADMIN_KEY, API_KEY, SMTP_USER, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { until } from '../helpers/until.js';
import { closeAll } from '../helpers/close-all.js';

const SECRET = 'whsec-test-0123456789abcdef';

// The verification snippet of docs/webhooks.md, verbatim apart from the types.
function verifyKurirSignature(rawBody: string | Buffer, header: string | undefined, secret: string, toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries(
    String(header ?? '')
      .split(',')
      .map((kv) => kv.trim().split('=', 2)),
  );
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
  const given = Buffer.from(parts.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

let dns: DnsServer;
let mx: Receiver;
let hooks: WebhookReceiver;
let t: TestGateway;

const base = { from: 'Passport office <noreply@example.test>', subject: 'Your code', text: 'Code: 123456', priority: 'verification' };

async function api(method: string, path: string, key = API_KEY): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: res.status === 204 ? null : await res.json() };
}

beforeAll(async () => {
  mx = await startReceiver({
    hostname: 'mx.dest.test',
    rules: { 'nobody@dest.test': { code: 550, message: '5.1.1 The email account that you tried to reach does not exist' } },
  });
  dns = await startDnsServer({
    'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] },
    'mx.dest.test': { A: ['127.0.0.1'] },
  });
  hooks = await startWebhookReceiver();
  t = await startTestGateway({
    dns,
    overrides: {
      delivery: { mxPort: mx.port },
      apiKeys: [
        {
          name: 'booking-dev',
          key: API_KEY,
          domains: ['example.test'],
          webhook: { url: hooks.url, secret: SECRET, events: ['delivered', 'bounced', 'complained', 'suppressed', 'expired'] },
        },
        { name: 'admin-dev', key: ADMIN_KEY, domains: ['*'], admin: true },
      ],
      webhooks: { maxAttempts: 3, backoffSeconds: 0.2, disableAfterFailures: 5, timeoutSeconds: 2, pausedRetrySeconds: 0.5 },
    },
  });
  t.publishDkim(dns);
});

afterAll(() => closeAll(t, hooks, mx, dns));

describe('webhooks to the booking system', () => {
  it('POSTs a signed `delivered` event for a delivered message', async () => {
    const res = await t.submit({ ...base, to: ['alice@dest.test'], tags: ['code'], metadata: { booking: '4711' } });
    expect(res.status).toBe(202);
    const id = res.body.id;
    const [hit] = await hooks.waitFor((b) => b?.messageId === id && b.type === 'delivered');
    expect(verifyKurirSignature(hit.raw, hit.headers['kurir-signature'] as string, SECRET)).toBe(true);
    expect(verifyKurirSignature(hit.raw, hit.headers['kurir-signature'] as string, 'another-secret-0123456789')).toBe(false);
    expect(verifyKurirSignature(`${hit.raw} `, hit.headers['kurir-signature'] as string, SECRET)).toBe(false);
    expect(hit.headers['kurir-signature']).toMatch(/^t=\d{10},v1=[0-9a-f]{64}$/);
    expect(hit.headers['content-type']).toBe('application/json');
    expect(hit.headers['kurir-event-id']).toBe(hit.body.id);
    expect(hit.body).toMatchObject({
      type: 'delivered',
      messageId: id,
      recipient: 'alice@dest.test',
      recipients: ['alice@dest.test'],
      tags: ['code'],
      metadata: { booking: '4711' },
    });
    expect(hit.body.id).toMatch(new RegExp(`^${id}\\.\\d+$`));
    expect(new Date(hit.body.at).toISOString()).toBe(hit.body.at);
    expect(hit.body.reply).toMatch(/^250/);
    expect(JSON.stringify(hit.body)).not.toContain(SECRET);
    // A stale timestamp is refused by the snippet even with a valid MAC.
    const old = Math.floor(Date.now() / 1000) - 301;
    const mac = createHmac('sha256', SECRET).update(`${old}.${hit.raw}`).digest('hex');
    expect(verifyKurirSignature(hit.raw, `t=${old},v1=${mac}`, SECRET)).toBe(false);
  });

  it('POSTs a `bounced` event with the remote reply when the receiver refuses with 550 5.1.1', async () => {
    const res = await t.submit({ ...base, to: ['nobody@dest.test'] });
    const id = res.body.id;
    const [hit] = await hooks.waitFor((b) => b?.messageId === id && b.type === 'bounced');
    expect(verifyKurirSignature(hit.raw, hit.headers['kurir-signature'] as string, SECRET)).toBe(true);
    expect(hit.body).toMatchObject({ type: 'bounced', messageId: id, recipient: 'nobody@dest.test' });
    expect(hit.body.reply).toMatch(/^550 5\.1\.1/);
    // The hard bounce suppresses the address, and that is an event of its own. Waiting for it here also keeps it
    // out of the next test, which makes the receiver fail and counts the failures.
    const [suppressed] = await hooks.waitFor((b) => b?.messageId === id && b.type === 'suppressed');
    expect(suppressed.body).toMatchObject({ type: 'suppressed', messageId: id, recipient: 'nobody@dest.test' });
    // Only subscribed types are sent: this key did not ask for `deferred`.
    expect(hooks.matching((b) => b?.type === 'deferred')).toHaveLength(0);
  });

  it('retries a failing receiver with backoff, then pauses the webhook and holds its events; the first probe the receiver takes resumes it', async () => {
    const state0 = await api('GET', '/v1/webhooks');
    expect(state0.body).toMatchObject({ key: 'booking-dev', configured: true, url: hooks.url, disabled: false, consecutiveFailures: 0 });

    hooks.status = 500;
    const first = (await t.submit({ ...base, to: ['carol@dest.test'] })).body.id;
    // maxAttempts 3: the event is tried three times, with growing gaps (0.2 s, 0.4 s); then it is held and tried
    // every pausedRetrySeconds (0.5 s), never given up while its message is stored (until 1 Dec 2026 it was).
    const tries = await hooks.waitFor((b) => b?.messageId === first && b.type === 'delivered', 4);
    expect(new Set(tries.map((x) => x.body.id)).size).toBe(1);
    const gaps = [1, 2, 3].map((i) => tries[i].receivedAt - tries[i - 1].receivedAt);
    expect(gaps[0]).toBeGreaterThanOrEqual(150);
    expect(gaps[1]).toBeGreaterThanOrEqual(350);
    expect(gaps[2]).toBeGreaterThanOrEqual(400);
    expect(await t.gateway.metrics.render()).toMatch(/^kurir_webhooks_total\{result="held"\} [1-9]/m);

    // Five failures in a row (the fifth try of the first event, or the second event's first): the webhook is
    // paused ("disabled"); every event of the key is held from then on.
    const second = (await t.submit({ ...base, to: ['dave@dest.test'] })).body.id;
    let state = await api('GET', '/v1/webhooks');
    const deadline = Date.now() + 5000;
    while (!(state = await api('GET', '/v1/webhooks')).body.disabled && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(state.body.disabled).toBe(true);
    expect(state.body.reason).toMatch(/5 consecutive failed deliveries; last: HTTP 500/);
    expect(Date.parse(state.body.disabledAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(await t.gateway.metrics.render()).toMatch(/^kurir_webhooks_disabled_total 1$/m);

    const log = await api('GET', '/v1/webhooks/deliveries?limit=5');
    expect(log.status).toBe(200);
    expect(log.body.items).toHaveLength(5);
    expect(log.body.items.every((a: any) => a.result === 'failed' && a.statusCode === 500 && a.error === 'HTTP 500')).toBe(true);
    expect(log.body.items.slice(-3).map((a: any) => [a.messageId, a.attempt])).toEqual([
      [first, 3],
      [first, 2],
      [first, 1],
    ]);

    // While paused, events are held, not dropped: at most one per pausedRetrySeconds (0.5 s) is tried, as a probe.
    const third = (await t.submit({ ...base, to: ['erin@dest.test'] })).body.id;
    await t.waitForStatus(third, (s) => s.status === 'delivered');
    const pausedAt = hooks.requests.length;
    await new Promise((r) => setTimeout(r, 1600));
    expect(hooks.requests.length - pausedAt).toBeLessThanOrEqual(4);
    expect((await api('GET', '/v1/webhooks')).body.disabled).toBe(true);
    expect(await t.gateway.metrics.render()).toMatch(/^kurir_webhooks_total\{result="held"\} [1-9]/m);

    // The receiver is back: the next probe succeeds and resumes the webhook by itself, and every held event arrives
    // (until 1 Dec 2026 they were dropped, and only POST /v1/webhooks/enable brought later ones back).
    hooks.status = 200;
    const [thirdOk] = await hooks.waitFor((b, r) => b?.messageId === third && r.status === 200, 1, 10_000);
    await hooks.waitFor((b, r) => b?.messageId === second && r.status === 200, 1, 10_000);
    expect(verifyKurirSignature(thirdOk.raw, thirdOk.headers['kurir-signature'] as string, SECRET)).toBe(true);
    expect((await api('GET', '/v1/webhooks')).body).toMatchObject({ disabled: false, reason: null, consecutiveFailures: 0 });

    // Another key may not look at or re-enable it; the key itself (or an admin) may (a no-op now it runs again).
    expect((await api('POST', '/v1/webhooks/enable?key=admin-dev')).status).toBe(403);
    expect((await api('POST', '/v1/webhooks/enable')).body).toEqual({ key: 'booking-dev', wasDisabled: false });

    const fourth = (await t.submit({ ...base, to: ['frank@dest.test'] })).body.id;
    const [ok] = await hooks.waitFor((b) => b?.messageId === fourth && b.type === 'delivered');
    expect(ok.status).toBe(200);
    // The log entry is written after the receiver answered, and held events of the first messages may still be
    // arriving beside it: look for the fourth's entry rather than taking the latest.
    const entry = await until(
      async () => (await api('GET', '/v1/webhooks/deliveries?limit=20')).body.items.find((a: any) => a.messageId === fourth),
      5000,
      "the fourth event's log entry",
    );
    expect(entry).toMatchObject({ messageId: fourth, result: 'sent', statusCode: 200, attempt: 1 });
  });

  it('lets admins look at another key; keys without a webhook say so', async () => {
    const asAdmin = await api('GET', '/v1/webhooks?key=booking-dev', ADMIN_KEY);
    expect(asAdmin.body).toMatchObject({ key: 'booking-dev', configured: true, disabled: false });
    expect((await api('GET', '/v1/webhooks', ADMIN_KEY)).body).toMatchObject({ key: 'admin-dev', configured: false });
    expect((await api('GET', '/v1/webhooks?key=admin-dev')).status).toBe(403);
    expect((await api('POST', '/v1/webhooks/enable', ADMIN_KEY)).status).toBe(404);
    expect((await fetch(`${t.url}/v1/webhooks`)).status).toBe(401);
  });

  it('tells the booking system of an SMTP recipient left out because it was suppressed after its RCPT TO', async () => {
    const d = await SmtpDialog.open(t.gateway.ports.smtp!);
    expect(await d.auth(SMTP_USER.user, SMTP_USER.pass)).toMatch(/^235 /);
    await d.startMessage('noreply@example.test', ['grace@dest.test', 'left-out@dest.test']);
    await t.gateway.suppressions.add({ address: 'left-out@dest.test', reason: 'invalid-recipient', source: 'dsn', at: Date.now() });
    // A slow client: the RCPT TO check no longer stands for the message, so the end of DATA reads the list again.
    await new Promise((r) => setTimeout(r, SUPPRESSION_CHECK_FRESH_MS + 200));
    const reply = await d.cmd('From: noreply@example.test\r\nTo: grace@dest.test, left-out@dest.test\r\nSubject: Your code\r\n\r\nCode: 1\r\n.');
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    d.close();
    const id = reply.split(' ').pop();
    const [left] = await hooks.waitFor((b) => b?.messageId === id && b.type === 'suppressed');
    expect(left.body).toMatchObject({ recipient: 'left-out@dest.test', reason: 'invalid-recipient', source: 'intake' });
    const [sent] = await hooks.waitFor((b) => b?.messageId === id && b.type === 'delivered');
    expect(sent.body.recipients).toEqual(['grace@dest.test']);
  }, 20_000);
});
