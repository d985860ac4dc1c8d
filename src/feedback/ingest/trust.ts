/**
 * Whether a report at the bounce MX comes from a registered feedback-loop source, for reports whose
 * original carries no signed VERP (src/feedback/ingest/ingest.ts decides when that matters). What the
 * listener can verify about the sender of a report:
 *
 * - the TCP peer address (`feedback.fblSources.ips`, addresses or CIDR ranges): cannot be forged over TCP;
 *   right for a provider that publishes the addresses its feedback loop sends from, or for an internal relay;
 * - a DKIM signature over the report itself (`feedback.fblSources.dkimDomains`): a signature that passes for
 *   a listed domain, or a subdomain of one, and covers the whole body (no `l=` shorter than the body).
 *   The large feedback loops (Microsoft JMRP, Yahoo CFL, AOL) sign their reports.
 *
 * MAIL FROM, HELO and the report's From header prove nothing and are not used. A missing or invalid key leaves
 * the report unverified. A key lookup of a registered domain that fails for the moment (timeout, SERVFAIL: DKIM
 * `temperror`) throws {@link SourceCheckUnavailable}, so the bounce MX answers 451 and the sender retries: the
 * complaint is not lost to a DNS blip.
 */
import { isIP } from 'node:net';
import { dkimVerify, type DnsResolver } from 'mailauth';
import type { Config } from '../../config/schema.js';
import { createIpMatcher } from '../../lib/client-address.js';

/** What the source check found; `detail` is for the log. */
export type SourceVerdict = { trusted: true; by: 'dkim' | 'ip'; detail: string } | { trusted: false; detail: string };

/** The source check could not finish (DNS trouble looking up a registered domain's key): try the report later. */
export class SourceCheckUnavailable extends Error {
  constructor(detail: string) {
    super(`feedback source check unavailable: ${detail}`);
    this.name = 'SourceCheckUnavailable';
  }
}

/** Checks one report's source: its raw bytes (for DKIM) and the address it was delivered from. */
export type SourceVerifier = (raw: Buffer, remoteAddress: string | undefined) => Promise<SourceVerdict>;

export interface SourceVerifierDeps {
  config: Pick<Config, 'feedback'>;
  /** DNS for DKIM key lookups (the gateway's resolver); the system's when absent. */
  resolver?: DnsResolver;
  /** "Now" for the signature's t= and x= tags. */
  now?: () => number;
}

/** `::ffff:192.0.2.1` (an IPv4 peer on a dual-stack socket) as `192.0.2.1`. */
function plainAddress(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const v4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)?.[1];
  const a = v4 ?? address;
  return isIP(a) ? a : undefined;
}

/** Builds the verifier for the configured sources (validated by the config schema). */
export function createSourceVerifier(deps: SourceVerifierDeps): SourceVerifier {
  const { dkimDomains, ips } = deps.config.feedback.fblSources;
  const allowed = createIpMatcher(ips);
  const domains = dkimDomains.map((d) => d.toLowerCase());
  const registered = (d: string): boolean => domains.some((x) => d === x || d.endsWith(`.${x}`));

  return async (raw, remoteAddress) => {
    const peer = plainAddress(remoteAddress);
    if (peer && allowed(peer)) return { trusted: true, by: 'ip', detail: `delivered from ${peer}` };
    if (!domains.length) return { trusted: false, detail: `not from a registered source (peer ${peer ?? 'unknown'}; no DKIM domains registered)` };
    let results: Awaited<ReturnType<typeof dkimVerify>>['results'];
    try {
      ({ results } = await dkimVerify(raw, {
        ...(deps.resolver ? { resolver: deps.resolver } : {}),
        ...(deps.now ? { curTime: new Date(deps.now()) } : {}),
      }));
    } catch (err) {
      return { trusted: false, detail: `DKIM verification failed: ${String((err as Error)?.message ?? err).slice(0, 200)}` };
    }
    // An unsigned message comes back as one entry with result "none" and no signing domain.
    const signatures = results.filter((r) => typeof r.signingDomain === 'string' && r.signingDomain);
    const ours = signatures.filter((r) => registered(r.signingDomain.toLowerCase()));
    const pass = ours.find((r) => r.status?.result === 'pass' && !r.status.underSized);
    if (pass) return { trusted: true, by: 'dkim', detail: `DKIM pass d=${pass.signingDomain}` };
    const later = ours.find((r) => r.status?.result === 'temperror');
    if (later) throw new SourceCheckUnavailable(`DKIM key of d=${later.signingDomain}: ${later.status?.comment ?? 'temperror'}`);
    const seen = signatures.map((r) => `d=${r.signingDomain} ${r.status?.result}${r.status?.underSized ? ' (l= shorter than the body)' : ''}`).join(', ');
    return { trusted: false, detail: `not from a registered source (peer ${peer ?? 'unknown'}; DKIM: ${seen || 'no signature'})` };
  };
}
