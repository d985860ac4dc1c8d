/**
 * The `placement` section: seed mailboxes that receive probe messages (src/placement/), the probe's
 * template and timing, and the confirmation window (src/placement/confirmations.ts). Secrets are never
 * in this file: a seed names the environment variable, the file or the command that yields its secret.
 */
import { z } from 'zod';

const seconds = z.number().positive();
const seedName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lower-case letters, digits, `_` and `-`');

/**
 * How Kurir logs in to a seed's IMAP server. `password` and `app-password` use LOGIN/AUTHENTICATE PLAIN
 * with a secret from `passwordEnv` or `passwordFile`; `oauth2` uses XOAUTH2 with an access token printed
 * by `tokenCommand` (argv, run without a shell), for Gmail and Microsoft 365.
 */
const seedAuth = z
  .object({
    method: z.enum(['password', 'app-password', 'oauth2']).default('password'),
    /** IMAP user name (default: the seed's address). */
    user: z.string().min(1).optional(),
    /** Name of the environment variable that holds the password (read once at start). */
    passwordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name')
      .optional(),
    /** File whose content (trimmed) is the password; read at every login, so it may be rotated. */
    passwordFile: z.string().min(1).optional(),
    /** oauth2: command that prints a fresh access token on stdout, e.g. ["/usr/local/bin/gmail-token", "seed1"]. */
    tokenCommand: z.array(z.string().min(1)).min(1).optional(),
    /** oauth2: a printed token is reused for this long (refreshed earlier when the server refuses it). */
    tokenCacheSeconds: seconds.default(600),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.method === 'oauth2') {
      if (!a.tokenCommand) ctx.addIssue({ code: 'custom', path: ['tokenCommand'], message: 'required for method oauth2' });
    } else if ((a.passwordEnv === undefined) === (a.passwordFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['passwordEnv'], message: `exactly one of passwordEnv or passwordFile is required for method ${a.method}` });
    }
  });

const seed = z
  .object({
    /** Unique name of the seed: the `seed` label of kurir_placement_seed_up. */
    name: seedName,
    /** Provider label (a name of the provider map, e.g. gmail, microsoft): results are counted per provider. */
    provider: seedName,
    /** The seed mailbox's address: probes are sent to it. */
    address: z.string().regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, 'an e-mail address'),
    imap: z
      .object({
        host: z.string().min(1),
        port: z.number().int().min(1).max(65535).default(993),
        /** true: implicit TLS (993); false: STARTTLS when offered (plain only on loopback test servers). */
        tls: z.boolean().default(true),
        /** Verify the server certificate (default true). */
        verifyTls: z.boolean().default(true),
      })
      .strict(),
    auth: seedAuth,
    /** A probe to this seed every this many seconds (cluster-wide: one process sends it). */
    intervalSeconds: seconds.default(600),
  })
  .strict();

export type SeedConfig = z.infer<typeof seed>;

export const placementSchema = z
  .object({
    seeds: z.array(seed).default([]),
    /** From address of probes: a configured sender domain, as the booking system's verification mail uses. */
    from: z
      .string()
      .regex(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, 'an e-mail address')
      .nullable()
      .default(null),
    /**
     * The probe's shape. `{{token}}` is replaced by the probe's token, `{{code}}` by a random 6-digit code.
     * textFile/htmlFile take the booking system's own template instead of `text`/`html`.
     */
    template: z
      .object({
        subject: z.string().min(1).default('Your verification code: {{code}}'),
        text: z.string().min(1).default('Your verification code is {{code}}.\n\nIt is valid for 30 minutes.\n\nReference: {{token}}\n'),
        html: z.string().min(1).nullable().default(null),
        textFile: z.string().min(1).nullable().default(null),
        htmlFile: z.string().min(1).nullable().default(null),
      })
      .strict()
      .default({}),
    /** A probe not found in any folder this long after submission is `missing`. */
    deadlineSeconds: seconds.default(900),
    /** Seeds with probes in flight are searched this often. */
    pollSeconds: seconds.default(30),
    /** How often the scheduler looks for due seeds and on-demand requests. */
    tickSeconds: seconds.default(5),
    /** Results kept per provider for GET /v1/placement (and the 1 h / 24 h rates). */
    historySize: z.number().int().min(10).max(100_000).default(1000),
    /** Folder names taken for the spam folder when the server marks none with SPECIAL-USE \Junk. */
    junkNames: z.array(z.string().min(1)).default(['Junk', 'Spam', 'Junk E-mail', 'Junk Email', 'Bulk Mail', '[Gmail]/Spam']),
    /** Folders never searched (sent mail, drafts, trash): a probe there was not placed by the receiver. */
    skipNames: z.array(z.string().min(1)).default(['Sent', 'Drafts', 'Trash', '[Gmail]/Sent Mail', '[Gmail]/Drafts', '[Gmail]/Trash']),
    confirm: z
      .object({
        /** A confirmation is accepted until the message's TTL plus this margin has passed (then 410). */
        marginSeconds: seconds.default(3600),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((p, ctx) => {
    const names = new Set<string>();
    p.seeds.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: ['seeds', i, 'name'], message: `duplicate seed name ${s.name}` });
      names.add(s.name);
    });
  })
  .default({});

export type PlacementConfig = z.infer<typeof placementSchema>;
