import { isIP } from 'node:net';
import type { Config } from '../config/schema.js';
import { smarthostTls } from '../config/smarthost-tls.js';
import { classifyReply, type BounceRules } from '../feedback/classify/rules.js';
import type { DeliveryFeedbackHook } from '../feedback/suppression/delivery-feedback.js';
import { domainOf } from '../lib/address.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { verpAddress } from '../lib/verp.js';
import { whileUnavailable } from '../lib/while-unavailable.js';
import { replyCodeLabel, type Metrics } from '../metrics/metrics.js';
import type { ProviderMap } from '../metrics/provider.js';
import type { MessageStore, RecipientUpdate } from '../store/message-store.js';
import { FINAL_RECIPIENT_STATUSES, type MessageRecord, type RecipientState, type TimelineEvent } from '../store/types.js';
import type { MtaStsPolicies, PolicyTarget } from './mta-sts.js';
import { resolveRoute } from './mx.js';
import type { DnsResolver } from './resolver.js';
import { nextAttemptAt } from './retry.js';
import { sendMessage, type RecipientOutcome, type SendResult, type SmtpTarget } from './smtp-client.js';

export interface DeliveryDeps {
  config: Config;
  clock: Clock;
  resolver: DnsResolver;
  messages: MessageStore;
  metrics: Metrics;
  providers: ProviderMap;
  logger: Logger;
  verpSecret: string;
  /** Reply classification rules (config/bounce-rules.yaml), loaded once at start-up. */
  rules: BounceRules;
  /** Replaceable for tests of the processor alone; defaults to a real SMTP transaction. */
  send?: typeof sendMessage;
  /** Suppression on hard bounces (src/feedback/delivery-feedback.ts); absent in processor-only tests. */
  feedback?: DeliveryFeedbackHook;
  /** Outbound MTA-STS (when `delivery.mtaSts.enabled`); only used for delivery to MX hosts, never to a smarthost. */
  mtaSts?: MtaStsPolicies;
  /** PEM certificates trusted besides the system's roots for outbound TLS (tests inject their CA). */
  trustedCa?: readonly string[];
}

/** What the worker must do with the job afterwards. */
export interface DeliveryResult {
  retryAt?: number;
}

interface Target extends SmtpTarget {
  label: string;
}

/**
 * Delivers one message to one destination domain: resolves the route, runs the SMTP transaction, and
 * records every recipient's outcome on the timeline. Returns when to try again if any recipient was deferred.
 */
export async function deliverToDomain(deps: DeliveryDeps, messageId: string, domain: string): Promise<DeliveryResult> {
  const { messages, clock } = deps;
  const record = await messages.getRecord(messageId);
  if (!record) return {};
  const addresses = record.recipients.filter((r) => domainOf(r) === domain);
  const states = await messages.getRecipients(messageId, addresses);
  const pending = addresses.filter((a) => !FINAL_RECIPIENT_STATUSES.has(states[a]?.status ?? 'queued'));
  if (!pending.length) return {};
  const attempt = Math.max(...pending.map((a) => states[a]?.attempts ?? 0)) + 1;
  const now = clock.now();
  const body = now < record.expiresAt ? await messages.getBody(messageId) : null;
  if (!body) {
    await finish(deps, record, deps.providers.byDomain(domain), pending.map((address) => ({ address, kind: 'expired' as const, code: null, reply: 'message expired before delivery' })), attempt, now);
    return {};
  }

  let result: SendResult | null = null;
  let outcomes: RecipientOutcome[];
  const events: TimelineEvent[] = [];
  const route = await routeFor(deps, domain);
  // The provider label: by recipient domain, else by MX host (a company domain hosted at Google counts as
  // gmail), as shaping buckets it. Never by smarthost, which says nothing about the destination.
  let provider = deps.providers.byDomain(domain);
  const mxHost = 'targets' in route && !deps.config.delivery.smarthost ? route.targets[0]?.servername : undefined;
  if (provider === 'other' && mxHost) provider = deps.providers.byMx(mxHost);
  let targets: Array<PolicyTarget<Target>> = 'targets' in route ? route.targets : [];
  let stsMode: 'enforce' | 'testing' | null = null;
  let refusal: string | null = null;
  if ('targets' in route && !deps.config.delivery.smarthost && deps.mtaSts && deps.config.delivery.mtaSts.enabled) {
    const applied = await deps.mtaSts.apply(domain, provider, route.targets);
    stsMode = applied.mode;
    if ('refusal' in applied) refusal = applied.refusal;
    else targets = applied.targets;
  }
  if ('outcome' in route) {
    outcomes = pending.map((address) => ({ address, ...route.outcome }));
  } else if (refusal !== null) {
    const reply = refusal;
    outcomes = pending.map((address) => ({ address, kind: 'temp' as const, code: null, reply }));
  } else {
    const send = deps.send ?? sendMessage;
    const mailFrom = verpAddress(messageId, deps.config.bounce.domain, deps.verpSecret);
    const d = deps.config.delivery;
    const timeouts = { connectMs: d.connectTimeoutSeconds * 1000, greetingMs: d.greetingTimeoutSeconds * 1000, socketMs: d.socketTimeoutSeconds * 1000 };
    for (const target of targets) {
      result = await send(target, { from: mailFrom, to: pending }, body, { ehloName: deps.config.hostname, timeouts, trustedCa: deps.trustedCa });
      const first = result.outcomes[0];
      events.push({ type: 'attempt', at: clock.now(), recipients: pending, host: target.label, reply: first?.reply ?? '', tls: result.tls });
      if (result.reused) deps.metrics.deliveryConnectionReuses.inc({ provider });
      else if (result.connected) deps.metrics.deliveryTls.inc({ provider, tls: result.tls ? 'yes' : 'no' });
      for (const o of result.outcomes) deps.metrics.deliveryReplies.inc({ provider, code: replyCodeLabel(o.code) });
      // One count per new session under a policy (or per session refused on TLS), as TLS-RPT counts sessions.
      if (stsMode && !result.reused && (result.connected || result.tlsFailure)) {
        deps.mtaSts?.countSession(stsMode, provider, result.tlsFailure ?? (target.policyMismatch ? 'validation-failure' : undefined));
      }
      if (result.connected) break;
    }
    outcomes = result?.outcomes ?? pending.map((address) => ({ address, kind: 'temp', code: null, reply: 'no route' }));
  }
  return finish(deps, record, provider, outcomes, attempt, clock.now(), events);
}

async function routeFor(deps: DeliveryDeps, domain: string): Promise<{ targets: Target[] } | { outcome: Omit<RecipientOutcome, 'address'> }> {
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

async function finish(
  deps: DeliveryDeps,
  record: MessageRecord,
  provider: string,
  outcomes: Array<RecipientOutcome | { address: string; kind: 'expired'; code: null; reply: string }>,
  attempt: number,
  now: number,
  events: TimelineEvent[] = [],
): Promise<DeliveryResult> {
  const { config, metrics } = deps;
  const deferred = outcomes.filter((o) => o.kind === 'temp');
  let retryAt: number | null = null;
  if (deferred.length) {
    const d = config.delivery;
    retryAt = nextAttemptAt({ now, attempt, expiresAt: record.expiresAt, schedule: d.retrySchedule, jitter: d.retryJitter });
  }
  const updates: RecipientUpdate[] = [];
  // One timeline event per (status, category): recipients refused for different reasons get separate events.
  const groups = new Map<string, { status: RecipientState['status']; category: string; list: typeof outcomes }>();
  for (const o of outcomes) {
    const status: RecipientState['status'] =
      o.kind === 'delivered' ? 'delivered' : o.kind === 'perm' ? 'bounced' : o.kind === 'expired' || retryAt === null ? 'expired' : 'deferred';
    const category =
      status === 'delivered' ? 'none' : status === 'expired' ? 'message-expired' : classifyReply(deps.rules, { code: o.code, text: o.reply }).category;
    updates.push({
      address: o.address,
      state: {
        status,
        attempts: attempt,
        updatedAt: now,
        reply: o.reply,
        ...(status === 'delivered' ? {} : { category }),
        nextAttemptAt: status === 'deferred' ? (retryAt ?? undefined) : undefined,
      },
    });
    const key = `${status}\0${category}`;
    const group = groups.get(key) ?? { status, category, list: [] };
    group.list.push(o);
    groups.set(key, group);
    metrics.deliveryAttempts.inc({ provider, result: status, category });
    if (status === 'delivered') metrics.deliveryTime.observe({ priority: record.priority, provider }, (now - record.createdAt) / 1000);
  }
  const host = events.filter((e) => e.type === 'attempt').at(-1);
  const hostLabel = host && host.type === 'attempt' ? host.host : undefined;
  for (const { status, category, list } of groups.values()) {
    const recipients = list.map((o) => o.address);
    const reply = list[0].reply;
    if (status === 'delivered') events.push({ type: 'delivered', at: now, recipients, host: hostLabel ?? '', reply });
    else if (status === 'bounced') events.push({ type: 'bounced', at: now, recipients, reply, category, host: hostLabel });
    else if (status === 'deferred') events.push({ type: 'deferred', at: now, recipients, reply, category, nextAttemptAt: retryAt as number });
    else events.push({ type: 'expired', at: now, recipients, reply });
  }
  const results = [...new Set([...groups.values()].map((g) => g.status))];
  // The SMTP transaction is done: a Redis outage now must not make the job run (and send) again, so
  // recording waits it out for a while, well within the job's lock.
  const recordMs = Math.min(20_000, (config.delivery.jobLockSeconds * 1000) / 2);
  await whileUnavailable(async () => {
    const recorded = [...events];
    if (deps.feedback) {
      const synced = outcomes.map((o, i) => ({ address: o.address, status: updates[i].state.status, code: o.code, reply: o.reply }));
      recorded.push(...(await deps.feedback.onOutcomes(record, synced, now)));
    }
    await deps.messages.update(record.id, updates, recorded);
  }, recordMs);
  deps.logger.info({ id: record.id, attempt, results, retryAt }, 'delivery attempt finished');
  return retryAt !== null && results.includes('deferred') ? { retryAt } : {};
}
