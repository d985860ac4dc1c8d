/**
 * Longer than 300 lines on purpose: the architecture keeps every metric definition in this one file, so
 * a reviewer sees every name, label and help text side by side (label sets live in labels.ts).
 *
 * Every Prometheus metric Kurir exports, defined in one place on one private
 * Registry (never prom-client's global one, so tests and embedded instances can
 * create as many as they like). Created once in the composition root and
 * injected into the roles that record observations.
 *
 * Conventions: prefix `kurir_`, base units (seconds, bytes), counters end in
 * `_total`, and no unbounded label values — never an address, message id or
 * recipient domain. Destinations are bucketed into a `provider` label with
 * `createProviderMap()` (./provider.ts); `reason` labels carry error codes from
 * the errors registry; `code` labels carry a 3-digit SMTP reply code.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { createProviderMap } from './provider.js';
import {
  AUTH_BLOCK_SCOPES,
  AUTH_CAUSES,
  AUDIT_WRITE_KINDS,
  AUTH_FAILURE_REASONS,
  BOUNCE_TYPES,
  CONFIRM_TIME_BUCKETS,
  CONNECTION_CAP_SCOPES,
  DELIVERY_CATEGORIES,
  DELIVERY_TIME_BUCKETS,
  INTAKE_DURATION_BUCKETS,
  INTAKE_INTERFACES,
  METRIC_PREFIX,
  MTA_STS_LOOKUP_RESULTS,
  MTA_STS_MODES,
  PLACEMENT_ARRIVAL_BUCKETS,
  PLACEMENT_FOLDERS,
  PRIORITIES,
  PROBE_AUTH_METHODS,
  PROBE_AUTH_RESULTS,
  QUEUE_STATES,
  RSPAMD_DURATION_BUCKETS,
  RSPAMD_SCORE_BUCKETS,
  RSPAMD_SKIP_REASONS,
  type QueueProvider,
  type QueueSnapshot,
  SEED_ERROR_REASONS,
  TLS_RESULT_TYPES,
  WEBHOOK_RESULTS,
} from './labels.js';

export * from './labels.js';

export interface CreateMetricsOptions {
  /** Gateway version for kurir_build_info. Default "unknown". */
  version?: string;
  /** Register prom-client's default Node/process metrics (prefixed kurir_). Default true. */
  defaultMetrics?: boolean;
  /**
   * Provider label values to pre-initialise at zero (so rates and ratios exist
   * before the first event). Default: the built-in provider map's names().
   */
  providers?: readonly string[];
  /** Configured sender domains (the `domain` label of confirmation metrics), pre-initialised at zero. Default none. */
  senderDomains?: readonly string[];
  /** Configured source IPs (delivery.ipPools) and their pools: the `ip`/`pool` labels, pre-initialised at zero. Default none. */
  sourceIps?: ReadonlyArray<{ ip: string; pool: string }>;
  /** Names of the configured Redis shards (`redis.shards`): the `redis` label of kurir_redis_up besides `main`. Default none. */
  redisShards?: readonly string[];
  /**
   * redis.durability is fsync: export kurir_redis_fsync_ok. Default true. Without it the gauge is kept out of the
   * exposition, where it would read 0, which says "intake refuses", on every gateway that does not ask for fsync.
   */
  fsyncDurability?: boolean;
  /** How long a scrape waits for the queue provider before keeping the last values. Default 2000 ms. */
  queueProviderTimeoutMs?: number;
}

export interface Metrics {
  readonly registry: Registry;
  /** Content-Type header for the /metrics response. */
  readonly contentType: string;
  /** Exposition text of every metric (calls the queue provider). */
  render(): Promise<string>;
  /** Source for the queue gauges, pulled at scrape time. `null` detaches it. */
  setQueueProvider(fn: QueueProvider | null): void;
  /**
   * Pre-sets the per-sender-domain series at 0 (confirmations and verification deliveries per provider, rspamd
   * refusals), as createMetrics does for the configured domains: for runtime-managed domains, at start and on
   * every reload. Existing series keep their values.
   */
  presetSenderDomains(domains: readonly string[]): void;

  // intake
  /** kurir_intake_messages_accepted_total{interface,priority} */
  readonly intakeAccepted: Counter<'interface' | 'priority'>;
  /** kurir_intake_messages_refused_total{interface,reason} — reason is an error code. */
  readonly intakeRefused: Counter<'interface' | 'reason'>;
  /** kurir_intake_accept_duration_seconds{interface} */
  readonly intakeDuration: Histogram<'interface'>;
  /** kurir_intake_bytes_total{interface} */
  readonly intakeBytes: Counter<'interface'>;
  /** kurir_redis_fsync_ok — with redis.durability fsync: 1 while Redis fsyncs every write (appendfsync always); not exported otherwise. */
  readonly redisFsyncOk: Gauge<string>;
  /** kurir_intake_inflight_bytes — message bytes being received and processed now (admission control). */
  readonly intakeInflightBytes: Gauge<string>;

  // authentication and connections
  /** kurir_auth_failures_total{interface,reason} — failed SMTP AUTH / API key, reason from AUTH_FAILURE_REASONS. */
  readonly authFailures: Counter<'interface' | 'reason'>;
  /** kurir_auth_blocked_total{interface,scope} — attempts refused (SMTP 421 4.7.0, HTTP 429), scope ip|user|connection. */
  readonly authBlocked: Counter<'interface' | 'scope'>;
  /** kurir_connections_refused_total{interface,scope} — connections closed at once by a connection cap (ip|total). */
  readonly connectionsRefused: Counter<'interface' | 'scope'>;
  /** kurir_connections_open{interface} — connections the connection cap of an interface counts now (smtp|http). */
  readonly connectionsOpen: Gauge<'interface'>;

  // queue (pulled at scrape time from the queue provider)
  /** kurir_queue_jobs{state,priority} */
  readonly queueJobs: Gauge<'state' | 'priority'>;
  /** kurir_queue_oldest_verification_age_seconds{provider} — provider of the waiting job's recipient domain. */
  readonly queueOldestVerificationAge: Gauge<'provider'>;
  /** kurir_queue_stats_errors_total — queue provider failures/timeouts during scrapes. */
  readonly queueProviderErrors: Counter<string>;
  /** kurir_queue_reconciled_total{reason} — messages the reconciler found without a live job (missing-job, failed-job) and re-queued. */
  readonly queueReconciled: Counter<'reason'>;
  /** kurir_queue_leases_expired_total{outcome}: delivery jobs whose worker stopped renewing its lease (died, stalled) */
  readonly queueLeasesExpired: Counter<'outcome'>;
  /** kurir_delivery_job_errors_total{kind} — delivery jobs that threw (unavailable: Redis or the network; internal: a bug) and will be retried. */
  readonly deliveryJobErrors: Counter<'kind'>;
  /** kurir_delivery_superseded_total{reason} — recipient outcomes recorded as superseded (lease-lost | settled) or as a duplicate delivery (duplicate). */
  readonly deliverySuperseded: Counter<'reason'>;

  // delivery
  /** kurir_delivery_attempts_total{provider,result,category} */
  readonly deliveryAttempts: Counter<'provider' | 'result' | 'category'>;
  /** kurir_delivery_time_to_deliver_seconds{priority,provider} — accept → delivered. */
  readonly deliveryTime: Histogram<'priority' | 'provider'>;
  /** kurir_delivery_connections_total{provider,tls} — tls is yes|no. */
  readonly deliveryTls: Counter<'provider' | 'tls'>;
  /** kurir_delivery_connection_reuses_total{provider} — messages sent over an already open connection. */
  readonly deliveryConnectionReuses: Counter<'provider'>;
  /** kurir_delivery_remote_replies_total{provider,code} — code from replyCodeLabel(). */
  readonly deliveryReplies: Counter<'provider' | 'code'>;
  /** kurir_delivery_auth_failures_total{provider,cause} — recipients refused (deferred or bounced, at SMTP time or by DSN) because an authentication check failed. */
  readonly deliveryAuthFailures: Counter<'provider' | 'cause'>;

  // transport security (the counts a future TLS-RPT report would be built from)
  /** kurir_mta_sts_policy_total{mode,result} — new SMTP sessions to MX hosts under an MTA-STS policy; result success|failure. */
  readonly mtaStsSessions: Counter<'mode' | 'result'>;
  /** kurir_mta_sts_policy_lookups_total{result} — MTA-STS policy lookups per delivery attempt. */
  readonly mtaStsLookups: Counter<'result'>;
  /** kurir_tls_failures_total{provider,result_type} — result_type as RFC 8460 names it. */
  readonly tlsFailures: Counter<'provider' | 'result_type'>;

  // dkim
  /** kurir_dkim_signatures_total{domain,selector,algorithm} — domain is a configured sending domain. */
  readonly dkimSignatures: Counter<'domain' | 'selector' | 'algorithm'>;
  /** kurir_dkim_failures_total{domain,reason} — reason from DKIM_FAILURE_REASONS. */
  readonly dkimFailures: Counter<'domain' | 'reason'>;
  /**
   * kurir_auth_selfcheck{domain,check} — 1 when the last authentication self-check of a sender domain (configured
   * or runtime-managed, active) passed `check` (dkim|spf|dmarc), 0 when it failed; series of removed domains are dropped.
   */
  readonly authSelfCheck: Gauge<'domain' | 'check'>;
  /** kurir_dkim_key_age_seconds{domain,selector} — how long each active key of a runtime-managed domain has signed (role api). */
  readonly dkimKeyAge: Gauge<'domain' | 'selector'>;
  /** kurir_dkim_key_warn_age_seconds{domain} — (everyDays − warnDays) × 86400 of domains rotated on schedule: the KurirDkimKeyAgeing threshold. */
  readonly dkimKeyWarnAge: Gauge<'domain'>;
  /** kurir_dkim_rotation_waiting_seconds{domain,trigger} — how long a rotation (schedule|manual) has waited for DNS; no series when none waits. */
  readonly dkimRotationWaiting: Gauge<'domain' | 'trigger'>;
  /** kurir_dkim_scheduled_rotations_total{step} — scheduled rotations started, and switched once DNS served the new key. */
  readonly dkimScheduledRotations: Counter<'step'>;

  // shaping
  /** kurir_shaping_refusals_total{limit} */
  readonly shapingRefusals: Counter<'limit'>;
  /** kurir_shaping_effective_rate_per_minute{provider} */
  readonly shapingRate: Gauge<'provider'>;
  /** kurir_shaping_paused{provider} — 1 while sending to the provider is paused. */
  readonly shapingPaused: Gauge<'provider'>;
  /** kurir_shaping_pauses_total{provider} — pauses started. */
  readonly shapingPauses: Counter<'provider'>;
  /** kurir_shaping_releases_retried_total{provider,outcome} — connection-slot releases that failed (Redis away), by how their retries ended. */
  readonly shapingReleasesRetried: Counter<'provider' | 'outcome'>;
  /** kurir_ip_sent_total{ip,pool} — messages handed to a receiver from a pool's source IP (labels bounded by the config). */
  readonly ipSent: Counter<'ip' | 'pool'>;
  /** kurir_ip_warmup_waits_total{pool} — deliveries held because every IP of the pool was at its warm-up cap. */
  readonly ipWarmupWaits: Counter<'pool'>;

  // feedback
  /** kurir_feedback_bounces_total{provider,category,type} — asynchronous bounces (DSNs at the bounce MX). */
  readonly bounces: Counter<'provider' | 'category' | 'type'>;
  /** kurir_feedback_complaints_total{provider} — ARF/FBL complaints. */
  readonly complaints: Counter<'provider'>;
  /** kurir_suppressions_added_total{reason} */
  readonly suppressionsAdded: Counter<'reason'>;
  /** kurir_feedback_reports_ignored_total{reason} — reports at the bounce MX that changed nothing (unusable, unknown message, …). */
  readonly feedbackIgnored: Counter<'reason'>;
  /** kurir_feedback_reports_deferred_total — reports the bounce MX answered 451 4.3.2 (parse threads busy; the sender retries). */
  readonly feedbackDeferred: Counter;
  /** kurir_reports_received_total{kind,reporter,result}: DMARC aggregate / TLS reports applied or already seen (duplicate). */
  readonly reportsReceived: Counter<'kind' | 'reporter' | 'result'>;
  /** kurir_reports_refused_total{via,reason}: DMARC / TLS reports refused (hostile archive, DTD, malformed, unknown domain, …). */
  readonly reportsRefused: Counter<'via' | 'reason'>;
  /** kurir_dmarc_messages_total{domain,reporter,source,dmarc}: messages receivers reported, from Kurir's IPs (own) or not (foreign). */
  readonly dmarcMessages: Counter<'domain' | 'reporter' | 'source' | 'dmarc'>;
  /** kurir_dmarc_own_failures_total{domain,reporter,check}: messages from Kurir's own IPs whose aligned DKIM, SPF or DMARC failed. */
  readonly dmarcOwnFailures: Counter<'domain' | 'reporter' | 'check'>;
  /** kurir_tlsrpt_sessions_total{domain,reporter,policy,result}: TLS sessions to the domain's MX that senders reported. */
  readonly tlsRptSessions: Counter<'domain' | 'reporter' | 'policy' | 'result'>;
  /** kurir_tlsrpt_failures_total{domain,reporter,result_type}: failed TLS sessions by RFC 8460 result type. */
  readonly tlsRptFailures: Counter<'domain' | 'reporter' | 'result_type'>;
  /** kurir_webhooks_total{result} — result is sent|failed|held. */
  readonly webhooks: Counter<'result'>;
  /** kurir_webhook_outbox_total{result} — webhook jobs queued by the outbox relay (relayed) or entries dropped (gone). */
  readonly webhookOutbox: Counter<'result'>;
  /** kurir_webhooks_disabled_total — a key's webhook auto-disabled after sustained failure. */
  readonly webhooksDisabled: Counter;

  // audit
  /** kurir_audit_write_failures_total{kind} — audit entries that could not be written (view, export, change). */
  readonly auditWriteFailures: Counter<'kind'>;

  // placement and confirmation
  /** kurir_placement_results_total{provider,folder} */
  readonly placement: Counter<'provider' | 'folder'>;
  /** kurir_placement_arrival_seconds{provider}: probe submitted → in the seed mailbox */
  readonly placementArrival: Histogram<'provider'>;
  /** kurir_placement_seed_up{seed,provider}: 1 when the last search of the seed mailbox worked */
  readonly placementSeedUp: Gauge<'seed' | 'provider'>;
  /** kurir_placement_seed_errors_total{provider,reason} */
  readonly placementSeedErrors: Counter<'provider' | 'reason'>;
  /** kurir_placement_verifications_delivered_total{provider,domain}: the confirmation rate's denominator */
  readonly verificationsDelivered: Counter<'provider' | 'domain'>;
  /** kurir_placement_confirmations_total{provider,domain} */
  readonly confirmations: Counter<'provider' | 'domain'>;
  /** kurir_placement_time_to_confirm_seconds{provider} */
  readonly timeToConfirm: Histogram<'provider'>;
  /** kurir_placement_auth_results_total{provider,method,result}: the receiver's verdicts on found probes */
  readonly placementAuth: Counter<'provider' | 'method' | 'result'>;

  // pre-send scoring (src/scoring/)
  /** kurir_rspamd_score{domain}: rspamd's score of sampled messages, by (configured) sender domain */
  readonly rspamdScore: Histogram<'domain'>;
  /** kurir_rspamd_checks_total{domain,action}: sampled messages rspamd gave a verdict on */
  readonly rspamdChecks: Counter<'domain' | 'action'>;
  /** kurir_rspamd_skipped_total{reason}: sampled messages accepted unscored because rspamd did not answer */
  readonly rspamdSkipped: Counter<'reason'>;
  /** kurir_rspamd_check_duration_seconds: one /checkv2 request, answered or not */
  readonly rspamdDuration: Histogram<string>;
  /** kurir_rspamd_threshold_score: the score at which pre-send scoring refuses (configured, else rspamd's reject score) */
  readonly rspamdThreshold: Gauge<string>;
  /** kurir_rspamd_over_threshold_total{domain}: sampled messages scored at or over that threshold */
  readonly rspamdOverThreshold: Counter<'domain'>;

  // process
  /** kurir_redis_up{redis} — 1 while the connection to that Redis (`main`, or a shard's name) is up. */
  readonly redisUp: Gauge<'redis'>;
  /** kurir_build_info{version,node} — always 1. */
  readonly buildInfo: Gauge<'version' | 'node'>;
}

/**
 * Label value for an SMTP reply code: the 3-digit code when it is a valid
 * reply (200–599), otherwise "none" (no reply, e.g. a connection error).
 */
export function replyCodeLabel(code: number | string | null | undefined): string {
  const n = typeof code === 'string' ? Number.parseInt(code, 10) : code;
  return typeof n === 'number' && Number.isInteger(n) && n >= 200 && n <= 599 ? String(n) : 'none';
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`queue provider timed out after ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Creates every metric of Kurir on a new registry of its own (plus prom-client's process metrics unless `opts.defaultMetrics` is false). */
export function createMetrics(opts: CreateMetricsOptions = {}): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const providers = [...new Set(opts.providers ?? createProviderMap().names())];
  const senderDomains = [...new Set((opts.senderDomains ?? []).map((d) => d.toLowerCase()))];
  const queueTimeoutMs = opts.queueProviderTimeoutMs ?? 2000;

  // ---- intake -------------------------------------------------------------
  const intakeAccepted = new Counter({
    name: 'kurir_intake_messages_accepted_total',
    help: 'Messages accepted at intake (durably spooled and answered 250/202), by interface and priority.',
    labelNames: ['interface', 'priority'] as const,
    registers,
  });
  const intakeRefused = new Counter({
    name: 'kurir_intake_messages_refused_total',
    help: 'Messages refused at intake, by interface and reason (an error code from the errors registry).',
    labelNames: ['interface', 'reason'] as const,
    registers,
  });
  const intakeDuration = new Histogram({
    name: 'kurir_intake_accept_duration_seconds',
    help: 'Time from end of submission to the accept reply (validation, policy, spooling), by interface.',
    labelNames: ['interface'] as const,
    buckets: INTAKE_DURATION_BUCKETS,
    registers,
  });
  const intakeBytes = new Counter({
    name: 'kurir_intake_bytes_total',
    help: 'Bytes of accepted message bodies, by interface.',
    labelNames: ['interface'] as const,
    registers,
  });
  const redisFsyncOk = new Gauge({
    name: 'kurir_redis_fsync_ok',
    help: 'With redis.durability fsync: 1 while Redis runs with appendonly yes and appendfsync always (checked at start and after each reconnect), else 0 and intake refuses.',
    registers: opts.fsyncDurability === false ? [] : registers,
  });
  const intakeInflightBytes = new Gauge({
    name: 'kurir_intake_inflight_bytes',
    help: 'Message bytes being received and processed right now (HTTP and SMTP); over intake.maxBytesInFlight submissions get 503 / 451 4.3.2.',
    registers,
  });

  // ---- authentication and connections ----------------------------------------
  const authFailures = new Counter({
    name: 'kurir_auth_failures_total',
    help: 'Failed authentications, by interface (smtp|http) and reason (unknown-user|bad-password|unknown-key).',
    labelNames: ['interface', 'reason'] as const,
    registers,
  });
  const authBlocked = new Counter({
    name: 'kurir_auth_blocked_total',
    help: 'Authentication attempts refused (SMTP 421 4.7.0 and disconnect, HTTP 429) because the client IP or user name is blocked after repeated failures, or (scope connection) too many failed on one SMTP connection.',
    labelNames: ['interface', 'scope'] as const,
    registers,
  });
  const connectionsRefused = new Counter({
    name: 'kurir_connections_refused_total',
    help: 'Connections closed on arrival because a connection cap was reached, by interface and scope (ip: per client IP; total: the listener).',
    labelNames: ['interface', 'scope'] as const,
    registers,
  });
  const connectionsOpen = new Gauge({
    name: 'kurir_connections_open',
    help: 'Connections open now as the connection caps count them, by interface (smtp: both SMTP listeners; http); smtp.maxConnections and http.maxConnections are their limits.',
    labelNames: ['interface'] as const,
    registers,
  });

  // ---- queue (pulled at scrape time) ----------------------------------------
  let queueProvider: QueueProvider | null = null;
  let inflight: Promise<void> | null = null;

  const queueProviderErrors = new Counter({
    name: 'kurir_queue_stats_errors_total',
    help: 'Scrapes where reading queue statistics failed or timed out (the queue gauges kept their last values).',
    registers,
    // Waits for the same in-flight refresh so one scrape reports its own failure.
    collect: () => refreshQueue(),
  });

  const applySnapshot = (snap: QueueSnapshot): void => {
    const counts = new Map<string, number>();
    for (const s of QUEUE_STATES) for (const p of PRIORITIES) counts.set(`${s}\u0000${p}`, 0);
    for (const job of snap?.jobs ?? []) {
      const key = `${job?.state}\u0000${job?.priority}`;
      // Unknown states/priorities are dropped: label values stay within the fixed sets.
      if (!counts.has(key) || !Number.isFinite(job.count)) continue;
      counts.set(key, (counts.get(key) ?? 0) + Math.max(0, job.count));
    }
    for (const [key, count] of counts) {
      const [state, priority] = key.split('\u0000');
      queueJobs.set({ state, priority }, count);
    }
    // Every known provider reads 0 unless the snapshot names it; unknown names fold into "other" (bounded labels).
    const ages = new Map<string, number>(providers.map((p) => [p, 0]));
    const byProvider = snap?.oldestVerificationAgeByProvider ?? { other: snap?.oldestVerificationAgeSeconds };
    for (const [provider, age] of Object.entries(byProvider)) {
      const label = ages.has(provider) ? provider : 'other';
      if (typeof age === 'number' && Number.isFinite(age) && age > 0) ages.set(label, Math.max(ages.get(label) ?? 0, age));
    }
    for (const [provider, age] of ages) queueOldestVerificationAge.set({ provider }, age);
  };

  /** One provider call per scrape, shared by both queue gauges; never rejects. */
  const refreshQueue = (): Promise<void> => {
    const fn = queueProvider;
    if (!fn) return Promise.resolve();
    if (inflight) return inflight;
    const p = (async () => {
      try {
        applySnapshot(await withTimeout(Promise.resolve().then(fn), queueTimeoutMs));
      } catch {
        queueProviderErrors.inc();
      }
    })();
    inflight = p;
    void p.finally(() => {
      if (inflight === p) inflight = null;
    });
    return p;
  };

  const queueJobs: Gauge<'state' | 'priority'> = new Gauge({
    name: 'kurir_queue_jobs',
    help: 'Jobs in the delivery queue by state (waiting: ready to run; delayed, active, failed) and priority.',
    labelNames: ['state', 'priority'] as const,
    registers,
    collect: refreshQueue,
  });
  const queueOldestVerificationAge: Gauge<'provider'> = new Gauge({
    name: 'kurir_queue_oldest_verification_age_seconds',
    help: 'Age of the oldest verification message still waiting for delivery, by provider of its recipient domain (0 when none).',
    labelNames: ['provider'] as const,
    registers,
    collect: refreshQueue,
  });

  const queueReconciled = new Counter({
    name: 'kurir_queue_reconciled_total',
    help: 'Messages found by the reconciler without a live delivery job and re-queued, by reason (missing-job, failed-job).',
    labelNames: ['reason'] as const,
    registers,
  });

  const queueLeasesExpired = new Counter({
    name: 'kurir_queue_leases_expired_total',
    help: 'Delivery jobs whose lease ran out because the worker holding them died or stopped renewing it, by outcome: returned to the queue, or failed after 10 such returns (the reconciler retries those).',
    labelNames: ['outcome'] as const,
    registers,
  });

  // ---- delivery -------------------------------------------------------------
  const deliveryJobErrors = new Counter({
    name: 'kurir_delivery_job_errors_total',
    help: 'Delivery jobs that threw instead of reaching an outcome (unavailable: Redis or network; internal: a bug); each is retried.',
    labelNames: ['kind'] as const,
    registers,
  });
  const deliverySuperseded = new Counter({
    name: 'kurir_delivery_superseded_total',
    help: "Recipient outcomes of delivery attempts that changed nothing and were recorded as superseded: lease-lost (the run had lost its job's lease to another run) or settled (the recipient was cancelled, or delivered by another run, while the attempt was sending); duplicate: a delivery of a recipient another run had already recorded as delivered (a second copy; no second webhook).",
    labelNames: ['reason'] as const,
    registers,
  });
  const deliveryAttempts = new Counter({
    name: 'kurir_delivery_attempts_total',
    help: 'Delivery attempts by provider, result (delivered|deferred|bounced|expired) and category ("none" when delivered).',
    labelNames: ['provider', 'result', 'category'] as const,
    registers,
  });
  const deliveryTime = new Histogram({
    name: 'kurir_delivery_time_to_deliver_seconds',
    help: 'Time from intake accept to successful delivery, by priority and provider.',
    labelNames: ['priority', 'provider'] as const,
    buckets: DELIVERY_TIME_BUCKETS,
    registers,
  });
  const deliveryTls = new Counter({
    name: 'kurir_delivery_connections_total',
    help: 'Outbound SMTP connections opened, by provider and whether TLS was used (yes|no).',
    labelNames: ['provider', 'tls'] as const,
    registers,
  });
  const deliveryConnectionReuses = new Counter({
    name: 'kurir_delivery_connection_reuses_total',
    help: 'Messages sent over an already open (pooled) SMTP connection, by provider.',
    labelNames: ['provider'] as const,
    registers,
  });
  const deliveryReplies = new Counter({
    name: 'kurir_delivery_remote_replies_total',
    help: 'Final SMTP replies from remote servers by provider and 3-digit reply code ("none" for no reply).',
    labelNames: ['provider', 'code'] as const,
    registers,
  });
  const deliveryAuthFailures = new Counter({
    name: 'kurir_delivery_auth_failures_total',
    help: 'Recipients refused because the receiver says an authentication check of our mail failed (bounce category auth-failure), by provider and cause (ptr|spf|dkim|dmarc|alignment|tls|unauthenticated); SMTP replies (deferred or bounced) and DSNs.',
    labelNames: ['provider', 'cause'] as const,
    registers,
  });

  // ---- transport security ---------------------------------------------------
  const mtaStsSessions = new Counter({
    name: 'kurir_mta_sts_policy_total',
    help: 'New SMTP sessions to MX hosts of domains with an MTA-STS policy (and enforce-mode refusals to open one), by mode (enforce|testing) and result (success|failure: counted by type in kurir_tls_failures_total).',
    labelNames: ['mode', 'result'] as const,
    registers,
  });
  const mtaStsLookups = new Counter({
    name: 'kurir_mta_sts_policy_lookups_total',
    help: 'MTA-STS policy lookups for delivery attempts to MX hosts, by result (fetched|cached|cached-fetch-failed|fetch-failed|not-found|dns-error).',
    labelNames: ['result'] as const,
    registers,
  });
  const tlsFailures = new Counter({
    name: 'kurir_tls_failures_total',
    help: 'TLS failures of sessions to MX hosts and of MTA-STS policy fetches, by provider and RFC 8460 result type.',
    labelNames: ['provider', 'result_type'] as const,
    registers,
  });

  // ---- dkim -----------------------------------------------------------------
  const authSelfCheck = new Gauge({
    name: 'kurir_auth_selfcheck',
    help: 'Latest authentication self-check of an active sender domain: a probe signed with the live key, verified with mailauth against DNS; 1 pass, 0 fail, by domain and check (dkim|spf|dmarc).',
    labelNames: ['domain', 'check'] as const,
    registers,
  });
  const dkimKeyAge = new Gauge({
    name: 'kurir_dkim_key_age_seconds',
    help: 'How long each active DKIM key of a runtime-managed sender domain has been signing, by domain and selector.',
    labelNames: ['domain', 'selector'] as const,
    registers,
  });
  const dkimKeyWarnAge = new Gauge({
    name: 'kurir_dkim_key_warn_age_seconds',
    help: 'Key age past which KurirDkimKeyAgeing warns, for domains rotated on schedule: (everyDays - warnDays) in seconds, by domain.',
    labelNames: ['domain'] as const,
    registers,
  });
  const dkimRotationWaiting = new Gauge({
    name: 'kurir_dkim_rotation_waiting_seconds',
    help: 'How long a DKIM rotation has been waiting for its DNS record, by domain and trigger (schedule|manual); absent when none waits.',
    labelNames: ['domain', 'trigger'] as const,
    registers,
  });
  const dkimScheduledRotations = new Counter({
    name: 'kurir_dkim_scheduled_rotations_total',
    help: 'Scheduled DKIM rotations by step: started (new key and selector) and switched (DNS served it, signing moved).',
    labelNames: ['step'] as const,
    registers,
  });
  const dkimSignatures = new Counter({
    name: 'kurir_dkim_signatures_total',
    help: 'DKIM signatures made, by signing domain, selector and algorithm.',
    labelNames: ['domain', 'selector', 'algorithm'] as const,
    registers,
  });
  const dkimFailures = new Counter({
    name: 'kurir_dkim_failures_total',
    help: 'DKIM signing failures at intake, by sender domain and reason (DKIM_NO_KEY|DKIM_SIGN_FAILED|DKIM_UNAVAILABLE|internal).',
    labelNames: ['domain', 'reason'] as const,
    registers,
  });

  // ---- shaping --------------------------------------------------------------
  const shapingRefusals = new Counter({
    name: 'kurir_shaping_refusals_total',
    help: 'Sends postponed by traffic shaping, by limit kind.',
    labelNames: ['limit'] as const,
    registers,
  });
  const shapingRate = new Gauge({
    name: 'kurir_shaping_effective_rate_per_minute',
    help: 'Current effective sending rate limit per provider, in messages per minute (adaptive).',
    labelNames: ['provider'] as const,
    registers,
  });
  const shapingPaused = new Gauge({
    name: 'kurir_shaping_paused',
    help: '1 while sending to the provider is paused by shaping, else 0.',
    labelNames: ['provider'] as const,
    registers,
  });
  const shapingPauses = new Counter({
    name: 'kurir_shaping_pauses_total',
    help: 'Sending pauses started by shaping, by provider.',
    labelNames: ['provider'] as const,
    registers,
  });
  const shapingReleasesRetried = new Counter({
    name: 'kurir_shaping_releases_retried_total',
    help: 'Connection-slot releases that failed (Redis did not answer), and slots an unanswered acquire may have taken, given back in the background, by outcome: released (given back once Redis answered) or abandoned (not given back before the slot lease ended or the process stopped; Redis frees it at the end of shaping.leaseSeconds).',
    labelNames: ['provider', 'outcome'] as const,
    registers,
  });
  const ipSent = new Counter({
    name: 'kurir_ip_sent_total',
    help: 'Messages handed to a receiver (an SMTP transaction on an open connection, whatever the reply) from a source IP of a pool (delivery.ipPools).',
    labelNames: ['ip', 'pool'] as const,
    registers,
  });
  const ipWarmupWaits = new Counter({
    name: 'kurir_ip_warmup_waits_total',
    help: 'Deliveries held (delayed, not failed) because every source IP of their pool was at its warm-up cap for the hour or day.',
    labelNames: ['pool'] as const,
    registers,
  });

  // ---- feedback -------------------------------------------------------------
  const bounces = new Counter({
    name: 'kurir_feedback_bounces_total',
    help: 'Asynchronous bounces (DSNs received at the bounce MX), by provider, category and type (hard|soft). Synchronous rejections are counted in kurir_delivery_attempts_total{result="bounced"}.',
    labelNames: ['provider', 'category', 'type'] as const,
    registers,
  });
  const complaints = new Counter({
    name: 'kurir_feedback_complaints_total',
    help: 'Spam complaints (ARF feedback reports), by provider.',
    labelNames: ['provider'] as const,
    registers,
  });
  const suppressionsAdded = new Counter({
    name: 'kurir_suppressions_added_total',
    help: 'Addresses added to the suppression list, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const feedbackIgnored = new Counter({
    name: 'kurir_feedback_reports_ignored_total',
    help: 'Reports received at the bounce MX that changed nothing, by reason (malformed-mime, truncated, auto-reply, unknown-message, forged-verp, unknown-recipient, …).',
    labelNames: ['reason'] as const,
    registers,
  });
  const feedbackDeferred = new Counter({
    name: 'kurir_feedback_reports_deferred_total',
    help: 'Reports the bounce MX answered 451 4.3.2 because every parse thread was busy and feedback.maxQueuedReports waited (the sender retries later).',
    registers,
  });
  const reportsReceived = new Counter({
    name: 'kurir_reports_received_total',
    help: 'DMARC aggregate (kind dmarc) and SMTP TLS (kind tlsrpt) reports received, by normalised reporter and result (applied, duplicate: the same report id again, counted once).',
    labelNames: ['kind', 'reporter', 'result'] as const,
    registers,
  });
  const reportsRefused = new Counter({
    name: 'kurir_reports_refused_total',
    help: 'DMARC aggregate and TLS reports refused, by where they came (smtp, http) and reason (inflated-too-large, nested-archive, dtd-refused, too-many-records, truncated, unknown-domain, parse-timeout, busy, …).',
    labelNames: ['via', 'reason'] as const,
    registers,
  });
  const dmarcMessages = new Counter({
    name: 'kurir_dmarc_messages_total',
    help: 'Messages in DMARC aggregate reports, by sender domain, reporter, source (own: a domainKeys.sendingIps address; foreign: anyone else) and DMARC result (pass|fail).',
    labelNames: ['domain', 'reporter', 'source', 'dmarc'] as const,
    registers,
  });
  const dmarcOwnFailures = new Counter({
    name: 'kurir_dmarc_own_failures_total',
    help: "Messages from Kurir's own sending IPs whose aligned check failed at the receiver (DMARC aggregate reports), by sender domain, reporter and check (dkim|spf|dmarc).",
    labelNames: ['domain', 'reporter', 'check'] as const,
    registers,
  });
  const tlsRptSessions = new Counter({
    name: 'kurir_tlsrpt_sessions_total',
    help: 'TLS sessions to a domain of Kurir reported in SMTP TLS reports (RFC 8460), by policy domain, reporter, policy type (sts|tlsa|no-policy-found) and result (success|failure).',
    labelNames: ['domain', 'reporter', 'policy', 'result'] as const,
    registers,
  });
  const tlsRptFailures = new Counter({
    name: 'kurir_tlsrpt_failures_total',
    help: 'Failed TLS sessions in SMTP TLS reports, by policy domain, reporter and RFC 8460 result type (other for unknown ones).',
    labelNames: ['domain', 'reporter', 'result_type'] as const,
    registers,
  });
  const webhooks = new Counter({
    name: 'kurir_webhooks_total',
    help: "Event webhook attempts to booking systems, by result (sent|failed), and events held while the key's webhook is paused (held).",
    labelNames: ['result'] as const,
    registers,
  });
  const webhookOutbox = new Counter({
    name: 'kurir_webhook_outbox_total',
    help: 'Webhook outbox entries the relay finished, by result: relayed (webhook jobs queued because the first hand-on had failed or its process died) or gone (the message was past its retention).',
    labelNames: ['result'] as const,
    registers,
  });
  const webhooksDisabled = new Counter({
    name: 'kurir_webhooks_disabled_total',
    help: "API keys' webhooks auto-disabled after sustained delivery failure.",
    registers,
  });
  const auditWriteFailures = new Counter({
    name: 'kurir_audit_write_failures_total',
    help: 'Audit entries that could not be written (Redis refused or did not answer), by kind: view (a read of personal data, answered without its entry), export (entries of an export: a refused export loses two, its first and that of its 503; a finished one may lose its closing count), change (an admin or support change, or a scheduled DKIM rotation step, done without its entry).',
    labelNames: ['kind'] as const,
    registers,
  });

  // ---- placement and confirmation -------------------------------------------
  const placement = new Counter({
    name: 'kurir_placement_results_total',
    help: 'Seed-mailbox placement results, by provider and folder (inbox|spam|other|missing).',
    labelNames: ['provider', 'folder'] as const,
    registers,
  });
  const placementArrival = new Histogram({
    name: 'kurir_placement_arrival_seconds',
    help: 'Time from submission of a placement probe to its arrival in the seed mailbox (IMAP INTERNALDATE), by provider.',
    labelNames: ['provider'] as const,
    buckets: PLACEMENT_ARRIVAL_BUCKETS,
    registers,
  });
  const placementSeedUp = new Gauge({
    name: 'kurir_placement_seed_up',
    help: '1 when the last login and search of the seed mailbox worked, 0 when it could not be reached (login refused, connection failed, mailbox full).',
    labelNames: ['seed', 'provider'] as const,
    registers,
  });
  const placementSeedErrors = new Counter({
    name: 'kurir_placement_seed_errors_total',
    help: 'Failed searches of a seed mailbox, by provider and reason (auth|connect|mailbox-full|protocol).',
    labelNames: ['provider', 'reason'] as const,
    registers,
  });
  const verificationsDelivered = new Counter({
    name: 'kurir_placement_verifications_delivered_total',
    help: 'Recipients of verification messages delivered (250), placement probes excluded, by provider and sender domain: the denominator of the confirmation rate.',
    labelNames: ['provider', 'domain'] as const,
    registers,
  });
  const confirmations = new Counter({
    name: 'kurir_placement_confirmations_total',
    help: 'Verification messages confirmed by the booking system (the applicant acted on it), by provider and sender domain.',
    labelNames: ['provider', 'domain'] as const,
    registers,
  });
  const timeToConfirm = new Histogram({
    name: 'kurir_placement_time_to_confirm_seconds',
    help: 'Time from delivery of a verification message to its confirmation, by provider.',
    labelNames: ['provider'] as const,
    buckets: CONFIRM_TIME_BUCKETS,
    registers,
  });
  const placementAuth = new Counter({
    name: 'kurir_placement_auth_results_total',
    help: "The receiver's Authentication-Results verdicts on placement probes found in a seed mailbox, by provider, method (dkim|spf|dmarc) and result (pass|fail|none|other).",
    labelNames: ['provider', 'method', 'result'] as const,
    registers,
  });

  // ---- pre-send scoring -----------------------------------------------------
  const rspamdScore = new Histogram({
    name: 'kurir_rspamd_score',
    help: 'rspamd score of messages sampled for pre-send scoring, by sender domain.',
    labelNames: ['domain'] as const,
    buckets: RSPAMD_SCORE_BUCKETS,
    registers,
  });
  const rspamdChecks = new Counter({
    name: 'kurir_rspamd_checks_total',
    help: 'Messages rspamd scored before sending, by sender domain and rspamd action (no-action|greylist|add-header|rewrite-subject|soft-reject|reject|other).',
    labelNames: ['domain', 'action'] as const,
    registers,
  });
  const rspamdSkipped = new Counter({
    name: 'kurir_rspamd_skipped_total',
    help: 'Messages sampled for pre-send scoring but accepted unscored because rspamd did not answer, by reason (timeout|unreachable|bad-answer).',
    labelNames: ['reason'] as const,
    registers,
  });
  const rspamdDuration = new Histogram({
    name: 'kurir_rspamd_check_duration_seconds',
    help: 'Duration of one rspamd /checkv2 request at intake, answered or not.',
    buckets: RSPAMD_DURATION_BUCKETS,
    registers,
  });
  const rspamdThreshold = new Gauge({
    name: 'kurir_rspamd_threshold_score',
    help: "The rspamd score at which pre-send scoring refuses a message: scoring.rspamd.threshold, or else rspamd's own reject score (required_score of its last answer); 0 until known.",
    registers,
  });
  const rspamdOverThreshold = new Counter({
    name: 'kurir_rspamd_over_threshold_total',
    help: 'Messages sampled for pre-send scoring that scored at or over the refusal threshold, by sender domain: refused at intake, except placement probes and with scoring.rspamd.refuse false.',
    labelNames: ['domain'] as const,
    registers,
  });

  // ---- process --------------------------------------------------------------
  const redisUp = new Gauge({
    name: 'kurir_redis_up',
    help: '1 while the connection to a Redis is up, else 0; redis="main" is redis.url, any other value a shard of redis.shards by name.',
    labelNames: ['redis'] as const,
    registers,
  });
  const buildInfo = new Gauge({
    name: 'kurir_build_info',
    help: 'Build information; the value is always 1.',
    labelNames: ['version', 'node'] as const,
    registers,
  });
  buildInfo.set({ version: opts.version ?? 'unknown', node: process.version }, 1);

  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  }

  // ---- zero-initialise bounded label sets ------------------------------------
  // Series that exist from the start make rate()/increase() see the first event
  // and let ratios read 0 instead of "no data".
  for (const iface of INTAKE_INTERFACES) {
    for (const priority of PRIORITIES) intakeAccepted.inc({ interface: iface, priority }, 0);
    intakeBytes.inc({ interface: iface }, 0);
    intakeDuration.zero({ interface: iface });
    for (const scope of CONNECTION_CAP_SCOPES) connectionsRefused.inc({ interface: iface, scope }, 0);
    // API keys have no user name and HTTP no AUTH command per connection: only `ip` blocks over HTTP.
    for (const scope of iface === 'smtp' ? AUTH_BLOCK_SCOPES : (['ip'] as const)) authBlocked.inc({ interface: iface, scope }, 0);
  }
  for (const reason of AUTH_FAILURE_REASONS) authFailures.inc({ interface: reason === 'unknown-key' ? 'http' : 'smtp', reason }, 0);
  for (const state of QUEUE_STATES) {
    for (const priority of PRIORITIES) queueJobs.set({ state, priority }, 0);
  }
  for (const provider of new Set([...providers, 'other'])) queueOldestVerificationAge.set({ provider }, 0);
  for (const reason of ['missing-job', 'failed-job']) queueReconciled.inc({ reason }, 0);
  for (const outcome of ['returned', 'failed']) queueLeasesExpired.inc({ outcome }, 0);
  for (const kind of ['unavailable', 'internal']) deliveryJobErrors.inc({ kind }, 0);
  for (const kind of AUDIT_WRITE_KINDS) auditWriteFailures.inc({ kind }, 0);
  for (const reason of ['lease-lost', 'settled', 'duplicate']) deliverySuperseded.inc({ reason }, 0);
  for (const redis of ['main', ...(opts.redisShards ?? [])]) redisUp.set({ redis }, 0);
  for (const provider of providers) {
    deliveryAttempts.inc({ provider, result: 'delivered', category: 'none' }, 0);
    // Without these the first bounce or deferral of each kind after a restart is invisible to rate().
    for (const category of DELIVERY_CATEGORIES) {
      if (category === 'none') continue;
      if (category === 'message-expired') deliveryAttempts.inc({ provider, result: 'expired', category }, 0);
      else for (const result of ['deferred', 'bounced'] as const) deliveryAttempts.inc({ provider, result, category }, 0);
    }
    for (const priority of PRIORITIES) deliveryTime.zero({ priority, provider });
    for (const tls of ['yes', 'no']) deliveryTls.inc({ provider, tls }, 0);
    complaints.inc({ provider }, 0);
    // DSN bounces are the asynchronous half of the bounce ratio (KurirBounceRateHigh, the DSN branch of KurirPolicyRejections).
    for (const category of DELIVERY_CATEGORIES) if (category !== 'none') for (const type of BOUNCE_TYPES) bounces.inc({ provider, category, type }, 0);
    placementArrival.zero({ provider });
    for (const reason of SEED_ERROR_REASONS) placementSeedErrors.inc({ provider, reason }, 0);
    shapingPaused.set({ provider }, 0);
    for (const outcome of ['released', 'abandoned']) shapingReleasesRetried.inc({ provider, outcome }, 0);
    for (const folder of PLACEMENT_FOLDERS) placement.inc({ provider, folder }, 0);
    for (const cause of AUTH_CAUSES) deliveryAuthFailures.inc({ provider, cause }, 0);
    for (const method of PROBE_AUTH_METHODS) for (const result of PROBE_AUTH_RESULTS) placementAuth.inc({ provider, method, result }, 0);
  }
  for (const result of WEBHOOK_RESULTS) webhooks.inc({ result }, 0);
  for (const result of ['relayed', 'gone']) webhookOutbox.inc({ result }, 0);
  for (const { ip, pool } of opts.sourceIps ?? []) ipSent.inc({ ip, pool }, 0);
  for (const pool of new Set((opts.sourceIps ?? []).map((s) => s.pool))) ipWarmupWaits.inc({ pool }, 0);
  for (const reason of RSPAMD_SKIP_REASONS) rspamdSkipped.inc({ reason }, 0);
  // Without these a sender domain's series appear at their first event after a restart: rate() misses that event,
  // and while there is none (nobody confirms) KurirConfirmationRateBelowBaseline has no sample to fire on.
  const presetSenderDomains = (domains: readonly string[]): void => {
    for (const domain of new Set(domains.map((d) => d.toLowerCase()))) {
      for (const provider of providers) {
        confirmations.inc({ provider, domain }, 0);
        verificationsDelivered.inc({ provider, domain }, 0);
      }
      // So increase() sees the first message at the threshold after a restart (KurirRspamdOverThreshold).
      rspamdOverThreshold.inc({ domain }, 0);
    }
  };
  presetSenderDomains(senderDomains);
  for (const mode of MTA_STS_MODES) for (const result of ['success', 'failure']) mtaStsSessions.inc({ mode, result }, 0);
  for (const result of MTA_STS_LOOKUP_RESULTS) mtaStsLookups.inc({ result }, 0);
  for (const provider of providers) for (const result_type of TLS_RESULT_TYPES) tlsFailures.inc({ provider, result_type }, 0);

  return {
    registry,
    get contentType() {
      return registry.contentType;
    },
    render: () => registry.metrics(),
    setQueueProvider(fn: QueueProvider | null): void {
      queueProvider = fn;
    },
    presetSenderDomains,
    intakeAccepted,
    intakeRefused,
    intakeDuration,
    intakeBytes,
    intakeInflightBytes,
    redisFsyncOk,
    authFailures,
    authBlocked,
    connectionsRefused,
    connectionsOpen,
    queueJobs,
    queueOldestVerificationAge,
    queueProviderErrors,
    queueReconciled,
    queueLeasesExpired,
    deliveryJobErrors,
    deliverySuperseded,
    deliveryAttempts,
    deliveryTime,
    deliveryTls,
    deliveryConnectionReuses,
    deliveryReplies,
    deliveryAuthFailures,
    mtaStsSessions,
    mtaStsLookups,
    tlsFailures,
    dkimSignatures,
    dkimFailures,
    authSelfCheck,
    dkimKeyAge,
    dkimKeyWarnAge,
    dkimRotationWaiting,
    dkimScheduledRotations,
    shapingRefusals,
    shapingRate,
    shapingPaused,
    shapingPauses,
    shapingReleasesRetried,
    ipSent,
    ipWarmupWaits,
    bounces,
    complaints,
    suppressionsAdded,
    feedbackIgnored,
    feedbackDeferred,
    reportsReceived,
    reportsRefused,
    dmarcMessages,
    dmarcOwnFailures,
    tlsRptSessions,
    tlsRptFailures,
    webhooks,
    webhookOutbox,
    webhooksDisabled,
    auditWriteFailures,
    placement,
    placementArrival,
    placementSeedUp,
    placementSeedErrors,
    verificationsDelivered,
    confirmations,
    timeToConfirm,
    placementAuth,
    rspamdScore,
    rspamdChecks,
    rspamdSkipped,
    rspamdDuration,
    rspamdThreshold,
    rspamdOverThreshold,
    redisUp,
    buildInfo,
  };
}
