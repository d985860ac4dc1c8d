/**
 * Role `feedback`: the bounce MX, receiving DSNs at VERP addresses and ARF complaints at the feedback-loop
 * address (checking where each comes from before applying it), and DMARC aggregate and TLS-RPT reports.
 */
import { createResolver } from '../delivery/resolver.js';
import { createReports } from '../feedback/aggregate/report-ingest.js';
import { FeedbackIngest } from '../feedback/ingest/ingest.js';
import { ParsePool, type ReportParser } from '../feedback/ingest/parse-pool.js';
import { createSourceVerifier, type SourceVerifier } from '../feedback/ingest/trust.js';
import { createBounceServer } from '../smtp/bounce-server.js';
import type { Core } from './core.js';

/**
 * The one FeedbackIngest of a role (bounce MX, or the ESP notification routes of the API) on the core's stores,
 * with the shared VERP secret; `verifySource` checks a report's source when its VERP is not signed, `parse`
 * parses raw reports (the bounce MX's thread pool).
 */
export async function feedbackIngest(core: Core, verifySource?: SourceVerifier, parse?: ReportParser): Promise<FeedbackIngest> {
  const { config, messages, policy, classify, metrics, providers, logger, clock } = core;
  return new FeedbackIngest({
    config,
    messages,
    policy,
    classify,
    metrics,
    providers,
    logger,
    clock,
    verpSecret: await core.verpSecret(),
    ...(verifySource ? { verifySource } : {}),
    incidents: core.incidentWrites,
    ...(parse ? { parse } : {}),
  });
}

/** Starts the bounce MX; answers its bound port. */
export async function startFeedback(core: Core, closers: Array<() => Promise<void>>): Promise<number> {
  const { config, redis, keys, metrics, logger, clock, opts } = core;
  const verpSecret = await core.verpSecret();
  const dns = opts.resolver ?? createResolver(config.dns, clock);
  const verifySource = createSourceVerifier({ config, resolver: (name, rrtype) => dns.resolve(name, rrtype), now: () => clock.now() });
  // DSNs and ARF reports are parsed in threads, off the event loop the gateway's other roles share.
  const f = config.feedback;
  const parsing = new ParsePool({ threads: f.parseThreads, maxQueued: f.maxQueuedReports, maxParseMs: f.maxParseSeconds * 1000, logger });
  closers.push(() => parsing.close());
  const ingest = await feedbackIngest(core, verifySource, (raw, o) => parsing.parse(raw, o));
  // DMARC aggregate and TLS-RPT reports sent to the addresses the domain onboarding prints.
  const reports = createReports({ config, redis, keys, metrics, logger, clock });
  closers.push(() => reports.close());
  const mx = createBounceServer({ config, logger, metrics, ingest, reports: reports.ingest, verpSecret, tls: await core.tls() });
  const port = await mx.listen();
  closers.push(() => mx.close());
  return port;
}
