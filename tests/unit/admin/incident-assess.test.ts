import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assessProvider, THRESHOLDS } from '../../../src/admin/incident-assess.js';
import { INCIDENT_WINDOW_MINUTES } from '../../../src/admin/incidents.js';
import type { MinuteBucket } from '../../../src/store/incident-store.js';
import type { PlacementResult } from '../../../src/store/placement-store.js';

const T0 = Date.parse('2026-11-29T05:39:00Z');
const bucket = (minute: number, b: Partial<MinuteBucket>): MinuteBucket => ({
  at: T0 + minute * 60_000,
  delivered: 0,
  expired: 0,
  deferred: {},
  bounced: {},
  auth: {},
  replies: {},
  verificationsDelivered: 0,
  confirmations: 0,
  ...b,
});
const probe = (minute: number, result: PlacementResult['result'], auth?: PlacementResult['auth']): PlacementResult => ({
  token: `t${minute}`,
  seed: 's1',
  provider: 'microsoft',
  messageId: `m${minute}`,
  result,
  submittedAt: T0 + minute * 60_000 - 5000,
  at: T0 + minute * 60_000,
  ...(result === 'spam' ? { mailbox: 'Junk' } : result === 'inbox' ? { mailbox: 'INBOX' } : {}),
  ...(auth ? { auth } : {}),
});
const none = { delivered: 0, confirmed: 0 };

describe('assessProvider', () => {
  it('names provider, count, reply code, cause and since for authentication refusals (critical when bounced)', () => {
    const reply = "550-5.7.26 Unauthenticated email from example.test is not accepted due to domain's DMARC policy.";
    const r = assessProvider({
      provider: 'gmail',
      buckets: [
        bucket(0, { delivered: 3, bounced: { 'auth-failure': 40 }, auth: { dmarc: { bounced: 40 } }, replies: { dmarc: reply } }),
        bucket(5, { bounced: { 'auth-failure': 22 }, auth: { dmarc: { bounced: 22 } }, replies: { dmarc: reply } }),
      ],
      placement: null,
      seeds: [],
      baseline: none,
    });
    expect(r.status).toBe('critical');
    expect(r.findings[0]).toMatchObject({ severity: 'critical', kind: 'auth-failure', cause: 'dmarc', count: 62, since: T0 });
    expect(r.findings[0].text).toBe('gmail: 62 messages rejected 550 5.7.26, DMARC authentication failed since 05:39');
    expect(r.facts).toMatchObject({ delivered: 3, bounced: 62, bouncedByCategory: { 'auth-failure': 62 }, authFailures: { dmarc: 62 } });
  });

  it('makes deferrals by an authentication check a warning', () => {
    const r = assessProvider({
      provider: 'gmail',
      buckets: [bucket(1, { deferred: { 'auth-failure': 2 }, auth: { dkim: { deferred: 2 } }, replies: { dkim: '421-4.7.30 DKIM did not pass' } })],
      placement: null,
      seeds: [],
      baseline: none,
    });
    expect(r.status).toBe('warning');
    expect(r.findings[0].text).toBe('gmail: 2 messages deferred 421 4.7.30, DKIM authentication failed since 05:40');
  });

  it('judges placement: spam share, missing probes, receiver verdicts, unreachable seeds', () => {
    const pass = { dkim: 'pass', spf: 'pass', dmarc: 'pass' };
    const r = assessProvider({
      provider: 'microsoft',
      buckets: [bucket(0, { delivered: 10 })],
      // A probe not delivered (refused, expired, still queued) is no placement: not counted, never missing (until 1 Dec 2026 it was missing).
      placement: [
        probe(9, 'spam', pass),
        probe(8, 'spam', { ...pass, dkim: 'fail', dmarc: 'fail' }),
        probe(3, 'not-delivered'),
        probe(2, 'inbox', pass),
        probe(1, 'missing'),
      ],
      seeds: [{ name: 's2', state: { state: 'unreachable', reason: 'auth', since: T0, checkedAt: T0 } }],
      baseline: none,
    });
    expect(r.status).toBe('critical');
    const texts = r.findings.map((f) => f.text);
    expect(texts).toContain('microsoft: 2 of 4 placement probes landed in spam (Junk) since 05:47');
    expect(texts).toContain('microsoft: the receiver saw dkim=fail on 1 placement probe since 05:47');
    expect(texts).toContain('microsoft: 1 of 4 placement probes delivered but found in no folder since 05:40');
    expect(texts).toContain('microsoft: seed s2 cannot be searched (auth) since 05:39; placement at microsoft is not measured');
    expect(r.findings.find((f) => f.kind === 'spam-placement')?.severity).toBe('critical');
    expect(r.facts.placement).toMatchObject({ probes: 4, counts: { inbox: 1, spam: 2, missing: 1 }, inboxRate: 0.25, auth: { dkim: { pass: 2, fail: 1 } } });
  });

  it('compares the confirmation rate with its baseline only with enough deliveries on both sides', () => {
    const few = assessProvider({
      provider: 'yahoo',
      buckets: [bucket(0, { delivered: 5, verificationsDelivered: 5 })],
      placement: null,
      seeds: [],
      baseline: { delivered: 100, confirmed: 60 },
    });
    expect(few.status).toBe('ok');
    const n = THRESHOLDS.minVerifications;
    const low = assessProvider({
      provider: 'yahoo',
      buckets: [bucket(0, { delivered: n, verificationsDelivered: n, confirmations: 2 })],
      placement: null,
      seeds: [],
      baseline: { delivered: 100, confirmed: 60 },
    });
    expect(low.status).toBe('warning');
    expect(low.findings[0].text).toBe(`yahoo: 10% of ${n} verification messages confirmed in the last hour, against 60% in the same hour of the last 7 days`);
    expect(low.facts.confirmations).toEqual({ delivered: n, confirmed: 2, rate: 2 / n, baseline: 0.6 });
    // A baseline of a few messages is too small to judge, however low the hour's rate.
    const tinyBaseline = assessProvider({
      provider: 'yahoo',
      buckets: [bucket(0, { delivered: 40, verificationsDelivered: 40, confirmations: 28 })],
      placement: null,
      seeds: [],
      baseline: { delivered: 4, confirmed: 4 },
    });
    expect(tinyBaseline.status).toBe('ok');
  });

  it('uses the same volume guard as KurirConfirmationRateBelowBaseline: minVerifications in the hour and in the baseline', () => {
    const alerts = readFileSync(resolve(import.meta.dirname, '../../../dashboards/alerts.yml'), 'utf8');
    const rule = alerts.slice(
      alerts.indexOf('alert: KurirConfirmationRateBelowBaseline'),
      alerts.indexOf('for:', alerts.indexOf('alert: KurirConfirmationRateBelowBaseline')),
    );
    const n = THRESHOLDS.minVerifications;
    expect(rule).toContain(`sum by (provider) (increase(kurir_placement_verifications_delivered_total[1h])) >= ${n}`);
    expect(rule).toContain(`provider:kurir_verifications_delivered:baseline7d >= ${n}`);
  });

  it('compares the same windows with the same share as KurirConfirmationRateBelowBaseline and its recording rules', () => {
    const dash = (f: string) => readFileSync(resolve(import.meta.dirname, '../../../dashboards', f), 'utf8');
    const alerts = dash('alerts.yml');
    const rules = dash('recording-rules.yml');
    const rule = alerts.slice(
      alerts.indexOf('alert: KurirConfirmationRateBelowBaseline'),
      alerts.indexOf('labels:', alerts.indexOf('alert: KurirConfirmationRateBelowBaseline')),
    );
    expect(rule).toContain(
      `provider:kurir_confirmation_ratio:rate1h\n          < ${THRESHOLDS.confirmationShare} * provider:kurir_confirmation_ratio:baseline7d`,
    );
    // The hour: the view's window (INCIDENT_WINDOW_MINUTES) and IncidentStore.baseline's default, as [1h] in the rules.
    expect(INCIDENT_WINDOW_MINUTES).toBe(60);
    expect(rules).toContain('rate(kurir_placement_confirmations_total[1h])');
    // The baseline: that hour on each of the last 7 days (IncidentStore.baseline's default `days`).
    for (const metric of ['kurir_placement_verifications_delivered_total', 'kurir_placement_confirmations_total'])
      for (let d = 1; d <= 8; d++) expect(rules.includes(`increase(${metric}[1h] offset ${d}d)`), `${metric} offset ${d}d`).toBe(d <= 7);
  });

  it('is ok for healthy traffic, with a few recipient bounces', () => {
    const r = assessProvider({
      provider: 'yahoo',
      buckets: [bucket(0, { delivered: 40, bounced: { 'invalid-recipient': 1 }, deferred: { greylist: 2 } })],
      placement: [probe(3, 'inbox', { dkim: 'pass', spf: 'pass', dmarc: 'pass' })],
      seeds: [{ name: 's1', state: { state: 'up', since: T0, checkedAt: T0 } }],
      baseline: none,
    });
    expect(r).toMatchObject({ status: 'ok', findings: [] });
    expect(r.facts).toMatchObject({ delivered: 40, bounced: 1, deferred: 2 });
  });

  it('warns on sender-side refusals and on a high bounce or deferral share', () => {
    const r = assessProvider({
      provider: 'apple',
      buckets: [bucket(0, { delivered: 10, bounced: { 'spam-block': 2, 'invalid-recipient': 3 }, deferred: { 'rate-limit': 20 } })],
      placement: null,
      seeds: [],
      baseline: none,
    });
    expect(r.status).toBe('warning');
    expect(r.findings.map((f) => f.text)).toEqual([
      'apple: 20 of 35 attempts deferred (57%) since 05:39',
      'apple: 3 of 15 final outcomes bounced (20%) since 05:39',
      'apple: 2 messages refused as spam-block since 05:39',
    ]);
  });
});
