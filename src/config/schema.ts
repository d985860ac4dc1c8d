/*
 * Longer than 300 lines on purpose: the whole configuration, validated once at start, in one schema that
 * reads like docs/configuration.md. Sections that grew their own rules live beside it (guard-schema.ts,
 * limits-schema.ts, placement-schema.ts); split more out the same way when a section grows.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { redisShardsSchema } from './shards-schema.js';
import { authLimitsSchema, httpConnectionOptions, smtpConnectionOptions } from './guard-schema.js';
import { ipPoolsSchema } from './ip-pools-schema.js';
import { credentialLimitsSchema, limitsSchema, shapingSchema } from './limits-schema.js';
import { placementSchema } from './placement-schema.js';
import { reportsSchema } from './reports-schema.js';
import { feedbackIdSchema, scoringSchema } from './scoring-schema.js';

const port = z.number().int().min(0).max(65535);
const durationSeconds = z.number().positive();

function isRegExp(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

/** `auto` or a whole number from 0 to `max`; a value that is neither says so (zod's own: "Invalid input"). */
const autoOrNumber = (max: number) =>
  z.union([z.literal('auto'), z.number().int().min(0).max(max)], {
    errorMap: (issue, ctx) => ({ message: issue.code === 'invalid_union' ? `auto, or a whole number from 0 to ${max}` : ctx.defaultError }),
  });
const domainName = z.string().regex(/^(?!-)[a-z0-9.-]+\.[a-z0-9-]+$/i, 'a domain name such as example.com');

/** An IPv4/IPv6 address or CIDR range, e.g. 192.0.2.0/24 or 2001:db8::/32. */
/** An MTA-STS `mx:` pattern: a host name, or `*.` and a domain (RFC 8461 4.1). */
const mxPattern = z.string().regex(/^(\*\.)?(?!-)[a-z0-9.-]+\.[a-z0-9-]+$/i, 'a host name such as mx1.example.com or *.example.com');
const ipOrCidr = z.string().refine((v) => {
  const [ip, bits, extra] = v.split('/');
  const family = isIP(ip);
  if (!family || extra !== undefined) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}, 'an IP address or CIDR range such as 192.0.2.0/24');

const dkimKey = z
  .object({
    selector: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'letters, digits, dot, dash, underscore'),
    algorithm: z.enum(['rsa', 'ed25519']).default('rsa'),
    privateKeyFile: z.string().min(1),
    /** Generate the key file on first start when it does not exist (for development). */
    generate: z.boolean().default(false),
  })
  .strict();

const senderDomain = z
  .object({
    name: domainName,
    dkim: z.array(dkimKey).default([]),
    /** Gmail Feedback-ID per traffic class (src/config/scoring-schema.ts); none when absent. */
    feedbackId: feedbackIdSchema.optional(),
  })
  .strict();

const credentialScope = {
  name: z.string().min(1),
  /** Sender domains this credential may use in MAIL FROM / From. `*` allows every configured domain. */
  domains: z.array(z.string().min(1)).min(1),
  admin: z.boolean().default(false),
  /** Overrides of `limits.credential` (messages per second / per day) for this credential. */
  limits: credentialLimitsSchema.optional(),
};

/** Timeline events a webhook can receive (src/webhooks/events.ts). */
export const WEBHOOK_EVENT_TYPES = ['delivered', 'deferred', 'bounced', 'complained', 'expired', 'suppressed'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Where the booking system behind an API key wants its events: POSTed as signed JSON. */
const apiKeyWebhook = z
  .object({
    url: z.string().regex(/^https?:\/\/[^\s/?#]+[^\s]*$/i, 'an http:// or https:// URL'),
    /** HMAC-SHA256 key of the Kurir-Signature header; shared with the receiver. */
    secret: z.string().min(16, 'at least 16 characters'),
    /** Event types to send (default: all). */
    events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).optional(),
  })
  .strict();

const apiKey = z
  .object({
    ...credentialScope,
    /** The key itself, or `sha256:<hex>` of it so the config holds no secret. */
    key: z.string().min(16, 'at least 16 characters'),
    webhook: apiKeyWebhook.optional(),
  })
  .strict();

const smtpAccount = z
  .object({
    ...credentialScope,
    username: z.string().min(1),
    password: z.string().min(8, 'at least 8 characters, or sha256:<hex>'),
  })
  .strict();

const tlsFiles = z.object({ keyFile: z.string(), certFile: z.string() }).strict();

/** The URL at which `redis.manage: auto` starts a local redis-server when nothing answers. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Development or production (src/config/mode.ts): production closes /docs and an open /metrics and refuses unsafe settings. */
export const MODES = ['development', 'production'] as const;
export type Mode = (typeof MODES)[number];

export const configSchema = z
  .object({
    /** Resolved by the loader: an unset `mode` is production when NODE_ENV=production, else development. */
    mode: z.enum(MODES).default('development'),
    roles: z
      .array(z.enum(['intake', 'api', 'worker', 'feedback', 'placement']))
      .min(1)
      .default(['intake', 'api', 'worker']),
    hostname: z.string().min(1).default('localhost'),
    dataDir: z.string().default('./data'),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({}),
    redis: z
      .object({
        url: z
          .string()
          .regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL')
          .default(DEFAULT_REDIS_URL),
        prefix: z
          .string()
          .regex(/^[a-zA-Z0-9_-]+$/, 'letters, digits, _ and - only (Kurir adds the colon)')
          .default('kurir'),
        /** auto: start a local redis-server (AOF under dataDir/redis) when the default URL does not answer. */
        manage: z.enum(['auto', 'never']).default('auto'),
        /**
         * standard: a 202/250 once the write is in Redis; fsync: once it is on disk (Redis must run with
         * appendonly yes and appendfsync always: checked at start and after every reconnect).
         */
        durability: z.enum(['standard', 'fsync']).default('standard'),
        /** Message data of some sender domains on other Redis servers (src/config/shards-schema.ts); none by default. */
        shards: redisShardsSchema,
      })
      .strict()
      // The fsync check (src/store/durability.ts) watches redis.url only, and messages would be written to the shards.
      .refine((r) => r.durability !== 'fsync' || r.shards.length === 0, { message: 'durability fsync is not supported with shards yet', path: ['shards'] })
      .default({}),
    smtp: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().default('127.0.0.1'),
        port: port.default(2525),
        /** Implicit-TLS submission (465 in production); null disables it. */
        tlsPort: port.nullable().default(null),
        tls: tlsFiles.nullable().default(null),
        /** Allow AUTH without TLS for clients on loopback only (never for others). */
        allowInsecureAuthOnLoopback: z.boolean().default(true),
        maxRecipients: z.number().int().min(1).default(50),
        maxMessageBytes: z
          .number()
          .int()
          .min(1024)
          .default(10 * 1024 * 1024),
        socketTimeoutSeconds: durationSeconds.default(60),
        ...smtpConnectionOptions,
      })
      .strict()
      .default({}),
    http: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().default('127.0.0.1'),
        port: port.default(8025),
        maxMessageBytes: z
          .number()
          .int()
          .min(1024)
          .default(10 * 1024 * 1024),
        trustProxy: z.boolean().default(false),
        /** The OpenAPI UI and document (`/docs`, `/docs/json`); null: served in development, not in production. */
        docs: z.boolean().nullable().default(null),
        ...httpConnectionOptions,
      })
      .strict()
      .refine((h) => h.headersTimeoutSeconds <= h.requestTimeoutSeconds, {
        message: 'must not be longer than http.requestTimeoutSeconds',
        path: ['headersTimeoutSeconds'],
      })
      .default({}),
    /** Admission control across HTTP and SMTP intake in one process (src/lib/admission.ts). */
    intake: z
      .object({
        /** Bytes of messages being received and processed at once; over it: 503 / 451 4.3.2 with Retry-After. */
        maxBytesInFlight: z
          .number()
          .int()
          .min(1024 * 1024, 'at least 1048576 (1 MiB)')
          .default(40 * 1024 * 1024),
        /** Retry-After of those refusals. */
        busyRetryAfterSeconds: z.number().int().min(1).max(3600).default(5),
        /**
         * The metadata key holding the booking reference (null: none): its value is indexed for support's
         * search (`GET /v1/messages?reference=`, the console); an `X-Kurir-Reference` header sets it too.
         */
        referenceKey: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,64}$/, '1 to 64 letters, digits, "_", "." or "-"')
          .nullable()
          .default('reference'),
      })
      .strict()
      .default({}),
    metrics: z
      .object({
        /** Serve /metrics on its own listener (null: on the HTTP API's port). */
        port: port.nullable().default(null),
        host: z.string().default('127.0.0.1'),
        /** Require `Authorization: Bearer <token>` for /metrics (null: open). */
        token: z.string().min(16, 'at least 16 characters').nullable().default(null),
      })
      .strict()
      .default({}),
    domains: z.array(senderDomain).default([]),
    apiKeys: z.array(apiKey).default([]),
    smtpAccounts: z.array(smtpAccount).default([]),
    delivery: z
      .object({
        /** Port of recipients' MX hosts: 25 in production; tests point it at a local receiver. */
        mxPort: port.default(25),
        smarthost: z
          .object({
            host: z.string().min(1),
            port: port.default(587),
            secure: z.boolean().default(false),
            /** STARTTLS required, never continuing in clear. Unset: required when `user` is set (src/config/smarthost-tls.ts). */
            requireTls: z.boolean().optional(),
            /** Verify the smarthost's certificate against `host`. Unset: verified when `user` is set, else `delivery.verifyTls`. */
            verifyTls: z.boolean().optional(),
            user: z.string().min(1).optional(),
            pass: z.string().optional(),
            /** The written opt-out: accept credentials over optional or unverified TLS to a host that is not loopback. */
            allowInsecureAuth: z.boolean().default(false),
          })
          .strict()
          .nullable()
          .default(null),
        /** Source-IP pools (bind address, HELO, warm-up) per priority and sender domain (src/config/ip-pools-schema.ts). */
        ipPools: ipPoolsSchema,
        concurrency: z.number().int().min(1).max(1000).default(20),
        connectTimeoutSeconds: durationSeconds.default(15),
        greetingTimeoutSeconds: durationSeconds.default(30),
        socketTimeoutSeconds: durationSeconds.default(120),
        /** Verify the MX certificate (off by default: opportunistic STARTTLS as most MTAs do). */
        verifyTls: z.boolean().default(false),
        /** Send MAIL, RCPT and DATA in one write when the receiver offers PIPELINING (RFC 2920): two round trips a message instead of four. */
        pipelining: z.boolean().default(true),
        /** Outbound MTA-STS (RFC 8461) for delivery to MX hosts; not used with a smarthost (src/delivery/mta-sts.ts). */
        mtaSts: z
          .object({
            enabled: z.boolean().default(true),
            /** Bound of one HTTPS policy fetch (the RFC suggests up to a minute; a delivery waits for it). */
            fetchTimeoutSeconds: durationSeconds.default(20),
            /** After a failed fetch the same policy id of a domain is not fetched again for this long (RFC 8461 suggests ≥ 5 min). */
            fetchRetrySeconds: durationSeconds.default(300),
          })
          .strict()
          .default({}),
        /** Delays between attempts; the last repeats. Each gets ±jitter. */
        retrySchedule: z.array(durationSeconds).min(1).default([30, 60, 120, 300, 600, 1200, 1800, 3600]),
        retryJitter: z.number().min(0).max(1).default(0.2),
        ttl: z
          .object({
            verification: durationSeconds.default(1800),
            normal: durationSeconds.default(86400),
            bulk: durationSeconds.default(86400),
          })
          .strict()
          .default({}),
        maxTtlSeconds: durationSeconds.default(7 * 86400),
        /** A job whose worker died is handed to another worker once its lock lapses (this long). */
        jobLockSeconds: durationSeconds.default(30),
        /** Bound for SIGTERM: in-flight deliveries get this long to finish. */
        shutdownGraceSeconds: durationSeconds.default(20),
        /** The reconciler (src/delivery/reconciler.ts): re-queues messages whose delivery job is missing or failed. */
        reconcile: z
          .object({
            intervalSeconds: durationSeconds.default(60),
            /** Messages younger than this are left alone (their intake may still be enqueueing them). */
            graceSeconds: durationSeconds.default(30),
            batchSize: z.number().int().min(1).max(10_000).default(500),
            /** Messages checked per pass at most; a larger backlog is walked over several passes. */
            maxPerPass: z.number().int().min(1).default(20_000),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    dns: z
      .object({
        /** `ip` or `ip:port`; empty means the system resolver. */
        servers: z.array(z.string().min(1)).default([]),
        timeoutSeconds: durationSeconds.default(5),
        tries: z.number().int().min(1).default(2),
        /** Per-process cache of MX, A and AAAA answers (TTL honoured; negative answers by the SOA, bounded). */
        cache: z
          .object({
            enabled: z.boolean().default(true),
            maxEntries: z.number().int().min(1).default(10_000),
            maxTtlSeconds: z.number().int().min(1).default(3600),
            negativeMaxSeconds: z.number().int().min(0).default(300),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    bounce: z
      .object({
        domain: domainName.default('bounce.localhost.test'),
        /** HMAC secret for VERP tokens; when empty, generated once and shared through Redis (src/roles/core.ts). */
        secret: z.string().default(''),
      })
      .strict()
      .default({}),
    /** DKIM signing (docs/benchmarks.md#signing-off-the-event-loop). */
    dkim: z
      .object({
        /** Signing threads: 0 = sign on the event loop; `auto`: see signingThreadsFor (src/dkim/sign-pool.ts). */
        signingThreads: autoOrNumber(16).default('auto'),
      })
      .strict()
      .default({}),
    /** Runtime-managed sender domains and their DKIM keys (src/domains/, docs/domains.md). */
    domainKeys: z
      .object({
        /** AES-256-GCM master key sealing DKIM private keys in Redis: 64 hex digits or base64 of 32 bytes (KURIR_DOMAIN_KEYS__MASTER_KEY). */
        masterKey: z.string().default(''),
        /** …or a file holding it (mode 0600). */
        masterKeyFile: z.string().default(''),
        /** During a master-key rotation: the previous key, still accepted for opening until `kurir domains rewrap` ran. */
        previousMasterKey: z.string().default(''),
        previousMasterKeyFile: z.string().default(''),
        /** The gateways' public sending IPs, put into the SPF record Kurir proposes. */
        sendingIps: z.array(ipOrCidr).default([]),
        /** Local part of the DMARC aggregate report address at bounce.domain (rua=mailto:<this>@<bounce.domain>). */
        dmarcReportLocalPart: z
          .string()
          .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/i, 'a local part such as dmarc')
          .default('dmarc'),
        /** Local part of the TLS-RPT report address at bounce.domain (`_smtp._tls.<domain>` rua=mailto:<this>@<bounce.domain>). */
        tlsReportLocalPart: z
          .string()
          .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/i, 'a local part such as tls-reports')
          .default('tls-reports'),
        /** The MTA-STS policy Kurir proposes for each runtime-managed domain (mode testing). */
        mtaSts: z
          .object({
            /** The `mx:` lines: the hosts receiving mail for the domains (`*.example.com` allowed); [] = `hostname`, Kurir's own MX. */
            mx: z.array(mxPattern).default([]),
            /** The policy's max_age (RFC 8461: at most 31557600). */
            maxAgeSeconds: z.number().int().min(86400).max(31557600).default(604800),
          })
          .strict()
          .default({}),
        /**
         * Scheduled DKIM key rotation (src/domains/rotation-scheduler.ts, role api): a runtime-managed domain whose active
         * key is `everyDays` old gets a new key and selector, and signing switches once DNS serves it. null: off.
         */
        rotation: z
          .object({
            everyDays: z.number().min(1).max(3650).default(90),
            /** kurir_dkim_key_warn_age_seconds = everyDays − warnDays: the KurirDkimKeyAgeing alert fires past it. */
            warnDays: z.number().min(0).max(3650).default(14),
            /** How often the scheduler looks for due keys and checks DNS for the rotations it started. */
            checkIntervalSeconds: z.number().min(0.05).max(86400).default(300),
          })
          .strict()
          .nullable()
          .default({}),
        /** A retired selector stays published for delivery.maxTtlSeconds plus this margin after signing with it stopped. */
        keepPublishedMarginHours: z.number().min(0).default(168),
        /** How often each gateway checks Redis for domain and key changes. */
        refreshSeconds: z.number().min(0.05).max(60).default(1),
        /** The continuous authentication self-check (src/domains/auth-selfcheck.ts), run by role worker. */
        selfCheck: z
          .object({
            enabled: z.boolean().default(true),
            /** Every active domain is checked this often, and at once after a key or domain change. */
            intervalSeconds: z.number().min(0.2).max(86400).default(600),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    /** The deliverability doctor (src/domains/doctor/, `kurir doctor`, GET /v1/domains/:domain/doctor). */
    doctor: z
      .object({
        /** DNS blocklist zones the sending IPs are looked up in (through the configured resolver). */
        blocklists: z.array(domainName).default(['zen.spamhaus.org', 'b.barracudacentral.org', 'bl.spamcop.net']),
      })
      .strict()
      .default({}),
    retention: z
      .object({ days: z.number().positive().default(7) })
      .strict()
      .default({}),
    idempotency: z
      .object({ ttlSeconds: durationSeconds.default(86400) })
      .strict()
      .default({}),
    /** Credentials created at runtime (`/v1/credentials`, `kurir credentials`): docs/credentials.md. */
    credentials: z
      .object({
        /** HMAC-SHA256 key of the stored key digests; empty = generated once and shared through Redis. */
        secret: z.string().default(''),
        /** How often each gateway checks Redis for created, changed or revoked credentials. */
        refreshSeconds: z.number().positive().max(60).default(1),
      })
      .strict()
      .default({}),
    /** The web console at `/console` (src/http/console/), served by the API role. */
    console: z
      .object({
        enabled: z.boolean().default(true),
        /** A console session ends after this long without a request (sessions live in Redis). */
        idleTimeoutSeconds: z.number().int().min(60).max(86400).default(900),
        /** Base URL of the Grafana serving dashboards/grafana/ (null: no dashboard links in the console). */
        grafanaUrl: z
          .string()
          .regex(/^https?:\/\/[^\s?#]+$/i, 'an http:// or https:// URL without query or fragment')
          .nullable()
          .default(null),
      })
      .strict()
      .default({}),
    /** The audit log of admin and support actions (`GET /v1/audit`). */
    audit: z
      .object({
        /** Entries kept (a Redis stream trimmed to about this many, oldest first). */
        maxEntries: z.number().int().min(100).default(100000),
      })
      .strict()
      .default({}),
    /** Intake limits: per credential, per recipient, daily caps with warm-up (src/shaping/intake-limiter.ts). */
    limits: limitsSchema,
    /** Failed-authentication throttling, SMTP and HTTP (src/intake/auth-throttle.ts). */
    authLimits: authLimitsSchema,
    /** Per-provider delivery shaping and adaptive slow-down (src/shaping/provider-shaper.ts). */
    shaping: shapingSchema,
    feedback: z
      .object({
        /** Bounce classification rules (src/feedback/classify/rules.ts); relative to the working directory. */
        rulesFile: z.string().min(1).default('config/bounce-rules.yaml'),
        /** The bounce MX (role `feedback`): DSNs to VERP addresses and ARF reports to `fblAddress`@bounce.domain. */
        host: z.string().default('127.0.0.1'),
        /** 25 in production (the MX of bounce.domain); 2526 for development. */
        port: port.default(2526),
        /** Local part of the feedback-loop address at the bounce domain, e.g. `fbl` → fbl@bounce.example.com. */
        fblAddress: z
          .string()
          .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/i, 'a local part such as fbl')
          .default('fbl'),
        /**
         * Bytes of a report that are kept and read. A DSN or ARF report over it (one that returns a whole original
         * message) is read from its first `maxMessageBytes` (the report parts come before the returned message);
         * a DMARC or TLS report over it is refused with 552 5.3.4.
         */
        maxMessageBytes: z
          .number()
          .int()
          .min(1024)
          .default(2 * 1024 * 1024),
        /** Largest message the bounce MX takes (its SIZE); larger ones are refused with 552 5.3.4. At least maxMessageBytes. */
        maxAcceptedBytes: z
          .number()
          .int()
          .min(1024)
          .default(64 * 1024 * 1024),
        /** Threads that parse DSN and ARF reports off the event loop (src/feedback/ingest/parse-pool.ts), started on the first report. */
        parseThreads: z.number().int().min(1).max(8).default(1),
        /** Wall-clock seconds one report may take to parse; a thread over it is stopped and the report not used (`timeout`). */
        maxParseSeconds: z.number().min(0.1).max(600).default(10),
        /** Reports waiting for a parse thread; more are answered 451 4.3.2, so the sender retries. */
        maxQueuedReports: z.number().int().min(0).max(1000).default(50),
        socketTimeoutSeconds: durationSeconds.default(60),
        /**
         * Registered feedback loops (src/feedback/ingest/trust.ts): a report to fblAddress whose original carries no
         * signed VERP is used only when it comes from one of these — DKIM-signed (pass) by one of `dkimDomains`
         * (or a subdomain), or delivered from one of `ips`. Anything else is counted and ignored.
         */
        fblSources: z
          .object({
            dkimDomains: z.array(domainName).default([]),
            ips: z.array(ipOrCidr).default([]),
          })
          .strict()
          .default({}),
        /** Soft bounces suppress an address only after this many consecutive ones (different messages)… */
        softBounceThreshold: z.number().int().min(1).default(3),
        /** …within this many days. */
        softBounceWindowDays: z.number().positive().default(7),
        /** Amazon SES bounce/complaint notifications via SNS at POST /v1/feedback/ses (role api; src/esp/ses.ts). */
        ses: z
          .object({
            /** SNS topics whose notifications are accepted; empty = the endpoint is off (404). */
            topicArns: z
              .array(
                z
                  .string()
                  .regex(
                    /^arn:[a-z0-9-]+:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/,
                    'an SNS topic ARN such as arn:aws:sns:eu-west-1:123456789012:ses-feedback',
                  ),
              )
              .default([]),
            /** GET the SubscribeURL of a (verified) SubscriptionConfirmation; when false it is only logged for the admin. */
            autoConfirm: z.boolean().default(false),
            /** Hosts the SigningCertURL and SubscribeURL must have (https only): a regular expression over the host name. */
            certHostPattern: z.string().refine(isRegExp, 'a valid regular expression').default('^sns\\.[a-z0-9-]+\\.amazonaws\\.com(\\.cn)?$'),
            /** Older notifications (by their signed Timestamp) are refused; replays within this window are recognised by MessageId. */
            maxAgeSeconds: durationSeconds.default(86400),
          })
          .strict()
          .default({}),
        /** Mailgun event webhooks (failed, complained) at POST /v1/feedback/mailgun (role api; src/esp/mailgun.ts). */
        mailgun: z
          .object({
            /** The HTTP webhook signing key from Mailgun's dashboard; null = the endpoint is off (404). */
            signingKey: z.string().min(16, 'at least 16 characters').nullable().default(null),
            /** Signatures whose timestamp is further than this from now are refused (tokens are remembered for twice as long). */
            maxSkewSeconds: durationSeconds.default(300),
          })
          .strict()
          .default({}),
        /** DMARC aggregate and TLS-RPT reports (src/config/reports-schema.ts, docs/reports.md). */
        reports: reportsSchema,
      })
      .strict()
      .refine((f) => f.maxAcceptedBytes >= f.maxMessageBytes, {
        message: 'must be at least feedback.maxMessageBytes',
        path: ['maxAcceptedBytes'],
      })
      .default({}),
    /** Seed-mailbox placement probes and verification confirmations (src/placement/). */
    placement: placementSchema,
    /** Pre-send scoring with rspamd at intake (src/scoring/); off by default. */
    scoring: scoringSchema,
    webhooks: z
      .object({
        /** Attempts per event with exponential backoff (the first included); then it is tried every `pausedRetrySeconds`. */
        maxAttempts: z.number().int().min(1).max(50).default(8),
        /** First retry delay; each further retry doubles it (exponential backoff). */
        backoffSeconds: durationSeconds.default(30),
        /**
         * Consecutive failed attempts (any event) after which a key's webhook is paused: its events are held, and
         * one is tried every `pausedRetrySeconds`; the first success (or POST /v1/webhooks/enable) resumes it.
         */
        disableAfterFailures: z.number().int().min(1).default(50),
        pausedRetrySeconds: durationSeconds.max(3600).default(60),
        timeoutSeconds: durationSeconds.default(5),
        concurrency: z.number().int().min(1).max(200).default(10),
        /** Recent attempts kept per key for GET /v1/webhooks/deliveries. */
        historySize: z.number().int().min(1).max(10_000).default(200),
        /**
         * Events a webhook wants also go into the webhook outbox with the timeline write; one not queued within
         * this long (its process died, or Redis failed in between) is queued by the relay of a worker.
         */
        outboxGraceSeconds: durationSeconds.max(3600).default(30),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type Priority = 'verification' | 'normal' | 'bulk';
export const PRIORITIES: readonly Priority[] = ['verification', 'normal', 'bulk'];
