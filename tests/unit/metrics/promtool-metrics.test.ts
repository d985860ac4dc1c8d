import { observeEverything } from '../../helpers/metrics-sample.js';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/metrics/metrics.js';

// .ci/run installs Debian's `prometheus` package, which puts promtool on PATH.
// Locally: apt-get update -qq && apt-get install -y -qq prometheus
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const hasPromtool = promtool.status === 0;
if (!hasPromtool) {
  console.warn('SKIPPED promtool check metrics: promtool not on PATH (apt-get install prometheus; .ci/run installs it)');
}

/**
 * prom-client's own default metrics that promtool's linter flags (gauges named
 * *_total). They are prom-client's names, not ours; everything else must be clean.
 */
const KNOWN_DEFAULT_LINT = /^kurir_nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;

function checkMetrics(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

async function sampleExposition(defaultMetrics: boolean): Promise<string> {
  const m = createMetrics({ version: '0.1.0', defaultMetrics });
  m.setQueueProvider(async () => ({
    jobs: [{ state: 'waiting', priority: 'verification', count: 2 }],
    oldestVerificationAgeSeconds: 4,
  }));
  observeEverything(m);
  m.deliveryAttempts.inc({ provider: 'microsoft', result: 'deferred', category: 'greylist' });
  m.deliveryAttempts.inc({ provider: 'yahoo', result: 'bounced', category: 'invalid-recipient' });
  return m.render();
}

describe.skipIf(!hasPromtool)(hasPromtool ? 'promtool check metrics' : 'promtool check metrics (SKIPPED: promtool not on PATH; .ci/run installs it)', () => {
  it('accepts the exposition of every kurir metric without lint problems', async () => {
    const r = checkMetrics(await sampleExposition(false));
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('parses the exposition with default Node metrics (only prom-client default names are linted)', async () => {
    const r = checkMetrics(await sampleExposition(true));
    // 0 = clean, 3 = lint problems only; 1 would be a parse error
    expect([0, 3]).toContain(r.status);
    const problems = r.output.split('\n').filter(Boolean);
    for (const p of problems) expect(p).toMatch(KNOWN_DEFAULT_LINT);
  });
});
