/**
 * Seed-mailbox placement probes (role `placement`): a scheduler sends a probe to each seed every
 * `intervalSeconds` (and on request) through the normal intake → queue → delivery path, and a checker
 * searches each seed mailbox with probes in flight until every probe is found or its deadline passes.
 * Each result lands in the probe message's timeline, in `kurir_placement_*` and in the provider's history.
 */
import type { Config } from '../config/schema.js';
import type { SeedConfig } from '../config/placement-schema.js';
import type { Credential } from '../intake/credentials.js';
import type { IntakeService } from '../intake/intake-service.js';
import { domainOf } from '../lib/address.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import { PROBE_AUTH_METHODS, probeAuthResult, type Metrics } from '../metrics/metrics.js';
import type { MessageStore } from '../store/message-store.js';
import type { PlacementResult, PlacementStore, ProbeRecord } from '../store/placement-store.js';
import { searchSeed, type SearchOutcome, type SearchOptions } from './mailbox-search.js';
import { buildProbe, loadProbeTemplate, newProbeToken, PROBE_TAG, type ProbeTemplate } from './probe-message.js';
import { SeedLogin, SeedSecretError } from './seed-secrets.js';

/** The internal credential probes are submitted with: not an API key, never configurable, any configured domain. */
export const PROBE_CREDENTIAL: Credential = Object.freeze({ kind: 'api-key', name: 'kurir-placement', domains: null, admin: true });

export interface PlacementDeps {
  config: Config;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  store: PlacementStore;
  messages: MessageStore;
  intake: IntakeService;
  /** Every provider label the provider map can return: a seed's provider must be one of them. */
  providerNames: readonly string[];
  /** The process environment (for `passwordEnv`), handed down by the composition root. */
  env: Readonly<Record<string, string | undefined>>;
  /** The mailbox search (default: IMAP via imapflow); injectable for a unit test of the scheduling. */
  search?: (opts: SearchOptions) => Promise<SearchOutcome>;
}

/**
 * Checks the placement config against the rest (seed providers known, probe sender on a configured
 * domain with DKIM keys) and reads the template. Throws with the key and the reason.
 */
export function validatePlacement(config: Config, providerNames: readonly string[]): { from: string; template: ProbeTemplate } {
  const p = config.placement;
  const domains = config.domains.map((d) => d.name.toLowerCase());
  const from = p.from ?? (domains[0] ? `placement@${domains[0]}` : null);
  if (p.seeds.length && !from) throw new Error('placement.from: no sender domain is configured for probes');
  if (from && !domains.includes(domainOf(from))) throw new Error(`placement.from: ${domainOf(from)} is not a configured sender domain (domains[].name)`);
  p.seeds.forEach((s, i) => {
    if (!providerNames.includes(s.provider)) {
      throw new Error(
        `placement.seeds[${i}].provider: unknown provider "${s.provider}" (known: ${providerNames.join(', ')}; add rules under shaping.providers)`,
      );
    }
  });
  return { from: from ?? '', template: loadProbeTemplate(p.template) };
}

/**
 * Runs the placement loop over the configured seeds: submits due or requested probes through the intake, searches the seed mailboxes
 * and records each probe's result (folder, missing, not delivered, seed unreachable).
 */
export class PlacementService {
  private readonly from: string;
  private readonly template: ProbeTemplate;
  private readonly logins = new Map<string, SeedLogin>();
  private readonly lastSearch = new Map<string, number>();
  /** Each seed's pass in progress (see tick). */
  private readonly busy = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly deps: PlacementDeps) {
    ({ from: this.from, template: this.template } = validatePlacement(deps.config, deps.providerNames));
    for (const s of deps.config.placement.seeds) this.logins.set(s.name, new SeedLogin(s, deps.env, deps.clock));
  }

  /** Starts the scheduler and checker loop (one tick every `placement.tickSeconds`). */
  start(): void {
    const loop = (): void => {
      if (this.closed) return;
      this.running = this.tick()
        .catch((err: unknown) => this.deps.logger.error({ err, component: 'placement' }, 'placement tick failed'))
        .finally(() => {
          this.running = null;
          if (!this.closed) this.timer = setTimeout(loop, this.deps.config.placement.tickSeconds * 1000);
        });
    };
    loop();
  }

  /** Stops the loop and waits for the seeds' passes in progress. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await Promise.all(this.busy.values());
  }

  /**
   * One pass over the seeds: for each seed not still busy from an earlier pass, sends a due probe and then searches
   * its mailbox, each seed on its own. A seed whose IMAP server hangs (up to the search's 30 s timeouts) must not
   * hold back the probes and searches of the others: until 2 Dec 2026 the seeds ran one after the other, and one
   * silent server delayed every provider's placement by as long as it hung.
   */
  async tick(): Promise<void> {
    for (const seed of this.deps.config.placement.seeds) {
      if (this.closed) return;
      if (this.busy.has(seed.name)) continue;
      const work = this.runSeed(seed).finally(() => this.busy.delete(seed.name));
      this.busy.set(seed.name, work);
    }
  }

  private async runSeed(seed: SeedConfig): Promise<void> {
    await this.schedule(seed).catch((err: unknown) => this.deps.logger.warn({ err, seed: seed.name }, 'placement: scheduling a probe failed'));
    if (this.closed) return;
    await this.check(seed).catch((err: unknown) => this.deps.logger.warn({ err, seed: seed.name }, 'placement: checking the seed failed'));
  }

  private async schedule(seed: SeedConfig): Promise<void> {
    const { store } = this.deps;
    if (await store.takeRequest(seed.name)) await this.send(seed, 'request');
    else if (await store.takeSlot(seed.name, seed.intervalSeconds * 1000)) await this.send(seed, 'schedule');
  }

  /** Submits one probe to the seed through the intake (same path, lane and signing as real mail). */
  async send(seed: SeedConfig, trigger: ProbeRecord['trigger']): Promise<ProbeRecord> {
    const { intake, store, clock, config, logger } = this.deps;
    const token = newProbeToken();
    const raw = await buildProbe(this.template, { from: this.from, to: seed.address, token });
    const accepted = await intake.accept({
      credential: PROBE_CREDENTIAL,
      iface: 'http',
      recipients: [seed.address],
      raw,
      priority: 'verification',
      tags: [PROBE_TAG],
      metadata: { probeToken: token, seed: seed.name },
      // A seed that once bounced must still be probed: the probe measures, it does not burden anyone.
      overrideSuppression: true,
    });
    const now = clock.now();
    const probe: ProbeRecord = {
      token,
      seed: seed.name,
      provider: seed.provider,
      messageId: accepted.id,
      submittedAt: now,
      deadline: now + config.placement.deadlineSeconds * 1000,
      trigger,
    };
    await store.addProbe(probe);
    logger.info({ component: 'placement', seed: seed.name, id: accepted.id, trigger }, 'placement probe sent');
    return probe;
  }

  private async check(seed: SeedConfig): Promise<void> {
    const { store, clock, config } = this.deps;
    const pending = await store.pending(seed.name);
    if (!pending.length) return;
    const now = clock.now();
    const due = now - (this.lastSearch.get(seed.name) ?? 0) >= config.placement.pollSeconds * 1000 || pending.some((p) => p.deadline <= now);
    if (!due) return;
    const lock = await store.lockCheck(seed.name, 120_000);
    if (!lock) return;
    try {
      this.lastSearch.set(seed.name, now);
      await this.searchAndRecord(seed, pending);
    } finally {
      await store.unlockCheck(seed.name, lock);
    }
  }

  private async searchAndRecord(seed: SeedConfig, pending: ProbeRecord[]): Promise<void> {
    const { clock, logger, config } = this.deps;
    const login = this.logins.get(seed.name)!;
    let outcome: SearchOutcome;
    try {
      outcome = await (this.deps.search ?? searchSeed)({
        seed,
        login: await login.get(),
        tokens: pending.map((p) => p.token),
        junkNames: config.placement.junkNames,
        skipNames: config.placement.skipNames,
        deleteUnknownBefore: clock.now() - 86_400_000,
      });
    } catch (err) {
      if (!(err instanceof SeedSecretError)) throw err;
      outcome = { ok: false, reason: 'auth', error: err.message };
    }
    const now = clock.now();
    // The seed's state first: a reader that sees this search's results also sees the state it ended in. A failed
    // state write must not cost the results: the probes found are already deleted from the mailbox.
    await this.markSeed(seed, outcome, now).catch((err: unknown) => logger.warn({ err, seed: seed.name }, 'placement: writing the seed state failed'));
    // Found before a failure too: a search that fails partway has already deleted what it found in earlier folders.
    const found = new Set(outcome.found?.map((f) => f.token));
    for (const f of outcome.found ?? []) {
      const p = pending.find((x) => x.token === f.token);
      if (!p) continue;
      const arrivalSeconds = Math.max(0, ((f.arrivedAt ?? now) - p.submittedAt) / 1000);
      await this.record(p, { result: f.folder, mailbox: f.mailbox, arrivalSeconds, auth: f.auth, labels: f.labels }, now);
    }
    // At the deadline, not found: `missing` means delivered but in no folder (a probe refused or still queued was
    // not placed at all); after a failed search never "missing": the probe may well be there, our view failed.
    for (const p of pending.filter((x) => x.deadline <= now && !found.has(x.token))) {
      const fallback: Pick<PlacementResult, 'result' | 'error'> = outcome.ok
        ? { result: 'missing' }
        : { result: 'seed-unreachable', error: `${outcome.reason}: ${outcome.error}` };
      await this.record(p, (await this.undelivered(p)) ?? fallback, now);
    }
  }

  /** Stores the seed's state after a search (up, or unreachable with the reason) and sets its gauge. */
  private async markSeed(seed: SeedConfig, outcome: SearchOutcome, now: number): Promise<void> {
    const { metrics, store, logger } = this.deps;
    if (outcome.ok) {
      metrics.placementSeedUp.set({ seed: seed.name, provider: seed.provider }, 1);
      await store.setSeedState(seed.name, { state: 'up', at: now });
      return;
    }
    if (outcome.reason === 'auth') this.logins.get(seed.name)!.invalidate();
    metrics.placementSeedUp.set({ seed: seed.name, provider: seed.provider }, 0);
    metrics.placementSeedErrors.inc({ provider: seed.provider, reason: outcome.reason });
    const state = await store.setSeedState(seed.name, { state: 'unreachable', reason: outcome.reason, error: outcome.error, at: now });
    logger.warn(
      { component: 'placement', seed: seed.name, reason: outcome.reason, error: outcome.error, since: new Date(state.since).toISOString() },
      'placement: seed mailbox unreachable',
    );
  }

  /**
   * At the deadline: `not-delivered` with the recipient's state and last reply when the probe message was not
   * delivered to the seed (bounced, expired, still queued or deferred), or null when it was.
   */
  private async undelivered(p: ProbeRecord): Promise<Pick<PlacementResult, 'result' | 'error'> | null> {
    const address = this.deps.config.placement.seeds.find((s) => s.name === p.seed)?.address.toLowerCase();
    if (!address) return null;
    const state = (await this.deps.messages.getRecipients(p.messageId, [address]))[address];
    if (!state || state.status === 'delivered') return null;
    return { result: 'not-delivered', error: state.reply ? `${state.status}: ${state.reply}` : state.status };
  }

  private async record(
    p: ProbeRecord,
    r: Pick<PlacementResult, 'result' | 'mailbox' | 'arrivalSeconds' | 'auth' | 'labels' | 'error'>,
    now: number,
  ): Promise<void> {
    const { store, metrics, messages, logger } = this.deps;
    const result: PlacementResult = { token: p.token, seed: p.seed, provider: p.provider, messageId: p.messageId, submittedAt: p.submittedAt, at: now, ...r };
    if (!(await store.finish(result))) return;
    if (r.result !== 'seed-unreachable' && r.result !== 'not-delivered') metrics.placement.inc({ provider: p.provider, folder: r.result });
    if (r.arrivalSeconds !== undefined) metrics.placementArrival.observe({ provider: p.provider }, r.arrivalSeconds);
    // The receiver's own verdicts: a DKIM or DMARC failure here is a configuration incident even while probes land.
    for (const method of PROBE_AUTH_METHODS) {
      const verdict = r.auth?.[method];
      if (verdict) metrics.placementAuth.inc({ provider: p.provider, method, result: probeAuthResult(verdict) });
    }
    const seed = this.deps.config.placement.seeds.find((s) => s.name === p.seed);
    await messages
      .update(
        p.messageId,
        [],
        [
          {
            type: 'placement',
            at: now,
            recipients: seed ? [seed.address.toLowerCase()] : [],
            seed: p.seed,
            provider: p.provider,
            result: r.result,
            ...(r.mailbox ? { mailbox: r.mailbox } : {}),
            ...(r.arrivalSeconds !== undefined ? { arrivalSeconds: Math.round(r.arrivalSeconds * 1000) / 1000 } : {}),
            ...(r.auth ? { authResults: r.auth } : {}),
            ...(r.error ? { error: r.error } : {}),
          },
        ],
      )
      .catch((err: unknown) => logger.warn({ err, id: p.messageId }, 'placement: timeline event not written'));
    logger.info(
      { component: 'placement', seed: p.seed, provider: p.provider, id: p.messageId, result: r.result, mailbox: r.mailbox, arrivalSeconds: r.arrivalSeconds },
      'placement result',
    );
  }
}
