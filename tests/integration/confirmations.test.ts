/**
 * Verification confirmations end to end: a real gateway delivers to a receiver on loopback, the booking
 * system confirms by id and by confirmToken, and the counters that feed the confirmation-rate alert move:
 * delivered verification recipients (the denominator) and confirmations, per provider and sender domain.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { API_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { closeAll } from '../helpers/close-all.js';

let dns: DnsServer;
let receiver: Receiver;
let t: TestGateway;
const MARGIN_SECONDS = 1;

beforeAll(async () => {
  receiver = await startReceiver({ hostname: 'mx.gmail.test' });
  dns = await startDnsServer({
    'gmail.test': { MX: [{ exchange: 'mx.gmail.test', priority: 10 }] },
    'dest.test': { MX: [{ exchange: 'mx.gmail.test', priority: 10 }] },
    'mx.gmail.test': { A: ['127.0.0.1'] },
  });
  t = await startTestGateway({
    dns,
    overrides: {
      delivery: { mxPort: receiver.port },
      shaping: { providers: [{ provider: 'gmail', domains: ['gmail.test'] }] },
      placement: { confirm: { marginSeconds: MARGIN_SECONDS } },
    },
  });
});

afterAll(() => closeAll(t, receiver, dns));

const auth = { authorization: `Bearer ${API_KEY}` };
const base = { from: 'Passport office <noreply@example.test>', subject: 'Your code', text: 'Code: 123456', priority: 'verification' };
const post = async (path: string): Promise<{ status: number; body: any }> => {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: auth });
  return { status: res.status, body: await res.json() };
};
async function metric(line: RegExp): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').pop()) : NaN;
}

describe('verification confirmations', () => {
  it('confirms a delivered message once, by id and by confirmToken, and counts it for its provider and sender domain', async () => {
    const sent = await t.submit({ ...base, to: ['applicant@gmail.test'] });
    expect(sent.status).toBe(202);
    expect(sent.body.confirmToken).toMatch(new RegExp(`^${sent.body.id}\\.[A-Za-z0-9_-]{22}$`));
    await t.waitForStatus(sent.body.id, (s) => s.status === 'delivered');
    expect(await metric(/^kurir_placement_verifications_delivered_total\{provider="gmail",domain="example.test"\}/)).toBe(1);

    const first = await post(`/v1/messages/${sent.body.id}/confirm`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id: sent.body.id, confirmed: true, duplicate: false });
    const again = await post(`/v1/messages/${sent.body.id}/confirm`);
    expect(again.body).toEqual({ ...first.body, duplicate: true });
    const byToken = await post(`/v1/confirmations/${sent.body.confirmToken}`);
    expect(byToken.status).toBe(200);
    expect(byToken.body).toEqual({ ...first.body, duplicate: true });

    expect(await metric(/^kurir_placement_confirmations_total\{provider="gmail",domain="example.test"\}/)).toBe(1);
    expect(await metric(/^kurir_placement_time_to_confirm_seconds_count\{provider="gmail"\}/)).toBe(1);
    const view = await t.status(sent.body.id);
    const confirmed = view.events.filter((e: any) => e.type === 'confirmed');
    expect(confirmed).toHaveLength(1);
    expect(confirmed[0]).toMatchObject({ provider: 'gmail', via: 'id', recipients: ['applicant@gmail.test'] });
    expect(confirmed[0].secondsAfterDelivery).toBeGreaterThanOrEqual(0);
  });

  it('refuses unknown ids and tokens (404 naming the field), and messages past their TTL plus the margin (410)', async () => {
    const unknown = await post('/v1/messages/0000000000aaaaaaaaaaaa/confirm');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'NOT_FOUND', field: 'id' });
    const sent = await t.submit({ ...base, to: ['late@dest.test'], ttl: 1 });
    expect(sent.status).toBe(202);
    const forged = await post(`/v1/confirmations/${sent.body.id}.AAAAAAAAAAAAAAAAAAAAAA`);
    expect(forged.status).toBe(404);
    expect(forged.body.error).toMatchObject({ code: 'NOT_FOUND', field: 'token' });
    await new Promise((r) => setTimeout(r, (1 + MARGIN_SECONDS) * 1000 + 300));
    const late = await post(`/v1/confirmations/${sent.body.confirmToken}`);
    expect(late.status).toBe(410);
    expect(late.body.error).toMatchObject({ code: 'CONFIRM_TOO_LATE', field: 'token' });
    expect(await metric(/^kurir_placement_confirmations_total\{provider="other",domain="example.test"\}/)).toBe(0);
  });

  it('confirms a batch in one request, each item answered on its own; a malformed batch is refused whole', async () => {
    const a = await t.submit({ ...base, to: ['batch-a@gmail.test'] });
    const b = await t.submit({ ...base, to: ['batch-b@gmail.test'] });
    for (const s of [a, b]) await t.waitForStatus(s.body.id, (x) => x.status === 'delivered');
    const before = await metric(/^kurir_placement_confirmations_total\{provider="gmail",domain="example.test"\}/);
    const batch = async (body: unknown) => {
      const res = await fetch(`${t.url}/v1/confirmations`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    const res = await batch({
      items: [{ id: a.body.id }, { token: b.body.confirmToken }, { id: a.body.id }, { id: '0000000000aaaaaaaaaaaa' }, { token: 'nope.AAAA' }, {}],
    });
    expect(res.status).toBe(200);
    const [first, byToken, repeat, unknown, badToken, neither] = res.body.results;
    expect(first).toMatchObject({ id: a.body.id, status: 200, confirmed: true });
    expect(byToken).toMatchObject({ token: b.body.confirmToken, id: b.body.id, status: 200, confirmed: true, duplicate: false });
    // The same message twice in one batch counts once: one of the two answers is the repeat.
    expect([first.duplicate, repeat.duplicate].sort()).toEqual([false, true]);
    expect(unknown).toMatchObject({ status: 404, error: { code: 'NOT_FOUND' } });
    expect(badToken).toMatchObject({ token: 'nope.AAAA', status: 404 });
    expect(neither).toMatchObject({ status: 400, error: { code: 'VALIDATION' } });
    expect(await metric(/^kurir_placement_confirmations_total\{provider="gmail",domain="example.test"\}/)).toBe(before + 2);

    const empty = await batch({ items: [] });
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe('VALIDATION');
    const tooMany = await batch({ items: Array.from({ length: 1001 }, () => ({ id: a.body.id })) });
    expect(tooMany.status).toBe(400);
    expect(await metric(/^kurir_placement_confirmations_total\{provider="gmail",domain="example.test"\}/)).toBe(before + 2);
  });
});
