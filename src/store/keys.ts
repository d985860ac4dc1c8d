/**
 * Every Redis key name Kurir uses, in one place. All keys start with the configured prefix so several
 * gateways (or test files) can share one Redis without seeing each other's data.
 */
/** The keys of one delivery queue (see {@link Keys.deliveryQueue}). */
export interface DeliveryQueueKeys {
  jobs: string;
  ready: string;
  delayed: string;
  active: string;
  failed: string;
  wake: string;
  /** The verification jobs among `delayed` (same score), so a step under a backlog of due jobs moves them first. */
  delayedVerification: string;
}

export interface Keys {
  /** Hash of a message: `record`, `body` (until final), `r:<address>` per recipient (src/store/message-scripts.ts). */
  message(id: string): string;
  /** A message's recipient states before 2026-11-29 (own hash); read only by the layout migration. */
  legacyRecipients(id: string): string;
  /** A message's body before 2026-11-29 (own string); read only by the layout migration. */
  legacyBody(id: string): string;
  /** SCAN pattern of {@link legacyRecipients} keys. */
  legacyRecipientsPattern(): string;
  /** Marker that this Redis holds no message in the layout before 2026-11-29. */
  messageLayoutMigrated(): string;
  /** List of a message's timeline events (JSON, append-only, oldest first). */
  events(id: string): string;
  /**
   * Marker that one record write (`writeId`, the same across its retries) was applied to message `id`, holding what
   * it answered; expires after RECORD_WRITE_ID_TTL_MS (src/store/message-scripts.ts). Outside `msg:*`: no message.
   */
  recordWrite(id: string, writeId: string): string;
  /** One API key's claim of an Idempotency-Key: the request's hash and the message id reserved for it. */
  idempotency(owner: string, key: string): string;
  /** Hash of every suppression entry (JSON) by lower-cased address. */
  suppressions(): string;
  /** Sorted set (all scores 0, ordered by address) of every suppressed address: the paging index. */
  suppressionIndex(): string;
  /** The same index restricted to one recipient domain. */
  suppressionDomainIndex(domain: string): string;
  /** Hash of one API key's webhook state: consecutive failures, disabledAt, disabledReason. */
  webhookState(owner: string): string;
  /** Capped list (newest first) of one API key's recent webhook delivery attempts. */
  webhookDeliveries(owner: string): string;
  /** Marker (with an expiry) that a paused webhook's probe for the current interval is taken. */
  webhookProbe(owner: string): string;
  /** Sorted set of timeline events not yet in the webhook queue (member `<id>:<first index>:<count>`, score: due for the relay). */
  webhookOutbox(): string;
  /** The VERP token secret every gateway shares when `bounce.secret` is not set (created by the first). */
  verpSecret(): string;
  /** Sorted set of one address's recent soft bounces (member: message id, score: time); cleared on delivery. */
  softBounces(address: string): string;
  /** Kurir message id by the message's Message-ID header (lower-cased, no brackets): matches reports without VERP. */
  messageIdIndex(headerMessageId: string): string;
  /**
   * Key prefix of the failed-authentication counters of one scope (`ip` or `user`); rate-limiter-flexible
   * appends `:<client ip or user name>`. While a key is blocked its count is above the threshold.
   */
  authFailures(scope: 'ip' | 'user'): string;
  /** Key prefix of one intake limiter (rate-limiter-flexible appends `:<key>`), e.g. `limit:recipient`. */
  limiter(name: string): string;
  /** Hash of one provider's shaping state: effective rate, GCRA arrival time, pauses, clean-delivery count. */
  shapingState(provider: string): string;
  /** Sorted set of one provider's connection leases (score: lease expiry, ms). */
  shapingLeases(provider: string): string;
  /**
   * Sorted set of job ids held back because the provider is paused (resume promotes them); score: the message's
   * expiry (ms), after which the entry is dead and pruned.
   */
  shapingHeld(provider: string): string;
  /** The set {@link shapingHeld} was before 2026-12-01 (no expiry); read and deleted only by a resume. */
  legacyShapingHeld(provider: string): string;
  /** Sorted set of job ids that booked a future rate slot (score: the slot time, ms). */
  shapingBooked(provider: string): string;
  /** Sorted set of job ids of one priority waiting for the booking window (score: when each comes back). */
  shapingWaiters(provider: string, priority: string): string;
  /** Hash of recipient domains paused by an admin: domain → `until|since|by` (ms; until 0 = until resumed). */
  shapingPausedDomains(): string;
  /** Sorted set of job ids held back because their recipient domain is paused (resume promotes them); score as {@link shapingHeld}. */
  shapingDomainHeld(domain: string): string;
  /** The set {@link shapingDomainHeld} was before 2026-12-01 (no expiry); read and deleted only by a resume. */
  legacyShapingDomainHeld(domain: string): string;
  /** Counter of messages sent from one source IP in one warm-up window (`h:<YYYY-MM-DDTHH>` or `d:<YYYY-MM-DD>`, UTC), with a TTL. */
  ipWarmup(ip: string, window: string): string;
  /**
   * Marker (with a TTL) that an ESP notification (an SNS MessageId, a Mailgun signature token) is being applied
   * (a short claim) or was applied (replay protection): src/esp/apply-once.ts.
   */
  espSeen(provider: string, id: string): string;
  /** Sorted set of messages not yet final (score: createdAt, ms): what the reconciler walks. */
  liveMessages(): string;
  /** Lock (SET NX PX) held by the one process running a reconciler pass. */
  reconcileLock(): string;
  /** Where the last reconciler pass stopped (`score:id`), so a large backlog is walked in bounded passes. */
  reconcileCursor(): string;
  /** SCAN pattern matching every message record key (for rebuilding the live index). */
  messagePattern(): string;
  /** Marker that `liveMessages` was built for messages stored before it existed. */
  liveIndexBuilt(): string;
  /** JSON of a recipient domain's cached MTA-STS policy (RFC 8461), expiring after the policy's max_age. */
  mtaStsPolicy(domain: string): string;
  /** The policy id whose fetch last failed for a domain, with a TTL: that id is not fetched again until it lapses. */
  mtaStsFetchFailed(domain: string): string;
  /** Set while a seed's scheduled probe for the current interval is taken (one sender cluster-wide; expires after the interval). */
  placementSlot(seed: string): string;
  /** Set when a probe to the seed was requested on demand (API, CLI); the scheduler that deletes it sends the probe. */
  placementRequest(seed: string): string;
  /** Short lock: one process searches a seed's mailbox at a time. */
  placementCheckLock(seed: string): string;
  /** Sorted set of a seed's probes in flight (member: token, score: submission time, ms). */
  placementPending(seed: string): string;
  /** One probe in flight (JSON: token, seed, provider, message id, submission time). */
  placementProbe(token: string): string;
  /** Capped list (newest first) of one provider's placement results (JSON). */
  placementResults(provider: string): string;
  /** Hash of a seed's reachability: state (up|unreachable), reason, since, checkedAt, error. */
  placementSeedState(seed: string): string;
  /** When a message was confirmed by the booking system (ms); present once confirmed. */
  confirmation(id: string): string;
  /** HMAC key of confirm tokens, shared by every gateway through Redis. */
  confirmSecret(): string;
  /**
   * Hash of one provider's delivery outcomes in one minute (epoch minute): counts by result and category,
   * authentication refusals by cause, a sample reply per cause, verification deliveries and confirmations.
   * Expires after two hours: the rolling window of GET /v1/incidents.
   */
  incidentMinute(provider: string, minute: number): string;
  /**
   * Hash of one provider's verification deliveries and confirmations in one hour (epoch hour) by minute of the hour
   * (`vd:0` … `cf:59`; before 1 Dec 2026 the hour's totals `vd`, `cf`), kept 8 days: the confirmation baseline.
   */
  incidentHour(provider: string, hour: number): string;
  /** JSON of one runtime-managed sender domain: state, DKIM keys (private keys sealed), last verification. */
  senderDomain(domain: string): string;
  /** Set of every runtime-managed sender domain name. */
  senderDomainIndex(): string;
  /** Counter bumped by every change of a runtime-managed domain: each gateway polls it to reload. */
  senderDomainsVersion(): string;
  /** Hash of the latest authentication self-check per sender domain: domain → JSON (src/domains/auth-selfcheck.ts). */
  authSelfCheck(): string;
  /** Lock held by the one worker checking a domain now (SET NX PX). */
  authSelfCheckLock(domain: string): string;
  /** SET NX lock: one rotation scheduler pass in the cluster at a time. */
  domainRotationLock(): string;
  /** Key prefix of the BullMQ queues (webhooks; the delivery queue of versions before the lean queue). */
  bullPrefix(): string;
  /**
   * The delivery queue's keys (src/queue/delivery-queue.ts), hash-tagged so that one script may touch them
   * all on a Redis Cluster: `jobs` hash (job id → JSON), `ready` (score: priority rank × 1e13 + enqueued ms),
   * `delayed` (score: due ms; `delayedVerification` repeats its verification jobs), `active` (score: lease end ms)
   * and `failed` (score: failed at ms) sorted sets, and `wake`, the list idle workers block on.
   */
  deliveryQueue(): DeliveryQueueKeys;
  /** Hash of the credentials created at runtime: credential id → JSON (digests only, never a secret). */
  credentials(): string;
  /** Counter bumped on every credential change; gateways reload when it moves. */
  credentialsVersion(): string;
  /** HMAC key of the runtime credentials' digests, shared by every gateway through Redis. */
  credentialSecret(): string;
  /** Stream (capped) of audit entries: admin and support actions. */
  auditLog(): string;
  /** Sorted set of one recipient address's message ids (score: createdAt, ms), capped, expiring with retention. */
  recipientMessages(address: string): string;
  /** Sorted set of the message ids carrying one booking reference (lower-cased; score: createdAt, ms), capped, expiring with retention. */
  referenceMessages(reference: string): string;
  /** JSON of one web console session (src/store/console-session-store.ts), by the SHA-256 of its cookie value; expires when idle. */
  consoleSession(digest: string): string;
  /** Marker that a console create/rotate form (SHA-256 of its one-time token) was submitted; expires like an idle session. */
  consoleForm(digest: string): string;
  /** Marker that a DMARC/TLS report (kind `dmarc` or `tlsrpt`, SHA-256 of reporter and report id) was applied; expires with retention. */
  reportSeen(kind: string, digest: string): string;
  /** Hash of one sender domain's DMARC aggregate counts for one UTC day (`YYYY-MM-DD`): `<org>\t<counter>` → messages. */
  reportDmarc(domain: string, day: string): string;
  /** Hash of one sender domain's foreign sources (not Kurir's IPs) for one day: `<ip>` and `<ip>\tpass` → messages. */
  reportSources(domain: string, day: string): string;
  /** Hash of one policy domain's TLS-RPT counts for one day: `<org>\t<policy>\t<success|failure>`, `<org>\tresult\t<type>` → sessions. */
  reportTls(domain: string, day: string): string;
  /** Capped list (newest first) of one domain's recently applied reports (JSON summaries). */
  reportRecent(domain: string): string;
}

/** Builds the key namer for a prefix such as `kurir` or `kurir-test-123`. */
export function createKeys(prefix: string): Keys {
  return {
    message: (id) => `${prefix}:msg:${id}`,
    legacyBody: (id) => `${prefix}:body:${id}`,
    legacyRecipients: (id) => `${prefix}:rcpt:${id}`,
    legacyRecipientsPattern: () => `${prefix}:rcpt:*`,
    messageLayoutMigrated: () => `${prefix}:layout:message-hash`,
    events: (id) => `${prefix}:events:${id}`,
    recordWrite: (id, writeId) => `${prefix}:record-write:${id}:${writeId}`,
    idempotency: (owner, key) => `${prefix}:idem:${owner}:${key}`,
    suppressions: () => `${prefix}:suppressions`,
    suppressionIndex: () => `${prefix}:supp-idx`,
    suppressionDomainIndex: (domain) => `${prefix}:supp-idx:${domain}`,
    webhookState: (owner) => `${prefix}:webhook:${owner}`,
    webhookDeliveries: (owner) => `${prefix}:webhook-log:${owner}`,
    webhookOutbox: () => `${prefix}:webhook-outbox`,
    webhookProbe: (owner) => `${prefix}:webhook-probe:${owner}`,
    verpSecret: () => `${prefix}:verp-secret`,
    softBounces: (address) => `${prefix}:softbounce:${address.toLowerCase()}`,
    messageIdIndex: (headerMessageId) => `${prefix}:mid:${headerMessageId}`,
    authFailures: (scope) => `${prefix}:auth-fail:${scope}`,
    limiter: (name) => `${prefix}:limit:${name}`,
    shapingState: (provider) => `${prefix}:shaping:${provider}`,
    shapingLeases: (provider) => `${prefix}:shaping:${provider}:leases`,
    shapingHeld: (provider) => `${prefix}:shaping:${provider}:held-until`,
    legacyShapingHeld: (provider) => `${prefix}:shaping:${provider}:held`,
    shapingBooked: (provider) => `${prefix}:shaping:${provider}:booked`,
    shapingWaiters: (provider, priority) => `${prefix}:shaping:${provider}:waiters:${priority}`,
    shapingPausedDomains: () => `${prefix}:shaping-domain:paused`,
    shapingDomainHeld: (domain) => `${prefix}:shaping-domain:${domain.toLowerCase()}:held-until`,
    legacyShapingDomainHeld: (domain) => `${prefix}:shaping-domain:${domain.toLowerCase()}:held`,
    ipWarmup: (ip, window) => `${prefix}:ip-warmup:${ip.toLowerCase()}:${window}`,
    espSeen: (provider, id) => `${prefix}:esp-seen:${provider}:${id}`,
    liveMessages: () => `${prefix}:live`,
    reconcileLock: () => `${prefix}:reconcile:lock`,
    reconcileCursor: () => `${prefix}:reconcile:cursor`,
    liveIndexBuilt: () => `${prefix}:reconcile:indexed`,
    messagePattern: () => `${prefix}:msg:*`,
    mtaStsPolicy: (domain) => `${prefix}:mta-sts:${domain.toLowerCase()}`,
    mtaStsFetchFailed: (domain) => `${prefix}:mta-sts-failed:${domain.toLowerCase()}`,
    placementSlot: (seed) => `${prefix}:placement:slot:${seed}`,
    placementRequest: (seed) => `${prefix}:placement:request:${seed}`,
    placementCheckLock: (seed) => `${prefix}:placement:check-lock:${seed}`,
    placementPending: (seed) => `${prefix}:placement:pending:${seed}`,
    placementProbe: (token) => `${prefix}:placement:probe:${token}`,
    placementResults: (provider) => `${prefix}:placement:results:${provider}`,
    placementSeedState: (seed) => `${prefix}:placement:seed:${seed}`,
    confirmation: (id) => `${prefix}:confirmed:${id}`,
    confirmSecret: () => `${prefix}:confirm-secret`,
    incidentMinute: (provider, minute) => `${prefix}:incident:m:${provider}:${minute}`,
    incidentHour: (provider, hour) => `${prefix}:incident:h:${provider}:${hour}`,
    senderDomain: (domain) => `${prefix}:sender-domain:${domain.toLowerCase()}`,
    senderDomainIndex: () => `${prefix}:sender-domains`,
    senderDomainsVersion: () => `${prefix}:sender-domains:version`,
    authSelfCheck: () => `${prefix}:auth-selfcheck`,
    authSelfCheckLock: (domain) => `${prefix}:auth-selfcheck:lock:${domain.toLowerCase()}`,
    domainRotationLock: () => `${prefix}:sender-domains:rotation-lock`,
    bullPrefix: () => `${prefix}:q`,
    deliveryQueue: () => ({
      jobs: `${prefix}:{dq}:jobs`,
      ready: `${prefix}:{dq}:ready`,
      delayed: `${prefix}:{dq}:delayed`,
      active: `${prefix}:{dq}:active`,
      failed: `${prefix}:{dq}:failed`,
      wake: `${prefix}:{dq}:wake`,
      delayedVerification: `${prefix}:{dq}:delayed-verification`,
    }),
    credentials: () => `${prefix}:credentials`,
    credentialsVersion: () => `${prefix}:credentials:version`,
    credentialSecret: () => `${prefix}:credential-secret`,
    auditLog: () => `${prefix}:audit`,
    recipientMessages: (address) => `${prefix}:rcpt-msgs:${address.toLowerCase()}`,
    referenceMessages: (reference) => `${prefix}:ref-msgs:${reference.toLowerCase()}`,
    consoleSession: (digest) => `${prefix}:console-session:${digest}`,
    consoleForm: (digest) => `${prefix}:console-form:${digest}`,
    reportSeen: (kind, digest) => `${prefix}:report-seen:${kind}:${digest}`,
    reportDmarc: (domain, day) => `${prefix}:report:dmarc:${domain.toLowerCase()}:${day}`,
    reportSources: (domain, day) => `${prefix}:report:sources:${domain.toLowerCase()}:${day}`,
    reportTls: (domain, day) => `${prefix}:report:tls:${domain.toLowerCase()}:${day}`,
    reportRecent: (domain) => `${prefix}:report:recent:${domain.toLowerCase()}`,
  };
}
