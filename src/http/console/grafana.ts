/**
 * Links from the console into the Grafana dashboards shipped in dashboards/grafana/ (`console.grafanaUrl`;
 * none without it). The uids and the `provider` template variable are those of the JSON files:
 * tests/unit/dashboards/console-links.test.ts reads the files and fails when they drift apart.
 */
import { html, type Html } from './html.js';

/** The shipped dashboards: uid, title, and whether it has the `provider` variable. */
export const DASHBOARDS = {
  overview: { uid: 'kurir-overview', title: 'Overview', provider: true },
  delivery: { uid: 'kurir-delivery', title: 'Delivery', provider: true },
  admin: { uid: 'kurir-admin', title: 'Admin', provider: false },
} as const;

export type DashboardName = keyof typeof DASHBOARDS;

/** The URL of a dashboard over the last 6 hours, for one provider when the dashboard can filter by it. */
export function dashboardUrl(base: string, name: DashboardName, provider?: string): string {
  const d = DASHBOARDS[name];
  const query = new URLSearchParams({ from: 'now-6h', to: 'now' });
  if (provider && d.provider) query.set('var-provider', provider);
  return `${base.replace(/\/+$/, '')}/d/${d.uid}?${query.toString()}`;
}

/** Links to the given dashboards (for one provider when given); empty without a Grafana URL. */
export function dashboardLinks(base: string | null | undefined, names: DashboardName[], provider?: string): Html {
  if (!base) return html``;
  const links = names.map((n) => {
    const label = provider ? `${DASHBOARDS[n].title} dashboard for ${provider}` : `${DASHBOARDS[n].title} dashboard`;
    return html`<a href="${dashboardUrl(base, n, provider)}" rel="noopener noreferrer">${label}</a>`;
  });
  return html`<p class="links">Grafana: ${links.map((l, i) => (i ? html` · ${l}` : l))}</p>`;
}
