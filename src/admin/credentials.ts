/**
 * Credential administration shared by the HTTP admin API and the CLI's bootstrap: create, list, scope,
 * rotate (with an overlap window) and revoke runtime API keys and SMTP accounts. Secrets are random
 * (256 bits for keys, 192 for SMTP passwords), shown once in the answer that creates them and stored as
 * HMAC-SHA256 digests under a server key (docs/credentials.md says why a slow KDF is not needed).
 */
import { randomBytes } from 'node:crypto';
import { keyedDigest, type CredentialRegistry } from '../intake/credentials.js';
import type { Clock } from '../lib/clock.js';
import { KurirError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { displayWebhookUrl } from '../lib/webhook-url.js';
import { validateCredentialScope, type CredentialScopeInput } from './credential-scope.js';
import type { CredentialStore, StoredCredential, StoredSecret } from '../store/credential-store.js';

/** Longest rotation overlap: 30 days. */
export const MAX_OVERLAP_SECONDS = 30 * 86400;
/** Secrets a credential keeps at most (the current one and those still overlapping). */
const MAX_SECRETS = 3;
/** Times a change is redone when another change was written between its read and its write. */
const MAX_CHANGE_ATTEMPTS = 5;
/** Names and SMTP user names: they become message owners and key parts. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const NAME_RULE = '1 to 64 letters, digits, dot, dash, underscore or @, starting with a letter or digit';

export type { CredentialScopeInput } from './credential-scope.js';

export interface CreateCredentialInput extends CredentialScopeInput {
  kind: 'api-key' | 'smtp-account';
  name: string;
  /** SMTP accounts: the login name (default: the name). */
  username?: string;
}

/** A credential as the API and the CLI show it: never a secret or a digest. */
/** A credential as the API shows it: the stored fields that are safe to show, times as ISO strings. */
export interface CredentialView
  extends Pick<StoredCredential, 'id' | 'kind' | 'name' | 'role' | 'username' | 'domains' | 'priorities' | 'limits'>,
    Partial<Pick<StoredCredential, 'createdBy'>> {
  source: 'runtime' | 'config';
  /** API keys: the webhook target, without its signing secret; the URL's query values as `…` (displayWebhookUrl). */
  webhook?: { url: string; events: string[] | null } | null;
  /** When each valid secret was made and until when it works (null: until rotated or revoked). */
  secrets?: Array<{ createdAt: string; notAfter: string | null }>;
  createdAt?: string;
  updatedAt?: string;
}

export interface CredentialAdminDeps {
  store: CredentialStore;
  registry: CredentialRegistry;
  hmacKey: string;
  clock: Clock;
  /** Configured sender domains (lower case): a credential may name only these, or `*`. */
  senderDomains: ReadonlySet<string>;
  /** Called after every change so this process sees it at once (RuntimeCredentials.refresh). */
  changed?: () => Promise<void>;
  /** Where a failed `changed` is reported. */
  logger?: Pick<Logger, 'warn'>;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The public view of a stored credential. */
export function presentCredential(r: StoredCredential, now: number): CredentialView {
  return {
    id: r.id,
    source: 'runtime',
    kind: r.kind,
    name: r.name,
    role: r.role,
    ...(r.username ? { username: r.username } : {}),
    domains: r.domains,
    priorities: r.priorities,
    limits: r.limits,
    ...(r.kind === 'api-key' ? { webhook: r.webhook ? { url: displayWebhookUrl(r.webhook.url), events: r.webhook.events } : null } : {}),
    secrets: r.secrets.filter((s) => s.notAfter === null || s.notAfter > now).map((s) => ({ createdAt: iso(s.createdAt)!, notAfter: iso(s.notAfter) })),
    createdAt: iso(r.createdAt)!,
    updatedAt: iso(r.updatedAt)!,
    createdBy: r.createdBy,
  };
}

function webhookOf(w: CredentialScopeInput['webhook']): StoredCredential['webhook'] {
  return w ? { url: w.url, secret: w.secret, events: w.events ?? null } : null;
}

function newSecret(kind: StoredCredential['kind']): string {
  return kind === 'api-key' ? `kurir_${randomBytes(32).toString('base64url')}` : randomBytes(24).toString('base64url');
}

/**
 * Validates and applies admin changes to runtime credentials (create, scope update, rotate, revoke) in the CredentialStore;
 * credentials of the configuration file are listed but refused as targets, and this gateway reloads after each change.
 */
export class CredentialAdmin {
  constructor(private readonly deps: CredentialAdminDeps) {}

  private validateScope(input: CredentialScopeInput, kind: StoredCredential['kind']): void {
    validateCredentialScope(input, kind, this.deps.senderDomains);
  }

  /**
   * Reloads this process's credentials after a change. The change is written by then, so a failed reload
   * must not turn it into an error: the caller would lose a secret that now works (or believe a revocation
   * failed), and the audit entry would miss the change. The periodic refresh catches up.
   */
  private async changed(): Promise<void> {
    try {
      await this.deps.changed?.();
    } catch (err) {
      this.deps.logger?.warn({ err, component: 'credentials' }, 'credentials: changed, but this gateway could not reload them; the next refresh will');
    }
  }

  /** Every credential: runtime ones, then the config's (read-only). */
  async list(): Promise<CredentialView[]> {
    const now = this.deps.clock.now();
    const runtime = (await this.deps.store.all()).sort((a, b) => a.createdAt - b.createdAt).map((r) => presentCredential(r, now));
    return [...runtime, ...this.configViews()];
  }

  /** The configuration file's credentials (read-only). */
  private configViews(): CredentialView[] {
    return this.deps.registry.configCredentials().map((c) => ({
      id: `config:${c.kind}:${c.name}`,
      source: 'config',
      kind: c.kind,
      name: c.name,
      role: c.admin ? 'admin' : 'send',
      ...(c.username ? { username: c.username } : {}),
      domains: c.domains ? [...c.domains] : ['*'],
      priorities: null,
      limits: c.limits ?? null,
    }));
  }

  private async stored(id: string): Promise<StoredCredential> {
    const r = id.startsWith('config:') ? null : await this.deps.store.get(id);
    if (r) return r;
    // Only an id that names a configured credential is sent to the file; another one is unknown, like any id.
    if (this.configViews().some((c) => c.id === id)) {
      throw new KurirError('CONFLICT', `${id} is declared in the configuration file; change it there`, { field: 'id' });
    }
    throw new KurirError('NOT_FOUND', `credential ${id} not found`, { field: 'id' });
  }

  /** One credential's view. */
  async get(id: string): Promise<CredentialView> {
    const configured = this.configViews().find((c) => c.id === id);
    if (configured) return configured;
    return presentCredential(await this.stored(id), this.deps.clock.now());
  }

  /** Creates a credential; the answer carries its secret, which is shown this once. */
  async create(input: CreateCredentialInput, by: string): Promise<{ credential: CredentialView; secret: string }> {
    if (input.kind !== 'api-key' && input.kind !== 'smtp-account') throw new KurirError('VALIDATION', 'kind: api-key or smtp-account', { field: 'kind' });
    if (!NAME_PATTERN.test(input.name)) throw new KurirError('VALIDATION', `name: ${NAME_RULE}`, { field: 'name' });
    if (input.username !== undefined && input.kind !== 'smtp-account') {
      throw new KurirError('VALIDATION', 'username: only SMTP accounts have a user name (an API key is used by its secret alone)', { field: 'username' });
    }
    if (input.username !== undefined && !NAME_PATTERN.test(input.username)) throw new KurirError('VALIDATION', `username: ${NAME_RULE}`, { field: 'username' });
    this.validateScope(input, input.kind);
    const username = input.kind === 'smtp-account' ? (input.username ?? input.name) : undefined;
    const taken = this.deps.registry.configNames();
    if (taken.names.has(input.name)) throw new KurirError('CONFLICT', `name: ${input.name} is a credential of the configuration file`, { field: 'name' });
    if (username !== undefined && taken.usernames.has(username)) {
      throw new KurirError('CONFLICT', `username: ${username} is an SMTP account of the configuration file`, { field: 'username' });
    }
    const now = this.deps.clock.now();
    const secret = newSecret(input.kind);
    const record: StoredCredential = {
      id: `cred_${randomBytes(9).toString('base64url')}`,
      kind: input.kind,
      name: input.name,
      role: input.role ?? 'send',
      ...(username !== undefined ? { username } : {}),
      domains: lowerUnique(input.domains ?? ['*']),
      priorities: input.priorities ?? null,
      limits: input.limits ?? null,
      ...(input.kind === 'api-key' ? { webhook: webhookOf(input.webhook) } : {}),
      secrets: [{ digest: keyedDigest(this.deps.hmacKey, secret), createdAt: now, notAfter: null }],
      createdAt: now,
      updatedAt: now,
      createdBy: by,
    };
    const conflict = await this.deps.store.create(record);
    if (conflict) {
      const value = conflict === 'name' ? record.name : record.username;
      throw new KurirError('CONFLICT', `${conflict}: a credential named ${value} already exists`, { field: conflict });
    }
    await this.changed();
    return { credential: presentCredential(record, now), secret };
  }

  /**
   * Writes `change(record)` over the credential, reading it again when another change was written meanwhile,
   * so concurrent changes (two admins, two gateways) never undo each other — a rotation that ended a leaked
   * secret is not reverted by a scope change made from the record read before it.
   */
  private async change(id: string, change: (r: StoredCredential) => StoredCredential): Promise<{ before: StoredCredential; after: StoredCredential }> {
    for (let attempt = 0; attempt < MAX_CHANGE_ATTEMPTS; attempt++) {
      const before = await this.stored(id);
      const after = change(before);
      const res = await this.deps.store.update(after, before);
      if (res === 'gone') throw new KurirError('NOT_FOUND', `credential ${id} not found`, { field: 'id' });
      if (res === 'updated') {
        await this.changed();
        return { before, after };
      }
    }
    throw new KurirError('CONFLICT', `credential ${id} is being changed by another request; try again`, { field: 'id' });
  }

  /** Changes a credential's scope (role, domains, priorities, limits); answers it before and after. */
  async update(id: string, input: CredentialScopeInput): Promise<{ before: CredentialView; after: CredentialView }> {
    const kind = (await this.stored(id)).kind;
    this.validateScope(input, kind);
    const now = this.deps.clock.now();
    const { before, after } = await this.change(id, (r) => ({
      ...r,
      ...(input.role !== undefined ? { role: input.role } : {}),
      ...(input.domains !== undefined ? { domains: lowerUnique(input.domains) } : {}),
      ...(input.priorities !== undefined ? { priorities: input.priorities } : {}),
      ...(input.limits !== undefined ? { limits: input.limits } : {}),
      ...(input.webhook !== undefined ? { webhook: webhookOf(input.webhook) } : {}),
      updatedAt: now,
    }));
    return { before: presentCredential(before, now), after: presentCredential(after, now) };
  }

  /**
   * Gives a credential a new secret (shown once). The current one keeps working for `overlapSeconds`
   * (0: stops at once), so clients can switch without a gap.
   */
  async rotate(id: string, overlapSeconds: number): Promise<{ before: CredentialView; after: CredentialView; secret: string }> {
    if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > MAX_OVERLAP_SECONDS) {
      throw new KurirError('VALIDATION', `overlapSeconds: an integer from 0 to ${MAX_OVERLAP_SECONDS}`, { field: 'overlapSeconds' });
    }
    const kind = (await this.stored(id)).kind;
    const now = this.deps.clock.now();
    const until = now + overlapSeconds * 1000;
    const secret = newSecret(kind);
    const fresh: StoredSecret = { digest: keyedDigest(this.deps.hmacKey, secret), createdAt: now, notAfter: null };
    const { before, after } = await this.change(id, (r) => {
      const kept: StoredSecret[] = r.secrets
        .map((s) => ({ ...s, notAfter: s.notAfter === null ? until : Math.min(s.notAfter, until) }))
        .filter((s) => s.notAfter > now);
      return { ...r, secrets: [...kept, fresh].slice(-MAX_SECRETS), updatedAt: now };
    });
    return { before: presentCredential(before, now), after: presentCredential(after, now), secret };
  }

  /** Deletes a credential: every secret of it stops working (on every gateway within `credentials.refreshSeconds`). */
  async revoke(id: string): Promise<{ before: CredentialView }> {
    const r = await this.stored(id);
    if (!(await this.deps.store.remove(id))) throw new KurirError('NOT_FOUND', `credential ${id} not found`, { field: 'id' });
    await this.changed();
    return { before: presentCredential(r, this.deps.clock.now()) };
  }
}

/** Sender domains in lower case, each once (`["EXAMPLE.TEST", "example.test"]` is one domain). */
function lowerUnique(domains: readonly string[]): string[] {
  return [...new Set(domains.map((d) => d.toLowerCase()))];
}
