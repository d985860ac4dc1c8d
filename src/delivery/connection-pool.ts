import type SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import {
  endSession,
  openSession,
  resetSession,
  runTransaction,
  sessionFailure,
  sessionTls,
  type SendResult,
  type SmtpError,
  type SmtpTarget,
  type Transaction,
  type sendMessage,
} from './smtp-client.js';
import { sessionTlsIssue, type TlsFailureType } from './tls-failure.js';

/** Options of {@link createSmtpPool}. */
export interface SmtpPoolOptions {
  /** Idle connections kept per target; more are closed with QUIT after their transaction (default 10). */
  maxIdlePerTarget?: number;
  /** Transactions per connection before it is closed with QUIT (default 100), unless `messagesPerConnection` says otherwise. */
  maxMessagesPerConnection?: number;
  /**
   * Per-destination limit, asked for each transaction: how many transactions the connection it ran on may
   * have had before it is closed (null: no limit; undefined: `maxMessagesPerConnection`). The gateway answers
   * with the provider's `shaping.limits.<provider>.maxMessagesPerConnection`.
   */
  messagesPerConnection?: (target: SmtpTarget, recipients: readonly string[]) => number | null | undefined;
  /** An idle connection is closed with QUIT after this long (default 5000). */
  idleTimeoutMs?: number;
  /** Called whenever a send takes a connection: `reused` false means a new TCP (+TLS) session was opened. */
  onConnection?: (info: { target: string; reused: boolean; tls: boolean }) => void;
}

/** SMTP sessions kept open per destination and reused for consecutive messages. */
export interface SmtpPool {
  /** Same signature and result semantics as {@link sendMessage}; drop-in for `DeliveryDeps.send`. */
  send: typeof sendMessage;
  /** Closes idle connections (QUIT) and makes busy ones close after their transaction. */
  close(): Promise<void>;
  /** `open`: connections alive (busy or idle); `idle`: connections waiting for reuse. */
  stats(): { open: number; idle: number };
}

interface Pooled {
  conn: SMTPConnection;
  key: string;
  tls: boolean;
  /** What a verifying sender would have refused in this session (see SendResult.tlsFailure). */
  tlsFailure?: TlsFailureType;
  messages: number;
  timer?: NodeJS.Timeout;
  /** Listener for 'error'/'end' while idle: the server closed or broke the connection. */
  drop?: () => void;
}

/**
 * The identity of a session: connections are only shared by sends whose target (host, port, SNI name,
 * implicit TLS, STARTTLS requirement, certificate checks, AUTH user), EHLO name and local (source) address
 * are the same: a connection from one source IP never carries a message meant to go out from another.
 */
export function targetKey(target: SmtpTarget, ehloName: string, localAddress?: string): string {
  const mode = target.secure ? 'smtps' : target.requireTls ? 'starttls-required' : 'starttls-opportunistic';
  const auth = target.auth ? `${target.auth.user}@` : '';
  const from = localAddress ? ` from=${localAddress}` : '';
  return `${auth}${target.servername ?? ''}[${target.host}]:${target.port} ${mode}${target.verifyTls ? ' verified' : ''} ehlo=${ehloName}${from}`;
}

/** How long close() waits for a QUIT to be answered before dropping the socket. */
const QUIT_GRACE_MS = 2000;

/**
 * Creates a pool of SMTP sessions keyed by target. `send` takes an idle session for the target (most
 * recently used first) or opens one, runs one transaction, and parks the session again: RSET after
 * rejections, closed after network or protocol errors and 421 replies. A reused session found dead before
 * MAIL FROM was answered (closed by the server while idle) is retried once on a new connection.
 * There is no cap on concurrent connections: concurrency is bounded by the caller (the worker).
 */
export function createSmtpPool(opts: SmtpPoolOptions = {}): SmtpPool {
  const maxIdle = opts.maxIdlePerTarget ?? 10;
  const maxMessages = opts.maxMessagesPerConnection ?? 100;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 5000;
  const idle = new Map<string, Pooled[]>();
  const open = new Set<Pooled>();
  let closed = false;

  const unpark = (p: Pooled): void => {
    const list = idle.get(p.key);
    const i = list ? list.indexOf(p) : -1;
    if (list && i >= 0) list.splice(i, 1);
    if (list && !list.length) idle.delete(p.key);
    clearTimeout(p.timer);
    p.timer = undefined;
    if (p.drop) {
      p.conn.removeListener('error', p.drop);
      p.conn.removeListener('end', p.drop);
      p.drop = undefined;
    }
  };

  const retire = (p: Pooled, graceful: boolean): void => {
    unpark(p);
    endSession(p.conn, graceful);
  };

  /** The limit of transactions per connection for one send. */
  const limitFor = (target: SmtpTarget, recipients: readonly string[]): number => {
    const own = opts.messagesPerConnection?.(target, recipients);
    return own === undefined ? maxMessages : own === null ? Infinity : own;
  };

  const canPark = (p: Pooled, limit: number): boolean => !closed && p.messages < limit && (idle.get(p.key)?.length ?? 0) < maxIdle;

  const park = (p: Pooled, limit: number): void => {
    if (!canPark(p, limit)) {
      retire(p, true);
      return;
    }
    p.drop = () => retire(p, false);
    p.conn.once('error', p.drop);
    p.conn.once('end', p.drop);
    p.timer = setTimeout(() => retire(p, true), idleTimeoutMs);
    p.timer.unref();
    const list = idle.get(p.key) ?? [];
    list.push(p);
    idle.set(p.key, list);
  };

  /** After a transaction: park the session (RSET first when it saw rejections) or close it. */
  const release = async (p: Pooled, tx: Transaction, limit: number): Promise<void> => {
    p.messages++;
    if (tx.next === 'discard') return retire(p, false);
    if (!canPark(p, limit)) return retire(p, true);
    if (tx.next === 'reset') {
      try {
        await resetSession(p.conn);
      } catch {
        return retire(p, false);
      }
    }
    park(p, limit);
  };

  const take = (key: string): Pooled | undefined => {
    const p = idle.get(key)?.at(-1);
    if (p) unpark(p);
    return p;
  };

  const send: typeof sendMessage = async (target, envelope, raw, sendOpts): Promise<SendResult> => {
    const key = targetKey(target, sendOpts.ehloName, sendOpts.localAddress);
    const limit = limitFor(target, envelope.to);
    const reused = take(key);
    if (reused) {
      opts.onConnection?.({ target: key, reused: true, tls: reused.tls });
      const tx = await runTransaction(reused.conn, envelope, raw, sendOpts);
      if (!(tx.next === 'discard' && tx.beforeMail)) {
        await release(reused, tx, limit);
        return { connected: true, tls: reused.tls, outcomes: tx.outcomes, reused: true, ...(reused.tlsFailure ? { tlsFailure: reused.tlsFailure } : {}) };
      }
      // Stale: the server closed it while idle and nothing was committed. Retry once on a new connection.
      retire(reused, false);
    }
    let conn: SMTPConnection;
    try {
      conn = await openSession(target, sendOpts);
    } catch (err) {
      return sessionFailure(err as SmtpError, envelope.to);
    }
    const p: Pooled = { conn, key, tls: sessionTls(conn), tlsFailure: sessionTlsIssue(conn), messages: 0 };
    open.add(p);
    conn.once('end', () => open.delete(p));
    opts.onConnection?.({ target: key, reused: false, tls: p.tls });
    const tx = await runTransaction(conn, envelope, raw, sendOpts);
    await release(p, tx, limit);
    return { connected: true, tls: p.tls, outcomes: tx.outcomes, ...(p.tlsFailure ? { tlsFailure: p.tlsFailure } : {}) };
  };

  return {
    send,
    async close() {
      closed = true;
      const parked = [...idle.values()].flat();
      await Promise.all(
        parked.map(
          (p) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                p.conn.close();
                resolve();
              }, QUIT_GRACE_MS);
              p.conn.once('end', () => {
                clearTimeout(timer);
                resolve();
              });
              retire(p, true);
            }),
        ),
      );
    },
    stats: () => ({ open: open.size, idle: [...idle.values()].reduce((n, list) => n + list.length, 0) }),
  };
}
