import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

/** smtp-server with a gate before and a hook after every new connection. */
export class HookedSmtpServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    private readonly onConnection: (conn: SMTPConnection) => void,
    private readonly admit: (socket: Socket) => boolean,
  ) {
    super(options);
  }

  override connect(...args: Parameters<SMTPServer['connect']>): void {
    if (!this.admit(args[0])) return;
    super.connect(...args);
    let newest: SMTPConnection | undefined;
    for (const c of this.connections) newest = c; // a Set iterates in insertion order
    if (newest) this.onConnection(newest);
  }
}
