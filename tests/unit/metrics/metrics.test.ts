import { observeEverything } from '../../helpers/metrics-sample.js';
import { describe, expect, it } from 'vitest';
import { DELIVERY_TIME_BUCKETS, createMetrics, replyCodeLabel, type QueueSnapshot } from '../../../src/metrics/metrics.js';

/** Every metric the gateway promises, with its type and label names. */
const EXPECTED: Array<[field: string, name: string, type: string, labels: string[]]> = [
  ['intakeAccepted', 'kurir_intake_messages_accepted_total', 'counter', ['interface', 'priority']],
  ['intakeRefused', 'kurir_intake_messages_refused_total', 'counter', ['interface', 'reason']],
  ['intakeDuration', 'kurir_intake_accept_duration_seconds', 'histogram', ['interface']],
  ['intakeBytes', 'kurir_intake_bytes_total', 'counter', ['interface']],
  ['intakeInflightBytes', 'kurir_intake_inflight_bytes', 'gauge', []],
  ['redisFsyncOk', 'kurir_redis_fsync_ok', 'gauge', []],
  ['authFailures', 'kurir_auth_failures_total', 'counter', ['interface', 'reason']],
  ['authBlocked', 'kurir_auth_blocked_total', 'counter', ['interface', 'scope']],
  ['connectionsRefused', 'kurir_connections_refused_total', 'counter', ['interface', 'scope']],
  ['connectionsOpen', 'kurir_connections_open', 'gauge', ['interface']],
  ['queueJobs', 'kurir_queue_jobs', 'gauge', ['state', 'priority']],
  ['queueOldestVerificationAge', 'kurir_queue_oldest_verification_age_seconds', 'gauge', ['provider']],
  ['queueProviderErrors', 'kurir_queue_stats_errors_total', 'counter', []],
  ['queueReconciled', 'kurir_queue_reconciled_total', 'counter', ['reason']],
  ['queueLeasesExpired', 'kurir_queue_leases_expired_total', 'counter', ['outcome']],
  ['deliveryJobErrors', 'kurir_delivery_job_errors_total', 'counter', ['kind']],
  ['deliverySuperseded', 'kurir_delivery_superseded_total', 'counter', ['reason']],
  ['deliveryAttempts', 'kurir_delivery_attempts_total', 'counter', ['provider', 'result', 'category']],
  ['deliveryTime', 'kurir_delivery_time_to_deliver_seconds', 'histogram', ['priority', 'provider']],
  ['deliveryTls', 'kurir_delivery_connections_total', 'counter', ['provider', 'tls']],
  ['deliveryConnectionReuses', 'kurir_delivery_connection_reuses_total', 'counter', ['provider']],
  ['deliveryReplies', 'kurir_delivery_remote_replies_total', 'counter', ['provider', 'code']],
  ['deliveryAuthFailures', 'kurir_delivery_auth_failures_total', 'counter', ['provider', 'cause']],
  ['mtaStsSessions', 'kurir_mta_sts_policy_total', 'counter', ['mode', 'result']],
  ['mtaStsLookups', 'kurir_mta_sts_policy_lookups_total', 'counter', ['result']],
  ['tlsFailures', 'kurir_tls_failures_total', 'counter', ['provider', 'result_type']],
  ['dkimSignatures', 'kurir_dkim_signatures_total', 'counter', ['domain', 'selector', 'algorithm']],
  ['dkimFailures', 'kurir_dkim_failures_total', 'counter', ['domain', 'reason']],
  ['authSelfCheck', 'kurir_auth_selfcheck', 'gauge', ['domain', 'check']],
  ['dkimKeyAge', 'kurir_dkim_key_age_seconds', 'gauge', ['domain', 'selector']],
  ['dkimKeyWarnAge', 'kurir_dkim_key_warn_age_seconds', 'gauge', ['domain']],
  ['dkimRotationWaiting', 'kurir_dkim_rotation_waiting_seconds', 'gauge', ['domain', 'trigger']],
  ['dkimScheduledRotations', 'kurir_dkim_scheduled_rotations_total', 'counter', ['step']],
  ['shapingRefusals', 'kurir_shaping_refusals_total', 'counter', ['limit']],
  ['shapingRate', 'kurir_shaping_effective_rate_per_minute', 'gauge', ['provider']],
  ['shapingPaused', 'kurir_shaping_paused', 'gauge', ['provider']],
  ['shapingPauses', 'kurir_shaping_pauses_total', 'counter', ['provider']],
  ['shapingReleasesRetried', 'kurir_shaping_releases_retried_total', 'counter', ['provider', 'outcome']],
  ['ipSent', 'kurir_ip_sent_total', 'counter', ['ip', 'pool']],
  ['ipWarmupWaits', 'kurir_ip_warmup_waits_total', 'counter', ['pool']],
  ['bounces', 'kurir_feedback_bounces_total', 'counter', ['provider', 'category', 'type']],
  ['complaints', 'kurir_feedback_complaints_total', 'counter', ['provider']],
  ['suppressionsAdded', 'kurir_suppressions_added_total', 'counter', ['reason']],
  ['feedbackIgnored', 'kurir_feedback_reports_ignored_total', 'counter', ['reason']],
  ['feedbackDeferred', 'kurir_feedback_reports_deferred_total', 'counter', []],
  ['reportsReceived', 'kurir_reports_received_total', 'counter', ['kind', 'reporter', 'result']],
  ['reportsRefused', 'kurir_reports_refused_total', 'counter', ['via', 'reason']],
  ['dmarcMessages', 'kurir_dmarc_messages_total', 'counter', ['domain', 'reporter', 'source', 'dmarc']],
  ['dmarcOwnFailures', 'kurir_dmarc_own_failures_total', 'counter', ['domain', 'reporter', 'check']],
  ['tlsRptSessions', 'kurir_tlsrpt_sessions_total', 'counter', ['domain', 'reporter', 'policy', 'result']],
  ['tlsRptFailures', 'kurir_tlsrpt_failures_total', 'counter', ['domain', 'reporter', 'result_type']],
  ['webhooks', 'kurir_webhooks_total', 'counter', ['result']],
  ['webhooksDisabled', 'kurir_webhooks_disabled_total', 'counter', []],
  ['webhookOutbox', 'kurir_webhook_outbox_total', 'counter', ['result']],
  ['auditWriteFailures', 'kurir_audit_write_failures_total', 'counter', ['kind']],
  ['placement', 'kurir_placement_results_total', 'counter', ['provider', 'folder']],
  ['confirmations', 'kurir_placement_confirmations_total', 'counter', ['provider', 'domain']],
  ['verificationsDelivered', 'kurir_placement_verifications_delivered_total', 'counter', ['provider', 'domain']],
  ['placementArrival', 'kurir_placement_arrival_seconds', 'histogram', ['provider']],
  ['placementSeedUp', 'kurir_placement_seed_up', 'gauge', ['seed', 'provider']],
  ['placementSeedErrors', 'kurir_placement_seed_errors_total', 'counter', ['provider', 'reason']],
  ['timeToConfirm', 'kurir_placement_time_to_confirm_seconds', 'histogram', ['provider']],
  ['placementAuth', 'kurir_placement_auth_results_total', 'counter', ['provider', 'method', 'result']],
  ['rspamdScore', 'kurir_rspamd_score', 'histogram', ['domain']],
  ['rspamdChecks', 'kurir_rspamd_checks_total', 'counter', ['domain', 'action']],
  ['rspamdSkipped', 'kurir_rspamd_skipped_total', 'counter', ['reason']],
  ['rspamdDuration', 'kurir_rspamd_check_duration_seconds', 'histogram', []],
  ['rspamdThreshold', 'kurir_rspamd_threshold_score', 'gauge', []],
  ['rspamdOverThreshold', 'kurir_rspamd_over_threshold_total', 'counter', ['domain']],
  ['redisUp', 'kurir_redis_up', 'gauge', ['redis']],
  ['buildInfo', 'kurir_build_info', 'gauge', ['version', 'node']],
];

describe('createMetrics', () => {
  it('defines every metric with its name, type and labels on its own registry', async () => {
    const m = createMetrics({ version: '1.2.3', defaultMetrics: false });
    observeEverything(m);
    const byName = new Map(m.registry.getMetricsAsArray().map((x) => [x.name, m.registry.getSingleMetric(x.name)]));
    for (const [field, name, type, labels] of EXPECTED) {
      const metric = byName.get(name);
      expect(metric, name).toBeDefined();
      expect((m as unknown as Record<string, unknown>)[field], field).toBe(metric);
      const json = await metric!.get();
      expect(json.type, name).toBe(type);
      const labelNames = new Set(json.values.flatMap((v) => Object.keys(v.labels)));
      labelNames.delete('le');
      expect([...labelNames].sort(), name).toEqual([...labels].sort());
    }
    // nothing else, and everything prefixed
    expect([...byName.keys()].sort()).toEqual(EXPECTED.map((e) => e[1]).sort());
  });

  it('renders exposition text with the observed series', async () => {
    const m = createMetrics({ version: '1.2.3', defaultMetrics: false });
    observeEverything(m);
    const text = await m.registry.metrics();
    expect(await m.render()).toBe(text);
    expect(m.contentType).toMatch(/^text\/plain/);
    expect(text).toContain('kurir_intake_messages_accepted_total{interface="smtp",priority="verification"} 1');
    expect(text).toContain('kurir_intake_messages_refused_total{interface="http",reason="KURIR_SUPPRESSED"} 1');
    expect(text).toContain('kurir_delivery_attempts_total{provider="gmail",result="bounced",category="policy"} 1');
    expect(text).toContain('kurir_delivery_time_to_deliver_seconds_bucket{le="300",priority="verification",provider="gmail"} 1');
    expect(text).toContain('kurir_shaping_effective_rate_per_minute{provider="gmail"} 120');
    expect(text).toContain('kurir_delivery_remote_replies_total{provider="gmail",code="550"} 1');
    expect(text).toContain(`kurir_build_info{version="1.2.3",node="${process.version}"} 1`);
    expect(text).toContain('kurir_redis_up{redis="main"} 1');
    for (const line of text.split('\n')) {
      if (line && !line.startsWith('#')) expect(line.startsWith('kurir_'), line).toBe(true);
    }
  });

  it('uses base units and _total only on counters', () => {
    const m = createMetrics({ defaultMetrics: false });
    for (const metric of m.registry.getMetricsAsArray()) {
      const type = (metric as unknown as { type: string }).type;
      if (type === 'counter') expect(metric.name).toMatch(/_total$/);
      else expect(metric.name).not.toMatch(/_total$/);
      expect(metric.name).not.toMatch(/_(ms|milliseconds|minutes|hours|kb|mb)(_|$)/);
    }
  });

  it('has buckets that cover the verification SLO (300 s) and 1 ms intake', () => {
    expect(DELIVERY_TIME_BUCKETS).toContain(300);
    expect(DELIVERY_TIME_BUCKETS[0]).toBe(0.1);
    expect(DELIVERY_TIME_BUCKETS.at(-1)).toBe(3600);
  });

  it('pre-initialises bounded series at zero so ratios and rates exist from the start', async () => {
    const m = createMetrics({ defaultMetrics: false, providers: ['gmail', 'other'] });
    const text = await m.render();
    expect(text).toContain('kurir_intake_messages_accepted_total{interface="http",priority="bulk"} 0');
    expect(text).toContain('kurir_delivery_attempts_total{provider="other",result="delivered",category="none"} 0');
    expect(text).toContain('kurir_placement_results_total{provider="gmail",folder="spam"} 0');
    expect(text).toContain('kurir_delivery_time_to_deliver_seconds_count{priority="verification",provider="gmail"} 0');
    // A duplicate delivery's first one after a restart counts in increase() (docs/metrics.md).
    for (const reason of ['lease-lost', 'settled', 'duplicate']) expect(text).toContain(`kurir_delivery_superseded_total{reason="${reason}"} 0`);
    // A DSN bounce's first one after a restart counts in the bounce ratio's rate() (provider:kurir_bounce_ratio:rate5m).
    expect(text).toContain('kurir_feedback_bounces_total{provider="gmail",category="invalid-recipient",type="hard"} 0');
    expect(text).toContain('kurir_feedback_bounces_total{provider="other",category="mailbox-full",type="soft"} 0');
    expect(text).not.toContain('category="none",type=');
    expect(text).not.toContain('provider="yahoo"');
  });

  it('pre-sets the series of sender domains known later (runtime-managed) at zero, keeping counts already made', async () => {
    const m = createMetrics({ defaultMetrics: false, providers: ['gmail', 'other'], senderDomains: ['example.test'] });
    expect(await m.render()).not.toContain('domain="runtime.test"');
    m.confirmations.inc({ provider: 'gmail', domain: 'example.test' }, 2);
    m.presetSenderDomains(['example.test', 'Runtime.Test']);
    const text = await m.render();
    expect(text).toContain('kurir_placement_confirmations_total{provider="gmail",domain="example.test"} 2');
    for (const provider of ['gmail', 'other']) {
      expect(text).toContain(`kurir_placement_confirmations_total{provider="${provider}",domain="runtime.test"} 0`);
      expect(text).toContain(`kurir_placement_verifications_delivered_total{provider="${provider}",domain="runtime.test"} 0`);
    }
    expect(text).toContain('kurir_rspamd_over_threshold_total{domain="runtime.test"} 0');
  });

  it('keeps registries independent (many instances, no global registry)', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.complaints.inc({ provider: 'gmail' }, 5);
    expect(await b.render()).toContain('kurir_feedback_complaints_total{provider="gmail"} 0');
    expect(await a.render()).toContain('kurir_feedback_complaints_total{provider="gmail"} 5');
  });

  it('adds default Node metrics with the kurir_ prefix unless disabled', async () => {
    const on = await createMetrics({ version: 'x' }).render();
    expect(on).toMatch(/^kurir_process_cpu_seconds_total /m);
    expect(on).toMatch(/^kurir_nodejs_heap_size_used_bytes /m);
    expect(on).not.toMatch(/^process_cpu/m);
    const off = await createMetrics({ defaultMetrics: false }).render();
    expect(off).not.toContain('kurir_process_cpu_seconds_total');
  });
});

describe('queue provider', () => {
  const snapshot = (waiting: number, age: number): QueueSnapshot => ({
    jobs: [
      { state: 'waiting', priority: 'verification', count: waiting },
      { state: 'delayed', priority: 'bulk', count: 7 },
    ],
    oldestVerificationAgeSeconds: age,
  });

  it('is pulled once per scrape and feeds both gauges', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let calls = 0;
    m.setQueueProvider(async () => {
      calls++;
      return snapshot(4, 33);
    });
    const text = await m.render();
    expect(calls).toBe(1);
    expect(text).toContain('kurir_queue_jobs{state="waiting",priority="verification"} 4');
    expect(text).toContain('kurir_queue_jobs{state="delayed",priority="bulk"} 7');
    expect(text).toContain('kurir_queue_jobs{state="active",priority="normal"} 0');
    expect(text).toContain('kurir_queue_oldest_verification_age_seconds{provider="other"} 33');
    await m.render();
    expect(calls).toBe(2);
  });

  it('keeps the last values and does not break the scrape when the provider throws', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let fail = false;
    m.setQueueProvider(async () => {
      if (fail) throw new Error('redis down');
      return snapshot(2, 10);
    });
    await m.render();
    fail = true;
    const text = await m.render();
    expect(text).toContain('kurir_queue_jobs{state="waiting",priority="verification"} 2');
    expect(text).toContain('kurir_queue_oldest_verification_age_seconds{provider="other"} 10');
    expect(text).toContain('kurir_queue_stats_errors_total 1');
  });

  it('survives a provider that throws synchronously or hangs', async () => {
    const m = createMetrics({ defaultMetrics: false, queueProviderTimeoutMs: 50 });
    m.setQueueProvider((() => {
      throw new Error('boom');
    }) as unknown as () => Promise<QueueSnapshot>);
    await expect(m.render()).resolves.toContain('kurir_queue_stats_errors_total 1');
    m.setQueueProvider(() => new Promise<QueueSnapshot>(() => {}));
    const started = Date.now();
    await expect(m.render()).resolves.toContain('kurir_queue_stats_errors_total 2');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('drops unknown states/priorities and bad numbers (label values stay bounded)', async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.setQueueProvider(async () => ({
      jobs: [
        { state: 'waiting', priority: 'verification', count: 1 },
        { state: 'waiting', priority: 'verification', count: 2 },
        { state: 'completed' as never, priority: 'normal', count: 99 },
        { state: 'waiting', priority: 'someone@example.com' as never, count: 99 },
        { state: 'active', priority: 'normal', count: Number.NaN },
      ],
      oldestVerificationAgeSeconds: Number.NaN,
    }));
    const text = await m.render();
    expect(text).toContain('kurir_queue_jobs{state="waiting",priority="verification"} 3');
    expect(text).not.toContain('completed');
    expect(text).not.toContain('example.com');
    expect(text).toContain('kurir_queue_jobs{state="active",priority="normal"} 0');
    expect(text).toContain('kurir_queue_oldest_verification_age_seconds{provider="other"} 0');
  });

  it('can be detached', async () => {
    const m = createMetrics({ defaultMetrics: false });
    let calls = 0;
    m.setQueueProvider(async () => {
      calls++;
      return snapshot(1, 1);
    });
    await m.render();
    m.setQueueProvider(null);
    await m.render();
    expect(calls).toBe(1);
  });
});

describe('replyCodeLabel', () => {
  it('keeps 3-digit reply codes and maps everything else to "none"', () => {
    expect(replyCodeLabel(250)).toBe('250');
    expect(replyCodeLabel('421')).toBe('421');
    expect(replyCodeLabel(undefined)).toBe('none');
    expect(replyCodeLabel(null)).toBe('none');
    expect(replyCodeLabel(99999)).toBe('none');
    expect(replyCodeLabel('abc')).toBe('none');
  });
});
