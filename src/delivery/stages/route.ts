/**
 * The route stage: where a job's message goes. The configured smarthost, or the recipient domain's MX
 * hosts (injected resolver) with the domain's MTA-STS policy applied; or no send at all when DNS or the
 * policy already decides the outcome. Also names the job's provider label for the metrics.
 */
import { isIP } from 'node:net';
import { smarthostTls } from '../../config/smarthost-tls.js';
import type { MtaStsMode } from '../../metrics/metrics.js';
import type { PolicyTarget } from '../mta-sts.js';
import { resolveRoute } from '../mx.js';
import type { RecipientOutcome, SmtpTarget } from '../smtp-client.js';
import type { DeliveryDeps } from './job.js';

/** A host to try, with the label the timeline and logs show for it. */
export interface Target extends SmtpTarget {
  label: string;
}

/** An outcome for every pending recipient, decided without sending (by DNS or by an MTA-STS policy). */
export type RouteOutcome = Omit<RecipientOutcome, 'address'>;

/**
 * The route of one attempt: `provider` is the metrics label (by recipient domain, else by MX host; never
 * by smarthost, which says nothing about the destination). Either hosts to try in order, under an
 * MTA-STS policy of mode `stsMode` (null: none), or an outcome reached without sending.
 */
export type JobRoute = { provider: string } & ({ targets: Array<PolicyTarget<Target>>; stsMode: MtaStsMode | null } | { outcome: RouteOutcome });

/** Resolves the route of an attempt to `domain`. DNS failures are outcomes (temp or perm), not errors. */
export async function routeJob(deps: DeliveryDeps, domain: string): Promise<JobRoute> {
  const route = await routeFor(deps, domain);
  // A company domain hosted at Google counts as gmail, as shaping buckets it.
  let provider = deps.providers.byDomain(domain);
  const mxHost = 'targets' in route && !deps.config.delivery.smarthost ? route.targets[0]?.servername : undefined;
  if (provider === 'other' && mxHost) provider = deps.providers.byMx(mxHost);
  if ('outcome' in route) return { provider, outcome: route.outcome };
  if (deps.config.delivery.smarthost || !deps.mtaSts || !deps.config.delivery.mtaSts.enabled) return { provider, targets: route.targets, stsMode: null };
  const applied = await deps.mtaSts.apply(domain, provider, route.targets);
  // Enforce mode without a listed MX host: deferred, as a TLS failure would be (RFC 8461 section 5).
  if ('refusal' in applied) return { provider, outcome: { kind: 'temp', code: null, reply: applied.refusal } };
  return { provider, targets: applied.targets, stsMode: applied.mode };
}

async function routeFor(deps: DeliveryDeps, domain: string): Promise<{ targets: Target[] } | { outcome: RouteOutcome }> {
  const { delivery } = deps.config;
  if (delivery.smarthost) {
    const s = delivery.smarthost;
    const auth = s.user ? { user: s.user, pass: s.pass ?? '' } : undefined;
    // With credentials TLS is required and verified unless the config opts out (src/config/smarthost-tls.ts).
    const tls = smarthostTls(s, delivery);
    const tlsRequiredBy = auth ? 'smarthost with credentials' : 'smarthost';
    // An IP address is no SNI name (RFC 6066): without one the certificate is checked against the address.
    const servername = isIP(s.host) ? undefined : s.host;
    return { targets: [{ host: s.host, port: s.port, ...tls, auth, servername, tlsRequiredBy, label: `${s.host}:${s.port}` }] };
  }
  const route = await resolveRoute(deps.resolver, domain);
  switch (route.kind) {
    case 'null-mx':
      return { outcome: { kind: 'perm', code: 556, reply: `556 5.1.10 ${domain} does not accept mail (null MX)` } };
    case 'no-domain':
      return { outcome: { kind: 'perm', code: 550, reply: `550 5.1.2 ${route.reason}` } };
    case 'temp-error':
      return { outcome: { kind: 'temp', code: null, reply: `DNS: ${route.reason}` } };
    case 'hosts':
      return {
        targets: route.hosts.flatMap((h) =>
          h.addresses.slice(0, 2).map((ip) => ({
            host: ip,
            port: delivery.mxPort,
            servername: h.exchange,
            verifyTls: delivery.verifyTls,
            label: `${h.exchange}[${ip}]:${delivery.mxPort}`,
          })),
        ),
      };
  }
}
