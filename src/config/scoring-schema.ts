/**
 * Pre-send scoring with rspamd (`scoring.rspamd`, src/scoring/) and the per-domain Feedback-ID header
 * (`domains[].feedbackId`, src/intake/feedback-id.ts). Both are off unless configured.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

/** One field of a Feedback-ID: no colon (the separator), no space. */
const FEEDBACK_FIELD = /^[A-Za-z0-9._-]{1,64}$/;
/** The `a:b:c` part of `a:b:c:SenderId`: one to three fields. */
const FEEDBACK_PREFIX = /^[A-Za-z0-9._-]{1,64}(:[A-Za-z0-9._-]{1,64}){0,2}$/;
const prefix = z.string().regex(FEEDBACK_PREFIX, 'one to three fields separated by ":" (letters, digits, ".", "_", "-"), e.g. verification:booking:kurir');

/**
 * Gmail's Feedback-ID (`a:b:c:SenderId`) for one sender domain: the header is `<class prefix>:<senderId>`
 * for messages of that priority; a priority without a prefix gets no header from the configuration.
 */
export const feedbackIdSchema = z
  .object({
    /** The last field: stable, the same for all of this domain's mail (Gmail groups by it). */
    senderId: z.string().regex(FEEDBACK_FIELD, 'letters, digits, ".", "_", "-" (no ":")'),
    verification: prefix.optional(),
    normal: prefix.optional(),
    bulk: prefix.optional(),
  })
  .strict();

export type FeedbackIdConfig = z.infer<typeof feedbackIdSchema>;

/** rspamd's normal worker, asked about sampled messages at intake (src/scoring/pre-send-scorer.ts). */
const rspamdSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Base URL of rspamd's normal worker (the one that answers POST /checkv2; 11333 by default). */
    url: z
      .string()
      .regex(/^http:\/\/[^\s/?#]+\/?$/i, 'an http:// URL with host and port, e.g. http://127.0.0.1:11333')
      .default('http://127.0.0.1:11333'),
    /** An answer slower than this is a skip: the message is accepted unscored. */
    timeoutSeconds: z.number().positive().max(30).default(2),
    /**
     * Score every Nth message of each intake process (1: every message); placement probes always. 100 keeps
     * scoring to a few percent of a message's CPU even with rspamd on the same cores (docs/placement.md, Sampling).
     */
    sampleEvery: z.number().int().min(1).default(100),
    /**
     * At most this many sampled messages scored per second per intake process (probes not counted, never held
     * back); null: no cap. Bounds rspamd's CPU whatever the volume: 2 a second is 1 % of a core at ~5 ms a scan,
     * while every 100th of 500 msg/s would be 5 a second. Below 100 × this rate (200 msg/s by default) it never bites.
     */
    maxPerSecond: z.number().positive().nullable().default(2),
    /** The public address receivers see Kurir's mail come from (passed to rspamd as the client IP); required when enabled. */
    sendingIp: z
      .string()
      .refine((v) => isIP(v) !== 0, 'an IPv4 or IPv6 address')
      .nullable()
      .default(null),
    /** Refuse messages scoring at least this; null: refuse those rspamd's own action is `reject`. */
    threshold: z.number().nullable().default(null),
    /** false: score and record only, never refuse. */
    refuse: z.boolean().default(true),
    /** Symbols kept on the timeline and in a refusal, highest score first. */
    topSymbols: z.number().int().min(1).max(50).default(5),
  })
  .strict()
  .refine((r) => !r.enabled || r.sendingIp !== null, { message: 'required when scoring.rspamd.enabled is true', path: ['sendingIp'] });

export const scoringSchema = z
  .object({ rspamd: rspamdSchema.default({}) })
  .strict()
  .default({});

export type RspamdConfig = z.infer<typeof rspamdSchema>;
