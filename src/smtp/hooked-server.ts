import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { SmtpConnectionGuard } from './auth-guard.js';

/**
 * smtp-server with a gate before and a hook after every new connection. The gate's slot is freed when smtp-server
 * reports the session closed (its `onClose`): the socket's own close event cannot be relied on, because
 * smtp-server removes every listener of the socket it upgrades with STARTTLS, and a STARTTLS session's slot was
 * never freed before (found 30 Nov 2026: two sessions, closed, filled a per-IP cap of 2 for good).
 */
export class HookedSmtpServer extends SMTPServer {
  /** The raw socket of each open connection, by connection (= session) id. */
  private readonly sockets = new Map<string, Socket>();

  constructor(
    options: SMTPServerOptions,
    private readonly onConnection: (conn: SMTPConnection) => void,
    private readonly gate: SmtpConnectionGuard,
  ) {
    super(options);
    // smtp-server copied options.onClose onto the instance; wrap whichever handler it kept.
    const handler = this.onClose.bind(this);
    this.onClose = (session: SMTPServerSession, callback: (err?: Error | null) => void): void => {
      const socket = this.sockets.get(session.id);
      if (socket) {
        this.sockets.delete(session.id);
        this.gate.release(socket);
      }
      handler(session, callback);
    };
  }

  /**
   * smtp-server's entry point for each accepted socket (called by its listener): a socket the gate refuses is
   * answered 421 and closed by the gate and never reaches smtp-server; an admitted one is served, its socket kept
   * for the slot's release, and the new connection handed to the hook.
   */
  override connect(...args: Parameters<SMTPServer['connect']>): void {
    const socket = args[0];
    if (!this.gate.admit(socket)) return;
    super.connect(...args);
    let newest: SMTPConnection | undefined;
    for (const c of this.connections) newest = c; // a Set iterates in insertion order
    if (!newest) return;
    this.sockets.set((newest as unknown as { id: string }).id, socket);
    this.onConnection(newest);
  }
}
