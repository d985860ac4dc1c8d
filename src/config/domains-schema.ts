/**
 * The sender domains: `domains` (configured in the file, each with its DKIM keys and Feedback-ID), `domainKeys`
 * (runtime-managed domains: the master key sealing their keys, the DNS records Kurir proposes, scheduled rotation,
 * the authentication self-check; src/domains/, docs/domains.md) and `doctor` (the deliverability doctor).
 */
import { z } from 'zod';
import { domainName, ipOrCidr } from './schema-primitives.js';
import { feedbackIdSchema } from './scoring-schema.js';

/** An MTA-STS `mx:` pattern: a host name, or `*.` and a domain (RFC 8461 4.1). */
const mxPattern = z.string().regex(/^(\*\.)?(?!-)[a-z0-9.-]+\.[a-z0-9-]+$/i, 'a host name such as mx1.example.com or *.example.com');

const dkimKey = z
  .object({
    selector: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'letters, digits, dot, dash, underscore'),
    algorithm: z.enum(['rsa', 'ed25519']).default('rsa'),
    privateKeyFile: z.string().min(1),
    /** Generate the key file on first start when it does not exist (for development). */
    generate: z.boolean().default(false),
  })
  .strict();

/** One configured sender domain (`domains[]`). */
export const senderDomainSchema = z
  .object({
    name: domainName,
    dkim: z.array(dkimKey).default([]),
    /** Gmail Feedback-ID per traffic class (src/config/scoring-schema.ts); none when absent. */
    feedbackId: feedbackIdSchema.optional(),
  })
  .strict();

/** Runtime-managed sender domains and their DKIM keys (src/domains/, docs/domains.md). */
export const domainKeysSchema = z
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
  .default({});

/** The deliverability doctor (src/domains/doctor/, `kurir doctor`, GET /v1/domains/:domain/doctor). */
export const doctorSchema = z
  .object({
    /** DNS blocklist zones the sending IPs are looked up in (through the configured resolver). */
    blocklists: z.array(domainName).default(['zen.spamhaus.org', 'b.barracudacentral.org', 'bl.spamcop.net']),
  })
  .strict()
  .default({});
