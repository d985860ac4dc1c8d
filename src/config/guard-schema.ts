/**
 * The `authLimits` section (failed-authentication throttling, src/intake/auth-throttle.ts) and the
 * connection and timeout options of the SMTP and HTTP listeners, kept beside schema.ts so the settings
 * that protect the intake against brute force and resource holding read as one unit.
 */
import { z } from 'zod';

const positiveInt = z.number().int().min(1);
const seconds = z.number().positive();

/**
 * Failed authentication (SMTP AUTH, HTTP API keys), counted cluster-wide in Redis per client IP (both
 * interfaces together) and per SMTP user name. Counts are whole seconds (Redis TTLs).
 */
export const authLimitsSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Failures are counted over this window (seconds)… */
    windowSeconds: positiveInt.default(900),
    /** …and the failure that reaches this count blocks the client IP (IPv6: its /64)… */
    maxFailuresPerIp: positiveInt.default(20),
    /** …or the SMTP user name (whatever the IP; a success resets this count)… */
    maxFailuresPerUser: positiveInt.default(10),
    /** …for this long: every attempt, even with correct credentials, is refused (SMTP 421 4.7.0, HTTP 429). */
    blockSeconds: positiveInt.default(900),
    /** SMTP: the connection is closed (421 4.7.0) after this many failed AUTH commands on it. */
    maxFailuresPerConnection: positiveInt.default(3),
    /** Each failure is answered after `delayStepMs` × the IP's failures in the window… */
    delayStepMs: z.number().int().min(0).default(200),
    /** …but never later than this. */
    maxDelayMs: z.number().int().min(0).default(2000),
    /**
     * HTTP: a client IP found not blocked is not asked about again for this long (ms) on this gateway, so a
     * request with a valid key costs no Redis round trip for the throttle. Failures are always counted in
     * Redis, and a block this gateway sets applies at once; one set by another gateway reaches valid-key
     * requests here within this time. 0 = ask Redis on every request.
     */
    clearCacheMs: z.number().int().min(0).max(10_000).default(1000),
  })
  .strict()
  .default({});

/** Keys of the `smtp` section: connection caps of the submission listeners (per gateway process). */
export const smtpConnectionOptions = {
  /** Open SMTP connections, both listeners together; the next one is answered 421 4.7.0 and closed. */
  maxConnections: positiveInt.default(500),
  /** Open SMTP connections from one client IP (IPv6: its /64); null = no per-IP cap. */
  maxConnectionsPerIp: positiveInt.nullable().default(20),
};

/** Keys of the `http` section: connection caps and timeouts of the API listener (per gateway process). */
export const httpConnectionOptions = {
  /** Open HTTP connections; the next one is closed at once. */
  maxConnections: positiveInt.default(2000),
  /** Open HTTP connections from one client IP (IPv6: its /64); null = no cap. Not applied with `trustProxy`. */
  maxConnectionsPerIp: positiveInt.nullable().default(100),
  /** The request line and headers must arrive within this time (408 and closed otherwise). */
  headersTimeoutSeconds: seconds.default(10),
  /** The whole request, body included, must arrive within this time (408 and closed otherwise). */
  requestTimeoutSeconds: seconds.default(60),
  /**
   * A connection on which nothing moves either way for this long is closed (a client that stops reading
   * its answer). Longer than any request takes to handle: a silent handler counts as idle too.
   */
  idleTimeoutSeconds: seconds.default(120),
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutSeconds: seconds.default(5),
};

export type AuthLimitsConfig = z.infer<typeof authLimitsSchema>;
