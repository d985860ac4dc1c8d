/**
 * The `delivery.ipPools` section: named pools of source IPs (each a local address outbound SMTP binds to,
 * with its own HELO name and an optional warm-up schedule), and which pool each priority uses, per sender
 * domain when needed. No pools configured: the OS picks the address and `hostname` is the HELO, as before.
 *
 * Checked here, beside the shapes: every pool named by a mapping exists, no address is in two places, and
 * verification never resolves to the same pool as bulk (their reputations must not mix).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { isoDate } from './limits-schema.js';

const PRIORITY_VALUES = ['verification', 'normal', 'bulk'] as const;
const positiveInt = z.number().int().min(1);
const poolName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'a pool name of lower-case letters, digits, - and _ (at most 32)');
const heloName = z.string().regex(/^(?!-)[a-z0-9-]+(\.[a-z0-9-]+)*$/i, 'a host name such as mta1.example.com');

const sourceIp = z
  .object({
    /** The local address outbound SMTP connections from this IP bind to (nodemailer `localAddress`). */
    address: z.string().refine((v) => isIP(v) !== 0, 'an IP address such as 192.0.2.10 (one address, no range)'),
    /** The HELO/EHLO name sent from this address (should be its PTR name); default: `hostname`. */
    helo: heloName.optional(),
    /** Day 1 of the warm-up schedule (YYYY-MM-DD, UTC); earlier days count as day 1. */
    warmupStart: isoDate.optional(),
    /** Caps on day N of the warm-up: `perDay[N-1]` messages per UTC day, `perHour[N-1]` per UTC hour; none after a list ends. */
    warmup: z
      .object({
        perDay: z.array(positiveInt).min(1).optional(),
        perHour: z.array(positiveInt).min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((ip) => (ip.warmup === undefined) === (ip.warmupStart === undefined), {
    message: 'warmup and warmupStart go together (the schedule counts days from warmupStart)',
    path: ['warmupStart'],
  });

/** Pool per priority; an unmapped priority uses no pool (the OS-chosen address and `hostname`). */
const priorityPools = z
  .object({
    verification: poolName.optional(),
    normal: poolName.optional(),
    bulk: poolName.optional(),
  })
  .strict();

export type SourceIpConfig = z.infer<typeof sourceIp>;
export type PriorityPools = z.infer<typeof priorityPools>;

const shape = z
  .object({
    /** Pool name → its source IPs (tried in turn; a warm-up cap that is reached moves the message to the next). */
    pools: z.record(poolName, z.array(sourceIp).min(1)).default({}),
    /** Pool per priority for every sender domain. */
    priorities: priorityPools.default({}),
    /** Per sender domain (lower case): pools per priority that replace `priorities` for mail from that domain. */
    domains: z.record(z.string().regex(/^[a-z0-9.-]+$/, 'a lower-case domain name'), priorityPools).default({}),
  })
  .strict();

export type IpPoolsConfig = z.infer<typeof shape>;

/** The pool of `priority` for mail from `senderDomain`: the domain's own mapping, else `priorities`; undefined: none. */
export function poolNameFor(pools: IpPoolsConfig, priority: (typeof PRIORITY_VALUES)[number], senderDomain: string): string | undefined {
  return pools.domains[senderDomain.toLowerCase()]?.[priority] ?? pools.priorities[priority];
}

/** Every configured source IP with its pool, in configuration order. */
export function poolAddresses(pools: IpPoolsConfig): Array<SourceIpConfig & { pool: string }> {
  return Object.entries(pools.pools).flatMap(([pool, ips]) => ips.map((ip) => ({ ...ip, pool })));
}

/**
 * The sending IPs SPF must authorise: `domainKeys.sendingIps` as given (addresses or ranges), then the pool
 * addresses not listed there.
 */
export function allSendingIps(sendingIps: readonly string[], pools: IpPoolsConfig): string[] {
  const seen = new Set(sendingIps.map((e) => e.split('/')[0].toLowerCase()));
  return [
    ...sendingIps,
    ...poolAddresses(pools)
      .map((a) => a.address)
      .filter((ip) => !seen.has(ip.toLowerCase())),
  ];
}

function crossCheck(p: IpPoolsConfig, ctx: z.RefinementCtx): void {
  const known = Object.keys(p.pools);
  const seen = new Map<string, string>();
  for (const [pool, ips] of Object.entries(p.pools)) {
    ips.forEach((ip, i) => {
      const canonical = ip.address.toLowerCase();
      const first = seen.get(canonical);
      if (first) ctx.addIssue({ code: 'custom', path: ['pools', pool, i, 'address'], message: `duplicate source IP (already at ${first})` });
      else seen.set(canonical, `delivery.ipPools.pools.${pool}.${i}.address`);
    });
  }
  const mappings: Array<{ path: (string | number)[]; map: PriorityPools; domain?: string }> = [
    { path: ['priorities'], map: p.priorities },
    ...Object.entries(p.domains).map(([domain, map]) => ({ path: ['domains', domain], map, domain })),
  ];
  for (const { path, map, domain } of mappings) {
    for (const priority of PRIORITY_VALUES) {
      const name = map[priority];
      if (name !== undefined && !known.includes(name)) {
        const list = known.length ? known.join(', ') : 'none configured';
        ctx.addIssue({ code: 'custom', path: [...path, priority], message: `no such pool in delivery.ipPools.pools (pools: ${list})` });
      }
    }
    const verification = domain ? poolNameFor(p, 'verification', domain) : map.verification;
    const bulk = domain ? poolNameFor(p, 'bulk', domain) : map.bulk;
    if (verification !== undefined && verification === bulk) {
      ctx.addIssue({
        code: 'custom',
        path: [...path, map.bulk !== undefined ? 'bulk' : 'verification'],
        message: `verification and bulk mail would share pool "${bulk}" (and its IPs' reputation): give bulk its own pool`,
      });
    }
  }
}

/** `delivery.ipPools`; the default (no pools) keeps the OS-chosen address and `hostname` as HELO. */
export const ipPoolsSchema = shape.superRefine(crossCheck).default({});
