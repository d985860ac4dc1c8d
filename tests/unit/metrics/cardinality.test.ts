import { describe, expect, it } from 'vitest';
import { REPORTERS, createLabelCap, createMetrics, replyCodeLabel, reporterLabel } from '../../../src/metrics/metrics.js';
import { MAX_DOMAIN_LABELS } from '../../../src/feedback/aggregate/report-ingest.js';
import { createProviderMap } from '../../../src/metrics/provider.js';

/** Distinct values of one label across every series of every metric in the registry. */
async function labelValues(m: ReturnType<typeof createMetrics>, label: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const { name } of m.registry.getMetricsAsArray()) {
    for (const v of (await m.registry.getSingleMetric(name)!.get()).values) {
      const value = (v.labels as Record<string, string | number | undefined>)[label];
      if (value !== undefined) out.add(String(value));
    }
  }
  return out;
}

describe('label cardinality', () => {
  it('stays bounded by the provider map when 10,000 distinct recipient domains are used', async () => {
    const providers = createProviderMap();
    const m = createMetrics({ defaultMetrics: false, providers: providers.names() });
    const real = ['gmail.com', 'hotmail.co.uk', 'yahoo.fr', 'icloud.com', 'outlook.com'];
    const results = ['delivered', 'deferred', 'bounced', 'expired'] as const;

    for (let i = 0; i < 10_000; i++) {
      const domain = i % 10 === 0 ? real[(i / 10) % real.length] : `booking-${i}.example`;
      const provider = providers.byDomain(`guest${i}@${domain}`);
      const result = results[i % results.length];
      m.deliveryAttempts.inc({ provider, result, category: result === 'delivered' ? 'none' : 'other' });
      m.deliveryTime.observe({ priority: 'verification', provider }, (i % 600) / 2);
      m.deliveryTls.inc({ provider, tls: i % 3 === 0 ? 'no' : 'yes' });
      m.tlsFailures.inc({ provider, result_type: i % 2 ? 'starttls-not-supported' : 'certificate-host-mismatch' });
      m.deliveryReplies.inc({ provider, code: replyCodeLabel(i % 2 ? 250 : 451) });
      m.complaints.inc({ provider });
      m.bounces.inc({ provider, category: 'invalid-recipient', type: 'hard' });
      m.placement.inc({ provider, folder: 'inbox' });
      m.confirmations.inc({ provider, domain: 'example.test' });
      m.timeToConfirm.observe({ provider }, 60);
      m.shapingRate.set({ provider }, 60);
    }

    const seen = await labelValues(m, 'provider');
    expect(seen.size).toBeLessThanOrEqual(providers.names().length);
    expect([...seen].sort()).toEqual([...providers.names()].sort());

    // no label anywhere carries an address or a per-recipient domain
    const text = await m.render();
    expect(text).not.toMatch(/@|booking-\d+/);
    // the whole exposition stays small: series count does not grow with recipients
    const series = text.split('\n').filter((l) => l && !l.startsWith('#')).length;
    expect(series).toBeLessThan(1500);
  });

  it('keeps report labels bounded: 10,000 reporting organisations and sender domains', async () => {
    const m = createMetrics({ defaultMetrics: false });
    const domainLabel = createLabelCap(MAX_DOMAIN_LABELS);
    const orgs = ['google.com', 'Enterprise Outlook', 'Yahoo', 'Mail.Ru', 'comcast.net', 'Yandex'];
    for (let i = 0; i < 10_000; i++) {
      const reporter = reporterLabel(i % 7 === 0 ? orgs[(i / 7) % orgs.length] : `Reporter ${i} GmbH`, `dmarc@reporter-${i}.example`);
      const domain = domainLabel(`sender-${i}.example`);
      m.reportsReceived.inc({ kind: i % 2 ? 'dmarc' : 'tlsrpt', reporter, result: 'applied' });
      m.dmarcMessages.inc({ domain, reporter, source: i % 3 ? 'own' : 'foreign', dmarc: i % 5 ? 'pass' : 'fail' });
      m.dmarcOwnFailures.inc({ domain, reporter, check: 'dkim' });
      m.tlsRptFailures.inc({ domain, reporter, result_type: 'certificate-expired' });
    }
    const reporters = await labelValues(m, 'reporter');
    expect([...reporters].every((r) => (REPORTERS as readonly string[]).includes(r))).toBe(true);
    expect(reporters).toEqual(new Set(['google', 'microsoft', 'yahoo', 'mailru', 'comcast', 'yandex', 'other']));
    const domains = await labelValues(m, 'domain');
    expect(domains.size).toBe(MAX_DOMAIN_LABELS + 1);
    expect(domains.has('other')).toBe(true);
  });
});
