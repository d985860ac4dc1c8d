/**
 * The SMTP intake's defences against password guessing and connection hoarding:
 * - AUTH goes through the cluster-wide {@link AuthThrottle}: a blocked client IP or user name is
 *   answered `421 4.7.0` and disconnected before its password is looked at; each failure is answered
 *   `535 5.7.8` after a short growing delay; the failure that reaches a threshold, or the
 *   `authLimits.maxFailuresPerConnection`-th on one connection, is answered `421 4.7.0` and disconnected
 *   (smtp-server closes the connection after every 421).
 * - a connection over `smtp.maxConnections` or `smtp.maxConnectionsPerIp` (both listeners together) is
 *   answered `421 4.7.0` and closed on arrival, before smtp-server greets it.
 * - an AUTH command is checked before smtp-server sees it: no mechanism, or a connection that may not
 *   authenticate in clear ({@link authCommandRefusal}).
 */
import type { Socket } from 'node:net';
import type { SMTPServerAuthentication, SMTPServerAuthenticationResponse, SMTPServerSession } from 'smtp-server';
import type { AuthThrottle } from '../intake/auth-throttle.js';
import type { Credential, CredentialRegistry } from '../intake/credentials.js';
import { createConnectionCap } from '../lib/connection-cap.js';
import { KurirError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { smtpReply, type SmtpReplyError } from './replies.js';

/** The SASL mechanisms offered (EHLO's AUTH line). */
export const AUTH_METHODS = ['PLAIN', 'LOGIN'];

/** The refusal of AUTH on a connection that may not authenticate in clear: `538 5.7.11`. */
export function encryptionRequired(): SmtpReplyError {
  return smtpReply(538, '5.7.11', 'Encryption required for requested authentication mechanism (use STARTTLS)');
}

/**
 * What an `AUTH` command line is answered before smtp-server takes it, or null to let it through. Without a mechanism
 * `501 5.5.4` naming those offered (RFC 4954 §4; smtp-server answered a bare "504 Error: Unrecognized authentication
 * type"); where `mayAuth` is false (cleartext, not allowed on this connection) {@link encryptionRequired}.
 */
export function authCommandRefusal(command: string, mayAuth: boolean): SmtpReplyError | null {
  if (!command.trim().split(/\s+/)[1]) {
    return smtpReply(501, '5.5.4', `AUTH: name a mechanism, one of ${AUTH_METHODS.join(', ')} (AUTH PLAIN <initial response>, or AUTH LOGIN)`);
  }
  return mayAuth ? null : encryptionRequired();
}

type AuthCallback = (err: Error | null | undefined, res?: SMTPServerAuthenticationResponse) => void;

export interface SmtpAuthDeps {
  credentials: CredentialRegistry;
  /** Null: wrong passwords are only answered 535 (no delay, no block). */
  throttle: AuthThrottle | null;
  log: Logger;
  /** Turns a refusal into the reply smtp-server sends (and counts and logs it). */
  refuse: (session: SMTPServerSession, stage: string, err: unknown) => SmtpReplyError;
}

/** An smtp-server `onAuth` handler checking PLAIN/LOGIN credentials under the failure throttle. */
export function createSmtpAuth(deps: SmtpAuthDeps): (auth: SMTPServerAuthentication, session: SMTPServerSession, callback: AuthCallback) => void {
  const { credentials, throttle, log } = deps;
  const failuresOn = new WeakMap<SMTPServerSession, number>();

  const verify = async (auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<Credential> => {
    const username = auth.username ?? '';
    const attempt = { iface: 'smtp' as const, ip: session.remoteAddress, user: username };
    await throttle?.check(attempt);
    const cred =
      (auth.method === 'PLAIN' || auth.method === 'LOGIN') && (!auth.authzid || auth.authzid === username)
        ? await credentials.resolveSmtpLogin(username, auth.password ?? '')
        : null;
    if (cred) {
      await throttle?.succeed(attempt);
      return cred;
    }
    const failures = (failuresOn.get(session) ?? 0) + 1;
    failuresOn.set(session, failures);
    if (!throttle) throw new KurirError('AUTH_FAILED');
    const reason = credentials.hasSmtpUser(username) ? 'bad-password' : 'unknown-user';
    throw await throttle.fail({ ...attempt, reason, connectionFailures: failures });
  };

  return (auth, session, callback) => {
    verify(auth, session).then(
      (cred) => {
        log.debug({ sid: session.id, username: auth.username, account: cred.name, method: auth.method, secure: session.secure }, 'smtp: authenticated');
        callback(null, { user: cred });
      },
      (err: unknown) => callback(deps.refuse(session, 'auth', err)),
    );
  };
}

/** The SMTP listeners' connection cap, as {@link createSmtpConnectionGuard} makes it. */
export interface SmtpConnectionGuard {
  /** Counts the socket and returns true, or answers it `421 4.7.0`, closes it and returns false. */
  admit(socket: Socket): boolean;
  /** Frees the slot of an admitted socket whose session ended (idempotent). */
  release(socket: Socket): void;
}

/**
 * A connection cap for the SMTP listeners: `admit(socket)` counts the socket and returns true, or
 * answers it `421 4.7.0`, closes it, counts kurir_connections_refused_total and returns false.
 */
export function createSmtpConnectionGuard(opts: {
  maxConnections: number;
  maxConnectionsPerIp: number | null;
  metrics: Pick<Metrics, 'connectionsRefused' | 'connectionsOpen'>;
  log: Logger;
}): SmtpConnectionGuard {
  const cap = createConnectionCap({
    maxTotal: opts.maxConnections,
    maxPerClient: opts.maxConnectionsPerIp,
    onChange: (open) => opts.metrics.connectionsOpen.set({ interface: 'smtp' }, open),
  });
  return {
    admit(socket) {
      const over = cap.admit(socket);
      if (!over) return true;
      opts.metrics.connectionsRefused.inc({ interface: 'smtp', scope: over });
      // Per socket at debug only: a flood would flood the log; the metric counts them.
      opts.log.debug({ remote: socket.remoteAddress, scope: over, open: cap.open }, 'smtp: connection refused (connection cap)');
      const text = over === 'ip' ? 'Too many connections from your address' : 'Too many connections';
      socket.on('error', () => undefined);
      socket.end(`421 4.7.0 ${text}, try again later\r\n`, () => socket.destroy());
      return false;
    },
    release: (socket) => cap.release(socket),
  };
}
