/**
 * The whole configuration, validated once at start (src/config/load.ts): `configSchema` and its type `Config`.
 * Every top-level section is named in this one object, so the whole shape reads in one place; a section with rules
 * of its own lives beside it: credentials-schema.ts (apiKeys, smtpAccounts, credentials, webhooks), delivery-schema.ts
 * (delivery, dns, bounce, dkim), domains-schema.ts (domains, domainKeys, doctor), feedback-schema.ts, guard-schema.ts,
 * limits-schema.ts, placement-schema.ts and scoring-schema.ts; value shapes they share in schema-primitives.ts.
 */
import { z } from 'zod';
import { apiKeySchema, credentialsSchema, smtpAccountSchema, webhooksSchema } from './credentials-schema.js';
import { bounceSchema, deliverySchema, dkimSchema, dnsSchema } from './delivery-schema.js';
import { doctorSchema, domainKeysSchema, senderDomainSchema } from './domains-schema.js';
import { feedbackSchema } from './feedback-schema.js';
import { authLimitsSchema, httpConnectionOptions, smtpConnectionOptions } from './guard-schema.js';
import { limitsSchema, shapingSchema } from './limits-schema.js';
import { placementSchema } from './placement-schema.js';
import { durationSeconds, port } from './schema-primitives.js';
import { scoringSchema } from './scoring-schema.js';
import { redisShardsSchema } from './shards-schema.js';

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
    domains: z.array(senderDomainSchema).default([]),
    apiKeys: z.array(apiKeySchema).default([]),
    smtpAccounts: z.array(smtpAccountSchema).default([]),
    delivery: deliverySchema,
    dns: dnsSchema,
    bounce: bounceSchema,
    /** DKIM signing (docs/benchmarks.md#signing-off-the-event-loop). */
    dkim: dkimSchema,
    /** Runtime-managed sender domains and their DKIM keys (src/domains/, docs/domains.md). */
    domainKeys: domainKeysSchema,
    /** The deliverability doctor (src/domains/doctor/, `kurir doctor`, GET /v1/domains/:domain/doctor). */
    doctor: doctorSchema,
    retention: z
      .object({ days: z.number().positive().default(7) })
      .strict()
      .default({}),
    idempotency: z
      .object({ ttlSeconds: durationSeconds.default(86400) })
      .strict()
      .default({}),
    /** Credentials created at runtime (`/v1/credentials`, `kurir credentials`): docs/credentials.md. */
    credentials: credentialsSchema,
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
    feedback: feedbackSchema,
    /** Seed-mailbox placement probes and verification confirmations (src/placement/). */
    placement: placementSchema,
    /** Pre-send scoring with rspamd at intake (src/scoring/); off by default. */
    scoring: scoringSchema,
    webhooks: webhooksSchema,
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type Priority = 'verification' | 'normal' | 'bulk';
export const PRIORITIES: readonly Priority[] = ['verification', 'normal', 'bulk'];
