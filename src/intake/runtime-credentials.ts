/**
 * Keeps a gateway's CredentialRegistry in step with the runtime credentials in Redis: loads them at
 * start, then every `credentials.refreshSeconds` reads the version counter and reloads when it moved.
 * A revocation on any gateway therefore stops the key everywhere within about one refresh interval;
 * the gateway that made a change reloads at once (`refresh()`), and a gateway that does not know a key
 * or SMTP login checks the version before refusing it, so a new credential works everywhere at once.
 */
import type { Logger } from '../lib/logger.js';
import type { CredentialStore } from '../store/credential-store.js';
import type { CredentialRegistry } from './credentials.js';

export interface RuntimeCredentialsDeps {
  store: CredentialStore;
  registry: CredentialRegistry;
  /** The HMAC key of the digests (CredentialStore.secret). */
  hmacKey: string;
  refreshSeconds: number;
  logger: Logger;
}

/** Loads the runtime credentials from the CredentialStore into this gateway's CredentialRegistry and reloads them when the store's version moves. */
export class RuntimeCredentials {
  private version = -1;
  private timer: NodeJS.Timeout | null = null;
  private last: Promise<void> = Promise.resolve();

  constructor(private readonly deps: RuntimeCredentialsDeps) {}

  /** Loads the credentials now (throws when Redis does not answer), then keeps them current. */
  async start(): Promise<void> {
    await this.refresh(true);
    this.deps.registry.setCatchUp(() => this.refresh());
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.deps.logger.warn({ err, component: 'credentials' }, 'credentials: refresh failed; keeping the last set'));
    }, this.deps.refreshSeconds * 1000);
    this.timer.unref();
  }

  /**
   * Reloads when the version moved (or always with `force`). Calls run one after another, so a call made
   * after a change sees it even while an earlier reload is still in flight.
   */
  refresh(force = false): Promise<void> {
    const run = async (): Promise<void> => {
      const version = await this.deps.store.version();
      if (!force && version === this.version) return;
      const records = await this.deps.store.all();
      this.deps.registry.setRuntime(this.deps.hmacKey, records);
      if (this.version !== -1) this.deps.logger.info({ component: 'credentials', version, count: records.length }, 'credentials: reloaded');
      this.version = version;
    };
    const next = this.last.then(run, run);
    this.last = next.catch(() => undefined);
    return next;
  }

  /** Stops the periodic refresh and the registry's catch-up reloads. */
  stop(): void {
    this.deps.registry.setCatchUp(null);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
