/**
 * Smarthost credentials never in clear: with user/pass, TLS is required and the certificate verified (real
 * receivers on loopback acting as the ESP's submission server, real gateway, real Redis).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { caSignedCert, testCa } from '../helpers/tls.js';

const ESP = { user: 'kurir-relay', pass: 'esp-password-123' };
const message = { from: 'Passport office <noreply@example.test>', subject: 'Your code', text: 'Code: 123456', priority: 'verification' };

let receiver: Receiver | undefined;
let t: TestGateway | undefined;

afterEach(async () => {
  await t?.close();
  await receiver?.close();
  t = receiver = undefined;
});

async function gatewayFor(r: Receiver, smarthost: Record<string, unknown> = {}): Promise<TestGateway> {
  const ca = await testCa();
  return startTestGateway({
    overrides: { delivery: { smarthost: { host: '127.0.0.1', port: r.port, user: ESP.user, pass: ESP.pass, ...smarthost } } },
    gatewayOptions: { trustedCa: [ca.cert] },
  });
}

async function firstDeferral(gw: TestGateway, to: string): Promise<{ status: any; reply: string }> {
  const res = await gw.submit({ ...message, to: [to] });
  expect(res.status).toBe(202);
  const status = await gw.waitForStatus(res.body.id, (s) => s.events.some((e: any) => e.type === 'deferred'));
  return { status, reply: status.events.find((e: any) => e.type === 'deferred').reply };
}

describe('smarthost with credentials', () => {
  it('defers, and never sends AUTH, when the smarthost does not offer STARTTLS', async () => {
    receiver = await startReceiver({ tls: false, auth: ESP });
    t = await gatewayFor(receiver);
    const { status, reply } = await firstDeferral(t, 'guest@dest.test');
    expect(status.recipients['guest@dest.test'].status).toBe('deferred');
    expect(reply).toMatch(/^TLS required \(smarthost with credentials\): 127\.0\.0\.1 does not offer STARTTLS; the message was not sent/);
    expect(receiver.connections).toBeGreaterThan(0);
    expect(receiver.auths).toEqual([]);
    expect(receiver.events.filter((e) => e.stage === 'mail')).toEqual([]);
    expect(receiver.messages).toEqual([]);
  });

  it('defers, and never sends AUTH, when the certificate is not from a trusted CA', async () => {
    receiver = await startReceiver({ auth: ESP }); // STARTTLS with a self-signed certificate
    t = await gatewayFor(receiver);
    const { reply } = await firstDeferral(t, 'guest@dest.test');
    expect(reply).toMatch(/TLS certificate of 127\.0\.0\.1 was refused \(certificate-not-trusted\)/);
    expect(receiver.auths).toEqual([]);
    expect(receiver.messages).toEqual([]);
  });

  it('delivers with AUTH over verified STARTTLS', async () => {
    receiver = await startReceiver({ auth: ESP, cert: await caSignedCert('smtp.esp.test') });
    t = await gatewayFor(receiver);
    const res = await t.submit({ ...message, to: ['guest@dest.test'] });
    await t.waitForStatus(res.body.id, (s) => s.status === 'delivered');
    expect(receiver.auths).toEqual([{ user: ESP.user, secure: true }]);
    expect(receiver.messages).toHaveLength(1);
    expect(receiver.messages[0].secure).toBe(true);
  });

  it('honours a written opt-out to a loopback relay: requireTls false sends AUTH without STARTTLS', async () => {
    receiver = await startReceiver({ tls: false, auth: ESP });
    t = await gatewayFor(receiver, { requireTls: false });
    const res = await t.submit({ ...message, to: ['guest@dest.test'] });
    await t.waitForStatus(res.body.id, (s) => s.status === 'delivered');
    expect(receiver.auths).toEqual([{ user: ESP.user, secure: false }]);
  });
});
