import { afterAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const TOKEN = 'scrape-token-0123456789';
const started: TestGateway[] = [];
afterAll(async () => {
  for (const t of started) await t.close();
});

describe('/metrics exposure', () => {
  it('is served on the API port by default, with build info and Redis state', async () => {
    const t = await startTestGateway({ overrides: { roles: ['api'], smtp: { enabled: false } } });
    started.push(t);
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^kurir_build_info\{version="0\.1\.0",node="v\d+/m);
    expect(text).toMatch(/^kurir_redis_up\{redis="main"\} 1$/m);
    // redis.durability standard: no fsync gauge, whose 0 would say intake refuses (tests/integration/durability.test.ts: fsync).
    expect(text).not.toMatch(/^kurir_redis_fsync_ok/m);
  });

  it('counts refusals made before the intake policy (auth, JSON parsing) once each', async () => {
    const t = started[0];
    await fetch(`${t.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: 'Bearer nope-nope-nope-nope', 'content-type': 'application/json' },
      body: '{}',
    });
    await t.submit({ from: 'noreply@example.test', to: ['a@b.test'], text: 'x', ttl: 'soon' });
    await t.submit({ from: 'noreply@other.test', to: ['a@b.test'], text: 'x' });
    const text = await (await fetch(`${t.url}/metrics`)).text();
    expect(text).toMatch(/^kurir_intake_messages_refused_total\{interface="http",reason="AUTH_FAILED"\} 1$/m);
    expect(text).toMatch(/^kurir_intake_messages_refused_total\{interface="http",reason="VALIDATION"\} 1$/m);
    expect(text).toMatch(/^kurir_intake_messages_refused_total\{interface="http",reason="SENDER_NOT_ALLOWED"\} 1$/m);
  });

  it('requires the bearer token when one is configured', async () => {
    const t = await startTestGateway({ overrides: { roles: ['api'], smtp: { enabled: false }, metrics: { token: TOKEN } } });
    started.push(t);
    expect((await fetch(`${t.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${t.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
    const ok = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('kurir_intake_messages_accepted_total');
  });

  it('moves to its own port when metrics.port is set, and leaves the API port', async () => {
    const t = await startTestGateway({ overrides: { roles: ['api'], smtp: { enabled: false }, metrics: { port: 0, token: TOKEN } } });
    started.push(t);
    const port = t.gateway.ports.metrics;
    expect(port).toBeGreaterThan(0);
    expect((await fetch(`${t.url}/metrics`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(401);
    const ok = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await ok.text()).toContain('kurir_redis_up{redis="main"} 1');
  });
});
