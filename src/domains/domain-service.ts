import type { Config } from '../config/schema.js';
import type { DkimAlgorithm } from '../dkim/keys.js';
import type { KeyVault } from '../dkim/key-vault.js';
import { normalizeDomain } from '../lib/address.js';
import type { Clock } from '../lib/clock.js';
import { KurirError, toKurirError } from '../lib/errors.js';
import {
  DomainConflictError,
  type DomainEvent,
  type DomainKeyRecord,
  type DomainRecord,
  type DomainStore,
  type DomainVerification,
} from '../store/domain-store.js';
import { checkDkimRecord, type TxtResolver } from './dns-check.js';
import { newDomainKey, resealKeys } from './domain-key-material.js';
import { applySettings, checkSettings, describeSettings, type DomainSettings } from './domain-settings.js';
import { afterVerification, domainEvent, verificationRefusal, withEvent } from './domain-transitions.js';
import { recentSelectors, selectorsUsed } from './records.js';
import { domainViewOf, type DomainView } from './domain-view.js';

export interface DomainServiceDeps {
  config: Config;
  store: DomainStore;
  /** Null when no master key is configured: reading works, adding and rotating keys is refused. */
  vault: KeyVault | null;
  resolver: TxtResolver;
  clock: Clock;
  /** Called after every change, e.g. to reload this gateway's keys at once instead of at the next poll. */
  changed?: () => Promise<void>;
}

export interface AddDomainOptions extends DomainSettings {
  /** Also sign with an Ed25519 key (RFC 8463) besides RSA. */
  ed25519?: boolean;
  /** RSA modulus length: 2048 (default), 3072 or 4096. */
  rsaBits?: number;
}

/** The lifecycle of runtime-managed sender domains: add, verify, rotate, revoke, remove, settings, rewrap. */
export class DomainService {
  constructor(private readonly deps: DomainServiceDeps) {}

  private now(): number {
    return this.deps.clock.now();
  }

  private vault(): KeyVault {
    if (!this.deps.vault) {
      throw new KurirError('CONFLICT', 'DKIM keys cannot be stored: set domainKeys.masterKey or domainKeys.masterKeyFile on every gateway (docs/domains.md)');
    }
    return this.deps.vault;
  }

  private name(domain: string): string {
    return normalizeDomain(domain, 'domain');
  }

  private newKey(domain: string, algorithm: DkimAlgorithm, taken: Set<string>, bits: number): DomainKeyRecord {
    return newDomainKey(this.vault(), this.deps.clock, domain, algorithm, taken, bits);
  }

  /** A domain's public view: state, keys without private parts, the records to publish. */
  view(d: DomainRecord): DomainView {
    return domainViewOf(d, this.deps.config, this.now());
  }

  private event(type: DomainEvent['type'], by: DomainEvent['by'], message: string, selectors?: string[]): DomainEvent {
    return domainEvent(this.now(), type, by, message, selectors);
  }

  /**
   * Every runtime-managed domain record, removed ones included, sorted by name.
   *
   * @throws KurirError UNAVAILABLE when Redis does not answer (INTERNAL for any other failure)
   */
  async list(): Promise<DomainRecord[]> {
    return this.deps.store.list().catch((err: unknown) => {
      throw toKurirError(err);
    });
  }

  /** @throws KurirError NOT_FOUND for a domain that is not runtime-managed (or removed, unless `removed`) */
  async get(domain: string, opts: { removed?: boolean } = {}): Promise<DomainRecord> {
    const name = this.name(domain);
    const d = await this.deps.store.get(name).catch((err: unknown) => {
      throw toKurirError(err);
    });
    if (!d || (d.state === 'removed' && !opts.removed)) {
      const configured = this.deps.config.domains.some((c) => c.name.toLowerCase() === name);
      const what = configured ? 'declared in the configuration (domains[]), not runtime-managed' : 'not a runtime-managed sender domain';
      throw new KurirError('NOT_FOUND', `domain: ${name} is ${what}`, { field: 'domain' });
    }
    return d;
  }

  /** Adds a domain in state pending-dns with new keys; answers it with the records to publish. */
  async add(domain: string, opts: AddDomainOptions = {}): Promise<DomainRecord> {
    // Named as the request names it: POST /v1/domains takes the domain in `name`.
    const name = normalizeDomain(domain, 'name');
    const bits = opts.rsaBits ?? 2048;
    if (![2048, 3072, 4096].includes(bits)) throw new KurirError('VALIDATION', 'rsaBits: 2048, 3072 or 4096', { field: 'rsaBits' });
    const settings = checkSettings(opts);
    if (this.deps.config.domains.some((c) => c.name.toLowerCase() === name)) {
      throw new KurirError('CONFLICT', `name: ${name} is declared in the configuration (domains[]); remove it there to manage it here`, { field: 'name' });
    }
    this.vault();
    const existing = await this.deps.store.get(name);
    if (existing && existing.state !== 'removed') throw new KurirError('CONFLICT', `name: ${name} exists already (state ${existing.state})`, { field: 'name' });
    // Every selector a removed incarnation used stays taken: a re-add never reuses one with another key.
    const used = existing ? recentSelectors(selectorsUsed(existing), this.now()) : [];
    const taken = new Set(used);
    const keys = [this.newKey(name, 'rsa', taken, bits)];
    if (opts.ed25519) keys.push(this.newKey(name, 'ed25519', taken, bits));
    const now = this.now();
    const base: DomainRecord = { name, state: 'pending-dns', createdAt: now, updatedAt: now, rev: (existing?.rev ?? 0) + 1, keys };
    if (used.length) base.usedSelectors = used;
    const selectors = keys.map((k) => k.selector);
    const added = this.event('added', 'admin', `added with ${selectors.join(', ')}: publish, then verify`, selectors);
    const record = withEvent(applySettings(base, settings), added);
    await this.write(record);
    return record;
  }

  /**
   * Checks DNS for the keys waiting for it (else the active ones). When every pending key's record serves its
   * public key, signing switches to them: a pending-dns domain becomes active; in a rotation the active keys
   * of the same algorithm are retired and stay listed as "keep published until".
   * @throws KurirError CONFLICT when no RSA key is active or waiting (verificationRefusal)
   */
  async verify(domain: string, opts: { by?: DomainEvent['by'] } = {}): Promise<{ domain: DomainRecord; verification: DomainVerification }> {
    const by = opts.by ?? 'admin';
    return this.mutate(domain, async (d) => {
      if (d.state === 'suspended' && !d.keys.some((k) => k.status === 'pending')) {
        throw new KurirError('CONFLICT', `domain: ${d.name} is suspended (${d.reason ?? 'no signing key'}); rotate to create a new key`, { field: 'domain' });
      }
      const refusal = verificationRefusal(d);
      if (refusal) throw new KurirError('CONFLICT', refusal, { field: 'domain' });
      const pending = d.keys.filter((k) => k.status === 'pending');
      const checked = pending.length ? pending : d.keys.filter((k) => k.status === 'active');
      const problems = (await Promise.all(checked.map((k) => checkDkimRecord(this.deps.resolver, d.name, k)))).filter((p): p is string => p !== null);
      const now = this.now();
      const verification: DomainVerification = { at: now, ok: problems.length === 0, problems };
      const until = now + this.deps.config.delivery.maxTtlSeconds * 1000 + this.deps.config.domainKeys.keepPublishedMarginHours * 3_600_000;
      return { record: afterVerification(d, verification, { by, keepPublishedUntil: until }), result: verification };
    }).then(({ record, result }) => ({ domain: record, verification: result }));
  }

  /**
   * Creates the next key of each algorithm in use; signing switches once `verify` sees it in DNS. `trigger`
   * schedule: started by the rotation scheduler (which then verifies by itself), `reason` saying why.
   */
  async rotate(domain: string, opts: { trigger?: 'schedule' | 'manual'; reason?: string } = {}): Promise<DomainRecord> {
    const trigger = opts.trigger ?? 'manual';
    this.vault();
    return (
      await this.mutate(domain, async (d) => {
        const waiting = d.keys.filter((k) => k.status === 'pending').map((k) => k.selector);
        if (waiting.length)
          throw new KurirError('CONFLICT', `domain: ${d.name} already waits for DNS of ${waiting.join(', ')}: publish and verify`, { field: 'domain' });
        const active = d.keys.filter((k) => k.status === 'active');
        const algorithms = new Set<DkimAlgorithm>(['rsa', ...(active.length ? active : d.keys).map((k) => k.algorithm)]);
        const taken = new Set(selectorsUsed(d));
        const rsaBits = d.keys.find((k) => k.algorithm === 'rsa')?.bits ?? 2048;
        const fresh = [...algorithms].map((a) => this.newKey(d.name, a, taken, rsaBits));
        const selectors = fresh.map((k) => k.selector);
        const names = selectors.map((x) => `${x}._domainkey.${d.name}`).join(', ');
        const message = `${opts.reason ? `${opts.reason}: ` : ''}publish ${names}; ${trigger === 'schedule' ? 'signing switches by itself once DNS serves it' : 'then verify'}`;
        const next: DomainRecord = {
          ...d,
          keys: [...d.keys, ...fresh],
          state: d.state === 'active' ? 'rotating' : 'pending-dns',
          rotation: { trigger, startedAt: this.now() },
        };
        // A suspension's reason ("… was revoked; rotate, publish and verify") ends with it: pending-dns explains itself.
        delete next.reason;
        return { record: withEvent(next, this.event('rotation-started', trigger === 'schedule' ? 'scheduler' : 'admin', message, selectors)), result: null };
      })
    ).record;
  }

  /**
   * Stops signing with a key at once, on every gateway (at their next poll). A domain left without an active
   * RSA key is suspended: intake refuses it until a rotated key is verified.
   */
  async revoke(domain: string, selector: string): Promise<DomainRecord> {
    return (
      await this.mutate(domain, async (d) => {
        const key = d.keys.find((k) => k.selector === selector);
        if (!key) throw new KurirError('NOT_FOUND', `selector: ${d.name} has no key ${selector}`, { field: 'selector' });
        if (key.status === 'revoked') throw new KurirError('CONFLICT', `selector: ${selector} is already revoked`, { field: 'selector' });
        const now = this.now();
        const revoked = { ...key, status: 'revoked' as const, revokedAt: now, sealedPrivateKey: '' };
        delete revoked.keepPublishedUntil; // a retired key's "keep published" no longer applies: unpublish it
        const keys = d.keys.map((k) => (k === key ? revoked : k));
        let next: DomainRecord = withEvent({ ...d, keys }, this.event('revoked', 'admin', `${selector} revoked: no longer signing`, [selector]));
        if (!keys.some((k) => k.status === 'pending')) delete next.rotation;
        const hasRsa = keys.some((k) => k.status === 'active' && k.algorithm === 'rsa');
        if (!hasRsa && (d.state === 'active' || d.state === 'rotating')) {
          next.state = 'suspended';
          next.reason = `its signing key ${selector} was revoked at ${new Date(now).toISOString()}; rotate, publish and verify a new key`;
        } else if (d.state === 'rotating' && !keys.some((k) => k.status === 'pending')) {
          next = { ...next, state: 'active' };
        }
        return { record: next, result: null };
      })
    ).record;
  }

  /** Stops using a domain: intake refuses it, its private keys are deleted; the record stays as `removed`. */
  async remove(domain: string): Promise<DomainRecord> {
    return (
      await this.mutate(domain, async (d) => {
        const now = this.now();
        const keys = d.keys.map((k) => ({ ...k, sealedPrivateKey: '', ...(k.status === 'revoked' ? {} : { status: 'revoked' as const, revokedAt: now }) }));
        const { rotation: _rotation, ...rest } = d;
        const next: DomainRecord = { ...rest, keys, state: 'removed', reason: `removed at ${new Date(now).toISOString()}` };
        return { record: withEvent(next, this.event('removed', 'admin', 'removed: private keys deleted')), result: null };
      })
    ).record;
  }

  /** Changes a domain's own settings (scheduled rotation, MTA-STS mx lines). */
  async update(domain: string, settings: DomainSettings): Promise<DomainRecord> {
    const checked = checkSettings(settings);
    if (!Object.keys(checked).length) throw new KurirError('VALIDATION', 'nothing to change: rotationEveryDays or mtaStsMx', { field: 'body' });
    return (
      await this.mutate(domain, async (d) => ({
        record: withEvent(applySettings(d, checked), this.event('settings-changed', 'admin', describeSettings(checked))),
        result: null,
      }))
    ).record;
  }

  /** Records (once per key) that a key nears its scheduled rotation; answers false when it was recorded already. */
  async noteKeyAge(domain: string, selector: string, message: string): Promise<boolean> {
    return (
      await this.mutate(domain, async (d) => {
        if (d.events?.some((e) => e.type === 'key-age-warning' && e.selectors?.includes(selector))) return { record: null, result: false };
        return { record: withEvent(d, this.event('key-age-warning', 'scheduler', message, [selector])), result: true };
      })
    ).result;
  }

  /**
   * Re-seals every stored private key under the current master key (after a master-key change, with the
   * old key configured as domainKeys.previousMasterKey). Answers how many keys were re-sealed.
   */
  async rewrap(): Promise<{ domains: number; keys: number }> {
    const vault = this.vault();
    let keys = 0;
    let domains = 0;
    for (const listed of await this.deps.store.list()) {
      const reseal = async (d: DomainRecord) => resealKeys(vault, d);
      const { result } = await this.mutate(listed.name, reseal, { removed: true });
      if (result) domains++;
      keys += result;
    }
    return { domains, keys };
  }

  private async write(record: DomainRecord): Promise<void> {
    await this.deps.store.put(record).catch((err: unknown) => {
      if (err instanceof DomainConflictError) throw new KurirError('CONFLICT', err.message, { field: 'domain' });
      throw toKurirError(err);
    });
    await this.deps.changed?.().catch(() => undefined);
  }

  /**
   * Read, change, compare-and-set; a concurrent change is retried on the fresh record a few times. `fn`
   * answering a null record writes nothing.
   */
  private async mutate<R>(
    domain: string,
    fn: (d: DomainRecord) => Promise<{ record: DomainRecord | null; result: R }>,
    opts: { removed?: boolean } = {},
  ): Promise<{ record: DomainRecord; result: R }> {
    for (let attempt = 0; ; attempt++) {
      const d = await this.get(domain, opts);
      if (d.state === 'removed' && !opts.removed) throw new KurirError('NOT_FOUND', `domain: ${d.name} was removed`, { field: 'domain' });
      const { record, result } = await fn(d);
      if (!record) return { record: d, result };
      const next = { ...record, rev: d.rev + 1, updatedAt: this.now() };
      try {
        await this.deps.store.put(next);
      } catch (err) {
        if (err instanceof DomainConflictError && attempt < 3) continue;
        if (err instanceof DomainConflictError) throw new KurirError('CONFLICT', err.message, { field: 'domain' });
        throw toKurirError(err);
      }
      await this.deps.changed?.().catch(() => undefined);
      return { record: next, result };
    }
  }
}
