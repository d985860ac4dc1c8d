/**
 * Outbound mail: `delivery` (MX port or smarthost, source-IP pools, timeouts, MTA-STS, retries, lifetimes, the
 * reconciler), `dkim` (signing threads), `dns` (the resolver and its cache) and `bounce` (the VERP return-path
 * domain and its secret).
 */
import { z } from 'zod';
import { ipPoolsSchema } from './ip-pools-schema.js';
import { domainName, durationSeconds, port } from './schema-primitives.js';

/** Delivery to the recipients' MX hosts or a smarthost (src/delivery/). */
export const deliverySchema = z
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
  .default({});

/** `auto` or a whole number from 0 to `max`; a value that is neither says so (zod's own: "Invalid input"). */
const autoOrNumber = (max: number) =>
  z.union([z.literal('auto'), z.number().int().min(0).max(max)], {
    errorMap: (issue, ctx) => ({ message: issue.code === 'invalid_union' ? `auto, or a whole number from 0 to ${max}` : ctx.defaultError }),
  });

/** DKIM signing (docs/benchmarks.md#signing-off-the-event-loop). */
export const dkimSchema = z
  .object({
    /** Signing threads: 0 = sign on the event loop; `auto`: see signingThreadsFor (src/dkim/sign-pool.ts). */
    signingThreads: autoOrNumber(16).default('auto'),
  })
  .strict()
  .default({});

/** The DNS resolver every lookup goes through (src/delivery/resolver.ts) and its cache. */
export const dnsSchema = z
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
  .default({});

/** The bounce (VERP return-path) domain and the secret of its tokens (src/lib/verp.ts). */
export const bounceSchema = z
  .object({
    domain: domainName.default('bounce.localhost.test'),
    /** HMAC secret for VERP tokens; when empty, generated once and shared through Redis (src/roles/core.ts). */
    secret: z.string().default(''),
  })
  .strict()
  .default({});
