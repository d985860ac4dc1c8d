/**
 * The common setup of placement tests with seed mailboxes on the test Dovecot: the loopback DNS zone
 * (the seed MX and the probe sender's SPF/DMARC), the gateway's `placement` overrides with fast timings,
 * and GET /v1/placement per provider with polling.
 */
import type { Zone } from './dns-server.js';
import { ADMIN_KEY } from './test-gateway.js';

/** The probes' sender (its domain is the test gateway's signing domain). */
export const PROBE_FROM = 'verify@example.test';

export interface TestSeed {
  name: string;
  provider: string;
  address: string;
  /** The seed's `auth` block (placement.seeds[].auth). */
  auth: Record<string, unknown>;
}

const domainOf = (address: string): string => address.split('@')[1];

/** DNS for the seed domains (MX → mx.seed.test → 127.0.0.1) and SPF/DMARC of example.test and its bounce domain. */
export function seedZone(addresses: string[]): Zone {
  return {
    'mx.seed.test': { A: ['127.0.0.1'] },
    ...Object.fromEntries(addresses.map((a) => [domainOf(a), { MX: [{ exchange: 'mx.seed.test', priority: 10 }] }])),
    'example.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
    '_dmarc.example.test': { TXT: ['v=DMARC1; p=reject'] },
    'bounce.example.test': { TXT: ['v=spf1 ip4:127.0.0.1 -all'] },
  };
}

/** Gateway overrides: all roles with placement, delivery to the seed MX, one provider per seed domain, the seeds on Dovecot. */
export function seedGatewayOverrides(opts: { seeds: TestSeed[]; imapPort: number; mxPort: number; deadlineSeconds: number }): Record<string, unknown> {
  return {
    roles: ['intake', 'api', 'worker', 'placement'],
    delivery: { mxPort: opts.mxPort },
    shaping: { providers: opts.seeds.map((s) => ({ provider: s.provider, domains: [domainOf(s.address)] })) },
    placement: {
      seeds: opts.seeds.map((s) => ({
        name: s.name,
        provider: s.provider,
        address: s.address,
        imap: { host: '127.0.0.1', port: opts.imapPort, tls: false },
        auth: s.auth,
        intervalSeconds: 3600,
      })),
      from: PROBE_FROM,
      deadlineSeconds: opts.deadlineSeconds,
      pollSeconds: 0.5,
      tickSeconds: 0.25,
    },
  };
}

/** GET /v1/placement?last=50 with the admin key; throws unless it answers 200. */
export async function getPlacement(baseUrl: string): Promise<any> {
  const res = await fetch(`${baseUrl}/v1/placement?last=50`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  if (res.status !== 200) throw new Error(`GET /v1/placement answered ${res.status}`);
  return res.json();
}

/** Polls GET /v1/placement until `predicate` holds; throws with the last answer after `timeoutMs`. */
export async function waitPlacement(baseUrl: string, predicate: (p: any) => boolean, timeoutMs = 20_000): Promise<any> {
  const end = Date.now() + timeoutMs;
  let last: any;
  while (Date.now() < end) {
    last = await getPlacement(baseUrl);
    if (predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`placement did not match within ${timeoutMs} ms: ${JSON.stringify(last, null, 1)}`);
}
