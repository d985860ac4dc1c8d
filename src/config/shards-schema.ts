import { z } from 'zod';

/**
 * `redis.shards`: message data (records, bodies, timelines, indexes, the delivery queue) of the listed sender
 * domains lives on another Redis (docs/scale-out.md). Everything shared (credentials, suppressions, intake limits,
 * idempotency keys, shaping, webhooks, domains) stays on `redis.url`, as does the mail of unlisted domains.
 */
export const redisShardsSchema = z
  .array(
    z
      .object({
        /** A short name for logs and metrics, e.g. `shard-a`. */
        name: z
          .string()
          .regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'lower-case letters, digits and dashes')
          // `main` is redis.url in logs, /readyz and kurir_redis_up{redis}.
          .refine((n) => n !== 'main', 'main is the name of redis.url'),
        url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL'),
        /** Sender (From) domains whose messages this shard holds; matched exactly, case-insensitively. */
        senderDomains: z
          .array(
            z
              .string()
              .min(1)
              .transform((d) => d.toLowerCase()),
          )
          .min(1),
      })
      .strict(),
  )
  .default([])
  .superRefine((shards, ctx) => {
    const names = new Set<string>();
    const domains = new Map<string, string>();
    shards.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `shard name ${s.name} is used twice` });
      names.add(s.name);
      for (const d of s.senderDomains) {
        const other = domains.get(d);
        if (other !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'senderDomains'], message: `${d} is already in shard ${other}` });
        domains.set(d, s.name);
      }
    });
  });
