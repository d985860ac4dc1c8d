/**
 * A sender domain added through the API (not in the config file) has its per-domain metric series pre-set at 0
 * when a gateway starts, and as soon as it is added, like a configured domain. Until 1 Dec 2026 only configured
 * domains were: after a restart a runtime domain's confirmations series did not exist until someone confirmed,
 * so when nobody did, KurirConfirmationRateBelowBaseline had no sample to fire on (the promtool test "zero
 * confirmations after a restart, for a runtime-managed sender domain only" in dashboards/alerts-weekly.test.yml
 * shows the alert firing on the series at 0 and silent without it). Real gateways, real Redis, one prefix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest, dropPrefix, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { until } from '../helpers/until.js';

const PREFIX = `kurir-test-rtseries-${process.pid}`;
const MASTER_KEY = 'b1c2d3e4f5a60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f91';
const overrides = { domainKeys: { masterKey: MASTER_KEY, refreshSeconds: 0.2 } };
let first: TestGateway | undefined;
let second: TestGateway | undefined;

const scrape = async (t: TestGateway): Promise<string> => (await fetch(`${t.url}/metrics`)).text();
/** The exposition lines of `metric` for sender domain `domain`. */
const linesOf = (text: string, metric: string, domain: string): string[] =>
  text.split('\n').filter((l) => l.startsWith(`${metric}{`) && l.includes(`domain="${domain}"`));

beforeAll(async () => {
  first = await startTestGateway({ prefix: PREFIX, overrides });
}, 30_000);

afterAll(async () => {
  await first?.close();
  await second?.close();
  await dropPrefix(PREFIX);
});

describe('metric series of runtime-managed sender domains', () => {
  it('are pre-set at 0 when the domain is added, and again by a gateway started afterwards', async () => {
    const gw = first as TestGateway;
    const added = await adminRequest(gw.url, 'POST', '/v1/domains', { name: 'runtime.test' });
    expect(added.status).toBe(201);
    await until(async () => linesOf(await scrape(gw), 'kurir_placement_confirmations_total', 'runtime.test').length > 0, 5000, 'series of the added domain');

    // The restart: a new process, with counters that start empty; the domain is only in Redis.
    await gw.close();
    first = undefined;
    expect(gw.config.domains.map((d) => d.name)).not.toContain('runtime.test');
    second = await startTestGateway({ prefix: PREFIX, overrides });
    const text = await scrape(second);
    const providers = ['gmail', 'microsoft', 'yahoo', 'apple', 'other'];
    for (const metric of ['kurir_placement_confirmations_total', 'kurir_placement_verifications_delivered_total']) {
      const lines = linesOf(text, metric, 'runtime.test');
      for (const provider of providers) expect(lines, `${metric} ${provider}`).toContain(`${metric}{provider="${provider}",domain="runtime.test"} 0`);
    }
    expect(linesOf(text, 'kurir_rspamd_over_threshold_total', 'runtime.test')).toEqual(['kurir_rspamd_over_threshold_total{domain="runtime.test"} 0']);
    // The configured domain as before.
    expect(linesOf(text, 'kurir_placement_confirmations_total', 'example.test')).toContain(
      'kurir_placement_confirmations_total{provider="gmail",domain="example.test"} 0',
    );
  });
});
