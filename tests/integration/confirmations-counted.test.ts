/**
 * Confirmations outside the confirmation rate's denominator (delivered, non-probe `verification` messages) are
 * answered (200, idempotent) with `counted: false` and recorded on the timeline, but not counted in
 * kurir_placement_confirmations_total nor in the incident window. Until 1 Dec 2026 a confirmation of any message
 * (normal, bulk, bounced, a placement probe) was counted against verification deliveries only.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_KEY, API_KEY, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { closeAll } from '../helpers/close-all.js';

let dns: DnsServer;
let receiver: Receiver;
let t: TestGateway;

beforeAll(async () => {
  receiver = await startReceiver({
    hostname: 'mx.gmail.test',
    script: (ctx) => (ctx.stage === 'rcpt' && ctx.address?.startsWith('bounce') ? { code: 550, message: '5.1.1 no such user' } : undefined),
  });
  dns = await startDnsServer({ 'gmail.test': { MX: [{ exchange: 'mx.gmail.test', priority: 10 }] }, 'mx.gmail.test': { A: ['127.0.0.1'] } });
  t = await startTestGateway({
    dns,
    overrides: { delivery: { mxPort: receiver.port }, shaping: { providers: [{ provider: 'gmail', domains: ['gmail.test'] }] } },
  });
});

afterAll(() => closeAll(t, receiver, dns));

async function metric(re: RegExp): Promise<number> {
  const line = (await (await fetch(`${t.url}/metrics`)).text()).split('\n').find((l) => re.test(l));
  return line ? Number(line.split(' ').pop()) : 0;
}

const confirm = async (id: string): Promise<{ status: number; body: Record<string, unknown> }> => {
  const r = await fetch(`${t.url}/v1/messages/${id}/confirm`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

it('answers every confirmation but counts only delivered, non-probe verification messages', async () => {
  const base = { from: 'noreply@example.test', subject: 's', text: 't' };
  const cases = [
    { to: 'a@gmail.test', priority: 'normal', counted: false },
    { to: 'b@gmail.test', priority: 'bulk', counted: false },
    { to: 'bounce@gmail.test', priority: 'verification', counted: false },
    { to: 'c@gmail.test', priority: 'verification', tags: ['placement-probe'], counted: false },
    { to: 'd@gmail.test', priority: 'verification', counted: true },
  ] as const;
  const ids: string[] = [];
  for (const c of cases) {
    const s = await t.submit({ ...base, to: [c.to], priority: c.priority, ...('tags' in c ? { tags: [...c.tags] } : {}) });
    expect(s.status).toBe(202);
    await t.waitForStatus(s.body.id, (x) => x.status === 'delivered' || x.status === 'bounced');
    ids.push(s.body.id);
  }
  for (const [n, id] of ids.entries()) {
    const first = await confirm(id);
    expect(first).toMatchObject({ status: 200, body: { id, confirmed: true, duplicate: false, counted: cases[n].counted } });
    const again = await confirm(id);
    expect(again).toMatchObject({ status: 200, body: { id, duplicate: true, counted: cases[n].counted } });
  }
  const msg = await (await fetch(`${t.url}/v1/messages/${ids[0]}`, { headers: { authorization: `Bearer ${API_KEY}` } })).json();
  expect(msg.events.find((e: { type: string }) => e.type === 'confirmed')).toMatchObject({ counted: false });

  expect(await metric(/^kurir_placement_verifications_delivered_total\{provider="gmail",domain="example.test"\}/)).toBe(1);
  expect(await metric(/^kurir_placement_confirmations_total\{provider="gmail",domain="example.test"\}/)).toBe(1);
  const inc = await (await fetch(`${t.url}/v1/incidents`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json();
  const facts = inc.providers.find((p: { provider: string }) => p.provider === 'gmail')?.facts.confirmations;
  expect(facts).toMatchObject({ delivered: 1, confirmed: 1 });
}, 60_000);
