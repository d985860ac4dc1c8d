/**
 * Who may submit and where their events go: the configured `apiKeys` (each with an optional webhook) and
 * `smtpAccounts`, `credentials` (those created at runtime, docs/credentials.md) and `webhooks` (how events are
 * POSTed to the booking systems, src/webhooks/).
 */
import { z } from 'zod';
import { webhookUrlProblem } from '../lib/webhook-url.js';
import { credentialLimitsSchema } from './limits-schema.js';
import { durationSeconds } from './schema-primitives.js';

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
    url: z.string().superRefine((url, ctx) => {
      const problem = webhookUrlProblem(url);
      if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    }),
    /** HMAC-SHA256 key of the Kurir-Signature header; shared with the receiver. */
    secret: z
      .string()
      .min(16, 'at least 16 characters')
      // As POST /v1/credentials checks it (src/admin/credential-scope.ts): the receiver must be able to type it in.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
      .refine((v) => !/[\x00-\x1f\x7f]/.test(v), 'printable characters only (no line break or other control character)'),
    /** Event types to send (default: all). */
    events: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).optional(),
  })
  .strict();

/** One configured API key (`apiKeys[]`). */
export const apiKeySchema = z
  .object({
    ...credentialScope,
    /** The key itself, or `sha256:<hex>` of it so the config holds no secret. */
    key: z.string().min(16, 'at least 16 characters'),
    webhook: apiKeyWebhook.optional(),
  })
  .strict();

/** One configured SMTP account (`smtpAccounts[]`). */
export const smtpAccountSchema = z
  .object({
    ...credentialScope,
    username: z.string().min(1),
    password: z.string().min(8, 'at least 8 characters, or sha256:<hex>'),
  })
  .strict();

/** Credentials created at runtime (`/v1/credentials`, `kurir credentials`): docs/credentials.md. */
export const credentialsSchema = z
  .object({
    /** HMAC-SHA256 key of the stored key digests; empty = generated once and shared through Redis. */
    secret: z.string().default(''),
    /** How often each gateway checks Redis for created, changed or revoked credentials. */
    refreshSeconds: z.number().positive().max(60).default(1),
  })
  .strict()
  .default({});

/** Webhook delivery: retries, pausing a failing webhook, timeouts, the outbox (src/webhooks/, docs/webhooks.md). */
export const webhooksSchema = z
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
  .default({});
