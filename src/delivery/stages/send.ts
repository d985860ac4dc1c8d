/**
 * The send stage: the SMTP transaction over the pool, to the route's hosts in order until one takes or refuses for
 * good at least one recipient (a host that cannot be reached, or answers 4xx for every recipient, passes the message on).
 * Before each host the message's expiry is checked (a host that does not answer can take the greeting
 * timeout: the next one must not get the message after its TTL), then the shaping gate is asked for that
 * host's provider (the same lease for the same provider); a refusal ends the stage with the time to come
 * back, and nothing of it is recorded.
 */
import { isIP } from 'node:net';
import { verpAddress } from '../../lib/verp.js';
import { replyCodeLabel } from '../../metrics/metrics.js';
import type { GateJob } from '../../shaping/gate.js';
import type { ShapingLease, ShapingRefusal } from '../../shaping/provider-shaper.js';
import type { SourceReservation } from '../../shaping/source-ips.js';
import type { TimelineEvent } from '../../store/types.js';
import { sendMessage, type RecipientOutcome, type SendResult } from '../smtp-client.js';
import { expiredOutcomes, expiryDue, type DeliveryDeps, type LoadedJob, type Outcome } from './job.js';
import type { JobRoute } from './route.js';

/** SMTP sessions (hosts that answered) one attempt may use before it ends deferred: Postfix's default, 2. */
export const MAX_SESSIONS = 2;

/**
 * The lease the job holds and the replies of its last send, which go back to the gate with the lease.
 * Kept in one place the pipeline owns, so the lease is given back whatever happens inside a stage.
 */
export interface Slot {
  lease: ShapingLease | null;
  replies: RecipientOutcome[] | null;
  /** The source IP the job goes out from (null: no pool, the OS picks it and `hostname` is the HELO). */
  source: SourceReservation | null;
  /** A connection was made and the message offered: the source IP's warm-up count is used (else given back). */
  handedOver?: boolean;
}

/**
 * What the send stage ends with: each pending recipient's outcome (`expired` when the message's lifetime ended
 * before a host took it) and the `attempt` events, or a wait.
 */
export type SendStage = { outcomes: Outcome[]; events: TimelineEvent[] } | { waitUntil: number; reason: ShapingRefusal };

/**
 * Sends the message to the pending recipients over the hosts of `route`, stopping at the first host that
 * connects and does not defer every recipient, or after {@link MAX_SESSIONS} hosts that answered; counts TLS,
 * connection reuse, replies and MTA-STS sessions. When no host takes it, the outcomes are those of the last host
 * that answered, else of the last one tried (a connection failure is a temporary outcome, not an error); when the
 * message expires before a host connects, every pending recipient's outcome is `expired`.
 */
export async function sendToTargets(
  deps: DeliveryDeps,
  gateJob: GateJob,
  loaded: LoadedJob,
  route: Extract<JobRoute, { targets: unknown }>,
  body: Buffer,
  slot: Slot,
): Promise<SendStage> {
  const { config, metrics, clock } = deps;
  const { provider, stsMode } = route;
  const pending = loaded.pending;
  const send = deps.send ?? sendMessage;
  const mailFrom = verpAddress(loaded.record.id, config.bounce.domain, deps.verpSecret);
  const d = config.delivery;
  const timeouts = { connectMs: d.connectTimeoutSeconds * 1000, greetingMs: d.greetingTimeoutSeconds * 1000, socketMs: d.socketTimeoutSeconds * 1000 };
  const events: TimelineEvent[] = [];
  let result: SendResult | null = null;
  const answered: RecipientOutcome[] = [];
  // The last host that answered: when a later one cannot be reached, its reply (a 4xx the receiver said) is what the
  // attempt reports, not the connection failure.
  let lastAnswered: SendResult | null = null;
  let sessions = 0;
  const from = slot.source?.source;
  // A socket bound to an IPv4 address cannot reach an IPv6 one (and the reverse): only hosts of the source's family.
  const family = from ? isIP(from.address) : 0;
  const targets = family ? route.targets.filter((t) => isIP(t.host) === 0 || isIP(t.host) === family) : route.targets;
  for (const target of targets) {
    // The hosts tried so far (each up to the connect and greeting timeouts) may have outlived the message.
    if (expiryDue(loaded, clock.now())) return { outcomes: expiredOutcomes(loaded), events };
    const gate = await deps.gate.askForHost(gateJob, target.servername, slot.lease);
    if (!gate.go) {
      slot.lease = null; // given back by the gate when the provider changed
      return { waitUntil: gate.until, reason: gate.reason };
    }
    // Another provider's lease (the gate gave the old one back without replies): its hosts' replies are not this one's.
    if (gate.lease !== slot.lease) answered.length = 0;
    slot.lease = gate.lease;
    const ehloName = from?.helo ?? config.hostname;
    result = await send(target, { from: mailFrom, to: pending }, body, {
      ehloName,
      localAddress: from?.address,
      timeouts,
      trustedCa: deps.trustedCa,
      pipelining: d.pipelining,
    });
    // The replies of every host that answered go back to the gate with the lease, so a throttle at the first host is
    // not hidden by the next one's 250; without any, those of the last host tried (connection failures).
    if (result.connected) {
      answered.push(...result.outcomes);
      lastAnswered = result;
    }
    slot.replies = answered.length ? [...answered] : result.outcomes;
    // The transaction's own reply (DATA's) when any recipient took the message; a refused RCPT is on that recipient's event.
    const first = result.outcomes.find((o) => o.kind === 'delivered') ?? result.outcomes[0];
    const origin = from ? { sourceIp: from.address, helo: ehloName } : {};
    events.push({ type: 'attempt', at: clock.now(), recipients: pending, host: target.label, reply: first?.reply ?? '', tls: result.tls, ...origin });
    if (result.connected) slot.handedOver = true;
    if (from && result.connected) metrics.ipSent.inc({ ip: from.address, pool: from.pool });
    if (result.reused) metrics.deliveryConnectionReuses.inc({ provider });
    else if (result.connected) metrics.deliveryTls.inc({ provider, tls: result.tls ? 'yes' : 'no' });
    for (const o of result.outcomes) metrics.deliveryReplies.inc({ provider, code: replyCodeLabel(o.code) });
    // One count per new session under a policy (or per session refused on TLS), as TLS-RPT counts sessions.
    if (stsMode && !result.reused && (result.connected || result.tlsFailure)) {
      deps.mtaSts?.countSession(stsMode, provider, result.tlsFailure ?? (target.policyMismatch ? 'validation-failure' : undefined));
    }
    // A host that refused every recipient for now (4xx to MAIL FROM, to each RCPT or to DATA) may be the one host of
    // the domain that is broken, full or greylisting: the next one gets the message, as Postfix does.
    // At most MAX_SESSIONS hosts that answered per attempt (Postfix's smtp_mx_session_limit): a provider throttling
    // every host (Gmail has five, two addresses each) must not get the message ten times per attempt.
    if (result.connected && (++sessions >= MAX_SESSIONS || !result.outcomes.every((o) => o.kind === 'temp'))) break;
  }
  const noRoute =
    from && !targets.length ? `no address of the MX hosts is IPv${family}, the family of source IP ${from.address} (pool ${from.pool})` : 'no route';
  const outcomes =
    (result?.connected ? result : (lastAnswered ?? result))?.outcomes ??
    pending.map((address) => ({ address, kind: 'temp' as const, code: null, reply: noRoute }));
  return { outcomes, events };
}
