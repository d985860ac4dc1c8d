/**
 * The `limits` (intake) and `shaping` (delivery) sections of the configuration, and the per-credential
 * `limits` option. Kept beside schema.ts so the traffic-shaping settings read as one unit.
 */
import { z } from 'zod';

const PRIORITY_VALUES = ['verification', 'normal', 'bulk'] as const;
const positiveInt = z.number().int().min(1);
/** A calendar date as YYYY-MM-DD (warm-up starts). */
export const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date as YYYY-MM-DD')
  .refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)), 'a valid calendar date');

/** Per-credential overrides (`apiKeys[].limits`, `smtpAccounts[].limits`); null means unlimited. */
export const credentialLimitsSchema = z
  .object({
    /** Messages per second (one message = one submission, whatever its number of recipients). */
    perSecond: positiveInt.nullable().optional(),
    /** Messages per UTC day. */
    perDay: positiveInt.nullable().optional(),
  })
  .strict();

/**
 * A daily cap on recipients (deliveries), with an optional warm-up schedule: on day N after `start`
 * (day 1 is the start date itself, and any day before it) the cap is `schedule[N-1]`; after the
 * schedule ends, `perDay` (null: no cap).
 */
export const dailyCapSchema = z
  .object({
    perDay: positiveInt.nullable().default(null),
    warmup: z
      .object({
        start: isoDate,
        schedule: z.array(positiveInt).min(1),
      })
      .strict()
      .nullable()
      .default(null),
  })
  .strict();

export const limitsSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Defaults for every API key and SMTP account (each may override them with its own `limits`). */
    credential: z
      .object({
        perSecond: positiveInt.nullable().default(null),
        perDay: positiveInt.nullable().default(null),
      })
      .strict()
      .default({}),
    /** At most `max` messages of the given priorities to one recipient address per `windowSeconds`. */
    recipient: z
      .object({
        max: positiveInt.default(5),
        windowSeconds: positiveInt.default(600),
        priorities: z.array(z.enum(PRIORITY_VALUES)).min(1).default(['verification']),
      })
      .strict()
      .nullable()
      .default({}),
    /** Recipients per UTC day over all sender domains. */
    global: dailyCapSchema.default({}),
    /** Recipients per UTC day for each sender domain, unless `domains` names it. */
    domainDefault: dailyCapSchema.default({}),
    /** Per sender domain (lower case), e.g. a new domain with a warm-up schedule. */
    domains: z.record(z.string().min(1), dailyCapSchema).default({}),
  })
  .strict()
  .default({});

const providerName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, "_" and "-"');

/** Limits of one destination provider. null means unlimited. */
export const providerLimitsSchema = z
  .object({
    /** Concurrent SMTP transactions to this provider, over all workers. */
    maxConnections: positiveInt.nullable().optional(),
    /** Messages per minute to this provider, over all workers (the adaptive rate never exceeds it). */
    perMinute: z.number().positive().nullable().optional(),
    /** Halve the rate and pause on "too fast" replies (config/throttle-rules.yaml). */
    adaptive: z.boolean().optional(),
    /** SMTP transactions on one pooled connection to this provider's MX before it is closed (QUIT) and a new one opened. */
    maxMessagesPerConnection: positiveInt.nullable().optional(),
  })
  .strict();

export const shapingSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Extra provider rules, checked before the built-in gmail/microsoft/yahoo/apple ones. */
    providers: z
      .array(
        z
          .object({
            provider: providerName,
            domains: z.array(z.string().min(1)).default([]),
            mx: z.array(z.string().min(1)).default([]),
          })
          .strict(),
      )
      .default([]),
    /** Limits of every provider not named in `limits`. */
    default: z
      .object({
        maxConnections: positiveInt.nullable().default(10),
        perMinute: z.number().positive().nullable().default(1200),
        adaptive: z.boolean().default(true),
        maxMessagesPerConnection: positiveInt.nullable().default(100),
      })
      .strict()
      .default({}),
    /**
     * Per provider, merged over `default`. "other" lumps together every receiver no rule names, so by
     * default it has no rate and is not adaptive (one small domain's 421 says nothing about the others).
     */
    limits: z.record(providerName, providerLimitsSchema).default({ other: { maxConnections: null, perMinute: null, adaptive: false } }),
    /** Rules file of replies that mean "too fast". */
    throttleRulesFile: z.string().min(1).default('config/throttle-rules.yaml'),
    /** Pause after a "too fast" reply. */
    backoffSeconds: z.number().positive().default(60),
    /** The adaptive rate never goes below this (messages per minute). */
    minPerMinute: z.number().positive().default(1),
    /** Clean deliveries after which the adaptive rate grows by `recoverStep` (up to the configured rate). */
    recoverAfter: positiveInt.default(50),
    recoverStep: z.number().positive().max(10).default(0.1),
    /** Rate intervals a verification message may borrow ahead of the steady rate (bulk borrows none). */
    burst: z
      .object({
        verification: z.number().min(0).default(10),
        normal: z.number().min(0).default(1),
        bulk: z.number().min(0).default(0),
      })
      .strict()
      .default({}),
    /**
     * Messages over the rate book a slot up to this far ahead and wait exactly until it (no polling);
     * the others queue for the booking window. Verification messages never wait behind bookings.
     */
    bookAheadSeconds: z.number().positive().default(5),
    /** Connections of `maxConnections` that only verification messages may use (when maxConnections > 1). */
    verificationReservedConnections: z.number().int().min(0).default(1),
    /** A connection slot whose worker died is reclaimed after this long. */
    leaseSeconds: z.number().positive().default(600),
    /** Jobs of an administratively paused provider look again this often (resume wakes them at once). */
    pausedRecheckSeconds: z.number().positive().default(60),
  })
  .strict()
  .default({});

export type LimitsConfig = z.infer<typeof limitsSchema>;
export type DailyCapConfig = z.infer<typeof dailyCapSchema>;
export type ShapingConfig = z.infer<typeof shapingSchema>;
export type CredentialLimits = z.infer<typeof credentialLimitsSchema>;
