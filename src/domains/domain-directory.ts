import { keyBinding, type KeyVault } from '../dkim/key-vault.js';
import { prepareKey, type DkimKeySource, type PreparedKey } from '../dkim/signer.js';
import type { Logger } from '../lib/logger.js';
import type { DomainRecord, DomainState, DomainStore } from '../store/domain-store.js';

/** What intake needs to know about a runtime-managed sender domain. */
export interface SenderDomainStatus {
  state: DomainState;
  /** True when this gateway can sign for it now. */
  signing: boolean;
  /** Why it cannot, in words for the client's refusal. */
  reason?: string;
}

interface Entry {
  record: DomainRecord;
  keys: PreparedKey[];
  reason?: string;
}

/**
 * This gateway's copy of the runtime-managed sender domains and their signing keys. It polls the store's
 * change counter (one GET per `refreshMs`) and reloads only when it moved, so every gateway sees an added,
 * verified, rotated or revoked key within one interval. Private keys are opened and parsed once per sealed
 * value and kept as KeyObjects; signing never touches Redis or re-parses a PEM.
 */
export class DomainDirectory implements DkimKeySource {
  private version = -1;
  private entries = new Map<string, Entry>();
  /** Parsed keys by sealed value (unique per key and master key); pruned on reload. */
  private parsed = new Map<string, PreparedKey>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<boolean> | null = null;

  constructor(
    private readonly deps: { store: DomainStore; vault: KeyVault | null; logger: Logger; refreshMs: number; onReload?: (domains: DomainRecord[]) => void },
  ) {}

  /** Loads now, then polls. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.deps.logger.warn({ err: (err as Error).message }, 'sender domains: reload failed; keeping the last ones'));
    }, this.deps.refreshMs);
    this.timer.unref();
  }

  /** Stops polling; the domains and keys loaded last stay readable. Safe to call twice. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Reloads after a write of this process: waits for a reload already under way (it may have read the change
   * counter before the write) and then runs one that reads it after, so a revoke stops signing here at once.
   */
  async refreshAfterWrite(): Promise<boolean> {
    await this.running?.catch(() => undefined);
    return this.refresh();
  }

  /** Reloads when the change counter moved; answers whether it did. Concurrent calls share one reload. */
  refresh(): Promise<boolean> {
    this.running ??= this.reload().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async reload(): Promise<boolean> {
    const version = await this.deps.store.version();
    if (version === this.version) return false;
    const records = await this.deps.store.list();
    const entries = new Map<string, Entry>();
    const parsed = new Map<string, PreparedKey>();
    for (const record of records) {
      if (record.state === 'removed') continue;
      const entry: Entry = { record, keys: [] };
      if (record.state === 'active' || record.state === 'rotating') {
        try {
          for (const k of record.keys.filter((x) => x.status === 'active')) {
            let key = this.parsed.get(k.sealedPrivateKey);
            if (!key) {
              if (!this.deps.vault) throw new Error('this gateway has no master key (domainKeys.masterKey)');
              const pem = this.deps.vault.open(k.sealedPrivateKey, keyBinding(record.name, k.selector));
              key = prepareKey({ domain: record.name, selector: k.selector, algorithm: k.algorithm, privateKeyPem: pem });
            }
            parsed.set(k.sealedPrivateKey, key);
            entry.keys.push(key);
          }
        } catch (err) {
          // The message names the master key id or the parse problem, never key material.
          entry.keys = [];
          entry.reason = `this gateway cannot use its DKIM keys (${(err as Error).message})`;
          this.deps.logger.error({ domain: record.name, problem: (err as Error).message }, 'sender domain: DKIM key unusable, refusing the domain');
        }
        entry.keys.sort((a, b) => (a.algorithm === b.algorithm ? 0 : a.algorithm === 'rsa-sha256' ? -1 : 1));
      }
      entries.set(record.name, entry);
    }
    this.entries = entries;
    this.parsed = parsed;
    this.version = version;
    this.deps.onReload?.(records);
    return true;
  }

  /**
   * The keys to sign `domain` with now, rsa-sha256 first, from memory; undefined when it is not active or rotating,
   * or its keys could not be opened (then {@link status} says why).
   */
  keysFor(domain: string): readonly PreparedKey[] | undefined {
    const e = this.entries.get(domain);
    return e?.keys.length ? e.keys : undefined;
  }

  /** The runtime-managed domains this gateway can sign for now, sorted by name (as of the last reload). */
  domains(): string[] {
    return [...this.entries.values()].filter((e) => e.keys.length).map((e) => e.record.name);
  }

  /** The status of a runtime-managed domain, or undefined when it is not one (or was removed). */
  status(domain: string): SenderDomainStatus | undefined {
    const e = this.entries.get(domain);
    if (!e) return undefined;
    const { record } = e;
    if (e.keys.length) return { state: record.state, signing: true };
    return { state: record.state, signing: false, reason: e.reason ?? whyNotSigning(record) };
  }
}

function whyNotSigning(d: DomainRecord): string {
  if (d.state === 'pending-dns') {
    const pending = d.keys.filter((k) => k.status === 'pending').map((k) => `${k.selector}._domainkey.${d.name}`);
    const last = d.lastVerification?.problems.length ? `; last check: ${d.lastVerification.problems.join('; ')}` : '; not verified yet';
    return `waiting for DNS: publish the DKIM record(s) ${pending.join(', ')} (GET /v1/domains/${d.name}) and verify (POST /v1/domains/${d.name}/verify)${last}`;
  }
  return d.reason ?? `state ${d.state}`;
}
