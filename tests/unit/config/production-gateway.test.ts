/**
 * The mode on a running gateway (real Redis, ephemeral ports): a production-ready config starts and keeps
 * /docs and an open /metrics closed; development answers /docs and /metrics as before.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  mergeConfig,
  PROD_API_KEY,
  PROD_METRICS_TOKEN,
  productionReadyOverrides,
  writeProductionFiles,
  type ProductionFiles,
} from '../../helpers/production-config.js';
import { startTestGateway, type TestGateway } from '../../helpers/test-gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'kurir-prod-gw-'));
let files: ProductionFiles;
const running: TestGateway[] = [];

async function start(mode: 'production' | 'development', extra: Record<string, any> = {}): Promise<TestGateway> {
  const base = mode === 'production' ? { ...productionReadyOverrides(files), mode } : { mode };
  const t = await startTestGateway({ overrides: mergeConfig(base, extra) });
  running.push(t);
  return t;
}

async function get(url: string, token?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, text: await res.text() };
}

beforeAll(async () => {
  files = await writeProductionFiles(dir);
});

afterAll(async () => {
  for (const t of running) await t.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('production mode on a running gateway', () => {
  it('starts with a production-ready config: /docs is 404, /metrics needs the token, the API works', async () => {
    const t = await start('production', { metrics: { token: PROD_METRICS_TOKEN } });
    expect(t.config.mode).toBe('production');
    expect(t.gateway.ports.smtp).toBeGreaterThan(0);
    expect(t.gateway.ports.feedback).toBeGreaterThan(0);
    expect((await get(`${t.url}/docs`)).status).toBe(404);
    expect((await get(`${t.url}/docs/`)).status).toBe(404);
    expect((await get(`${t.url}/docs/json`)).status).toBe(404);
    const open = await get(`${t.url}/metrics`);
    expect(open.status).toBe(401);
    expect(open.text).not.toContain('kurir_');
    expect((await get(`${t.url}/metrics`, 'wrong-token-wrong-token')).status).toBe(401);
    const scraped = await get(`${t.url}/metrics`, PROD_METRICS_TOKEN);
    expect(scraped.status).toBe(200);
    expect(scraped.text).toMatch(/^kurir_redis_up\{redis="main"\} 1$/m);
    expect((await get(`${t.url}/healthz`)).status).toBe(200);
    // The production key is accepted, an unknown one is not.
    expect((await get(`${t.url}/v1/messages/01jzzzzzzzzzzzzzzzzzzzzzzz`, PROD_API_KEY)).status).toBe(404);
    expect((await get(`${t.url}/v1/messages/01jzzzzzzzzzzzzzzzzzzzzzzz`, 'dev-api-key-change-me-0001')).status).toBe(401);
  });

  it('without metrics.token, /metrics is not served on the API port; http.docs: true opens /docs', async () => {
    const t = await start('production', { http: { docs: true } });
    expect((await get(`${t.url}/metrics`)).status).toBe(404);
    expect((await get(`${t.url}/docs/json`)).status).toBe(200);
    expect((await get(`${t.url}/docs/`)).text).toContain('swagger');
  });

  it('a metrics listener of its own on loopback is served without a token; the API port has none', async () => {
    const t = await start('production', { metrics: { port: 0, host: '127.0.0.1' } });
    expect((await get(`${t.url}/metrics`)).status).toBe(404);
    const scraped = await get(`http://127.0.0.1:${t.gateway.ports.metrics}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.text).toMatch(/^kurir_redis_up\{redis="main"\} 1$/m);
  });
});

describe('development mode (the default config) is unchanged', () => {
  it('serves /docs, /docs/json and an open /metrics on the API port', async () => {
    const t = await start('development');
    expect(t.config.mode).toBe('development');
    expect(t.config.http.docs).toBeNull();
    const ui = await get(`${t.url}/docs/`);
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('swagger');
    expect(JSON.parse((await get(`${t.url}/docs/json`)).text).openapi).toMatch(/^3\./);
    const scraped = await get(`${t.url}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.text).toMatch(/^kurir_redis_up\{redis="main"\} 1$/m);
  });

  it('http.docs: false closes /docs in development too', async () => {
    const t = await start('development', { http: { docs: false } });
    expect((await get(`${t.url}/docs/json`)).status).toBe(404);
    expect((await get(`${t.url}/metrics`)).status).toBe(200);
  });
});
