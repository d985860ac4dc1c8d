/**
 * The `feedback` section: bounce rules, the bounce MX (role `feedback`) and the size of what it takes, the report
 * parse threads, registered feedback-loop sources, soft-bounce suppression, and the ESP adapters (SES, Mailgun);
 * DMARC and TLS reports in reports-schema.ts.
 */
import { z } from 'zod';
import { reportsSchema } from './reports-schema.js';
import { domainName, durationSeconds, ipOrCidr, port } from './schema-primitives.js';

function isRegExp(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

/** Bounces and complaints: the bounce MX and the ESP adapters (src/feedback/, src/esp/, docs/feedback.md). */
export const feedbackSchema = z
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
  .default({});
