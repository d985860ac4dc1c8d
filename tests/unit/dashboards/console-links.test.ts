import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DASHBOARDS, dashboardLinks, dashboardUrl } from '../../../src/http/console/grafana.js';

const shipped = readdirSync('dashboards/grafana')
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(`dashboards/grafana/${f}`, 'utf8')) as { uid: string; templating?: { list?: Array<{ name: string }> } });

describe('console links into the shipped Grafana dashboards', () => {
  it('names every shipped dashboard by its uid, and the provider variable exactly where the JSON has it', () => {
    expect(
      Object.values(DASHBOARDS)
        .map((d) => d.uid)
        .sort(),
    ).toEqual(shipped.map((d) => d.uid).sort());
    for (const d of Object.values(DASHBOARDS)) {
      const json = shipped.find((s) => s.uid === d.uid)!;
      expect((json.templating?.list ?? []).some((v) => v.name === 'provider')).toBe(d.provider);
    }
  });

  it('builds /d/<uid> URLs with the provider as a template variable only where the dashboard has one', () => {
    expect(dashboardUrl('https://grafana.example.net/', 'delivery', 'gmail')).toBe(
      'https://grafana.example.net/d/kurir-delivery?from=now-6h&to=now&var-provider=gmail',
    );
    expect(dashboardUrl('https://grafana.example.net', 'admin', 'gmail')).toBe('https://grafana.example.net/d/kurir-admin?from=now-6h&to=now');
  });

  it('renders no link without a Grafana URL, and escaped links with one', () => {
    expect(dashboardLinks(null, ['overview']).markup).toBe('');
    const links = dashboardLinks('https://g.example', ['overview', 'delivery'], 'gmail').markup;
    expect(links).toContain('href="https://g.example/d/kurir-delivery?from=now-6h&amp;to=now&amp;var-provider=gmail"');
    expect(links).toContain('>Overview dashboard for gmail</a>');
  });
});
