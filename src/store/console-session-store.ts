/**
 * Web console sessions in Redis, so every API gateway on one prefix shares them. The cookie carries a
 * random 256-bit id; Redis holds the session under the SHA-256 of that id (a copy of Redis does not give
 * anyone a usable cookie). Each session expires after `idleSeconds` without use: every read renews it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';

/** What a console session knows about who is logged in; never the API key itself. */
export interface ConsoleSession {
  /** The credential's kind and name (the audit actor is `<kind>:<name>`). */
  kind: 'api-key' | 'smtp-account';
  name: string;
  /** Runtime credentials: their id under /v1/credentials (checked on every request, so a revocation ends the session). */
  credentialId?: string;
  role: 'support' | 'admin';
  /** The per-session CSRF token every state-changing form carries. */
  csrf: string;
  createdAt: number;
}

const digest = (id: string): string => createHash('sha256').update(id).digest('hex');

/** Whether a value has the form of {@link randomToken}'s tokens (checked before any Redis look-up). */
export function isToken(value: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(value);
}

/** A fresh random token (base64url, 256 bits): session ids and CSRF tokens. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Creates, renews and ends web console sessions and claims the console's one-time form tokens, each stored under its token's SHA-256. */
export class ConsoleSessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly idleSeconds: number,
  ) {}

  /** Stores a new session; answers the id to put into the cookie. */
  async create(session: Omit<ConsoleSession, 'csrf'>): Promise<{ id: string; session: ConsoleSession }> {
    const id = randomToken();
    const full: ConsoleSession = { ...session, csrf: randomToken() };
    await this.redis.set(this.keys.consoleSession(digest(id)), JSON.stringify(full), 'EX', this.idleSeconds);
    return { id, session: full };
  }

  /** The session of a cookie value, renewing its idle timeout; null when unknown or expired. */
  async touch(id: string): Promise<ConsoleSession | null> {
    if (!isToken(id)) return null;
    const raw = await this.redis.getex(this.keys.consoleSession(digest(id)), 'EX', this.idleSeconds);
    return raw ? (JSON.parse(raw) as ConsoleSession) : null;
  }

  /**
   * Claims the one-time token of a form whose submit makes a new secret (credential create and rotate): true the
   * first time, false when it was claimed before (a reload or a second click re-posting the same form).
   */
  async claimForm(token: string): Promise<boolean> {
    return (await this.redis.set(this.keys.consoleForm(digest(token)), '1', 'EX', this.idleSeconds, 'NX')) === 'OK';
  }

  /** Gives a claimed form token back when its action failed, so the same form can be submitted again. */
  async releaseForm(token: string): Promise<void> {
    await this.redis.del(this.keys.consoleForm(digest(token)));
  }

  /** Ends a session (logout). */
  async end(id: string): Promise<void> {
    if (isToken(id)) await this.redis.del(this.keys.consoleSession(digest(id)));
  }
}
