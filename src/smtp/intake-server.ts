/**
 * SMTP submission intake (smtp-server): STARTTLS, AUTH PLAIN/LOGIN, SIZE, and IntakeService's policy at
 * each step — auth at MAIL FROM (never an open relay), sender scope at MAIL FROM, address, recipient
 * limit and suppression at RCPT TO, the whole policy and the durable write at the end of DATA (./late-suppression.ts).
 * `250 2.0.0 Ok: queued as <id>` is sent only once `accept` has resolved. Parameters not offered: `555 5.5.4` (./parameters.ts).
 *
 * Three per-connection adjustments to smtp-server (see `harden`):
 * - a reply text that already starts with an enhanced status code is sent as it is, so registry codes
 *   (`550 5.7.1`) are not overridden by smtp-server's per-code defaults (`550 5.1.1`), while its own
 *   replies (530, 552 on SIZE, 501 syntax) keep their enhanced codes;
 * - cleartext AUTH is refused with `538 5.7.11` before any credential is asked for, unless
 *   `smtp.allowInsecureAuthOnLoopback` is set and the client is on loopback (smtp-server's
 *   `allowInsecureAuth` is server-wide). onAuth checks the same rule again as a backstop. `AUTH` without a
 *   mechanism is `501 5.5.4` naming the mechanisms offered;
 * - MAIL FROM and RCPT TO accept a quoted local part (`"john doe"@example.org`, ./quoted-local-parts.ts).
 * Password guessing and connection hoarding are handled in ./auth-guard.ts (failure throttle, caps).
 */
import type { AddressInfo, Socket } from 'node:net';
import type {
  SMTPServerAddress,
  SMTPServerAuthentication,
  SMTPServerAuthenticationResponse,
  SMTPServerDataStream,
  SMTPServerOptions,
  SMTPServerSession,
} from 'smtp-server';
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { Config } from '../config/schema.js';
import type { AuthThrottle } from '../intake/auth-throttle.js';
import type { CredentialRegistry, Credential } from '../intake/credentials.js';
import { kurirHeaderOptions } from '../intake/headers.js';
import type { IntakeService } from '../intake/intake-service.js';
import { normalizeAddress } from '../lib/address.js';
import type { Admission } from '../lib/admission.js';
import { isLoopback } from '../lib/client-address.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { createDataCollector } from '../lib/collect-data.js';
import { coalesceSocketWrites, holdSocketWrites } from '../lib/coalesced-writes.js';
import { KurirError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import { AUTH_METHODS, authCommandRefusal, createSmtpAuth, createSmtpConnectionGuard, encryptionRequired } from './auth-guard.js';
import { HookedSmtpServer } from './hooked-server.js';
import { createLateSuppression } from './late-suppression.js';
import { assertParameters } from './parameters.js';
import { withQuotedLocalParts } from './quoted-local-parts.js';
import { createSmtpRefuser } from './refusals.js';
import { ENHANCED_PREFIX, smtpError, smtpReply, type SmtpReplyError } from './replies.js';

/** The SMTP intake listeners. */
export interface SmtpIntake {
  /** Starts the submission listener (and the implicit-TLS one when `smtp.tlsPort` is set); resolves with the bound ports. */
  listen(): Promise<{ port: number; tlsPort?: number }>;
  /** Stops accepting connections, lets in-flight messages finish (bounded), then ends idle sessions. Safe to call twice. */
  close(): Promise<void>;
}

/** What the SMTP intake needs; built by the composition root (src/gateway.ts). */
export interface SmtpIntakeDeps {
  config: Config;
  logger: Logger;
  intake: IntakeService;
  /** The intake's clock (the end-of-DATA suppression check, ./late-suppression.ts). */
  clock?: Clock;
  credentials: CredentialRegistry;
  tls: { key: string; cert: string };
  /** Bytes in flight across intake (shared with HTTP); a DATA over the bound is answered 451 4.3.2. */
  admission?: Admission;
  metrics: Pick<Metrics, 'connectionsRefused' | 'connectionsOpen'>;
  /** Failed-AUTH throttling (delays, blocks); without it a wrong password is only answered 535. */
  authThrottle?: AuthThrottle;
}

/** How long in-flight sessions get on close before smtp-server drops them with 421. */
const CLOSE_GRACE_MS = 5000;

/**
 * Creates the SMTP submission intake. Nothing listens until `listen()`.
 * Every refusal is an SMTP reply from the error registry via {@link smtpError}; unexpected errors are
 * logged and answered `451 4.3.0`, never a crash.
 */
export function createSmtpIntake(deps: SmtpIntakeDeps): SmtpIntake {
  const { config, intake, credentials } = deps;
  const log = deps.logger.child({ component: 'smtp' });
  const max = { bytes: config.smtp.maxMessageBytes, recipients: config.smtp.maxRecipients };
  let closing: Promise<void> | null = null;
  let listening: Promise<{ port: number; tlsPort?: number }> | null = null;

  const mayAuth = (secure: boolean, remote: string | undefined): boolean => secure || (config.smtp.allowInsecureAuthOnLoopback && isLoopback(remote));

  const refuse = createSmtpRefuser(intake, log);
  const lateSuppression = createLateSuppression({ intake, clock: deps.clock ?? systemClock, log });

  const credentialOf = (session: SMTPServerSession): Credential => {
    if (!session.user) throw new KurirError('AUTH_REQUIRED');
    return session.user as Credential;
  };

  /** Ends sessions that are not in the middle of a message; called once closing and nothing is in flight. */
  const endIdleSessions = (): void => {
    for (const server of servers) for (const conn of server.connections) conn.send(421, '4.3.2 Service shutting down, try again later');
  };

  const harden = (conn: SMTPConnection): void => {
    const send = conn.send.bind(conn);
    conn.send = (code, data, context) => send(code, data, typeof data === 'string' && ENHANCED_PREFIX.test(data) ? false : context);
    conn._parseAddressCommand = withQuotedLocalParts(conn._parseAddressCommand.bind(conn));
    const handleAuth = conn.handler_AUTH.bind(conn);
    conn.handler_AUTH = (command, callback) => {
      const reply = authCommandRefusal(command.toString(), mayAuth(conn.secure, conn.remoteAddress));
      if (!reply) return handleAuth(command, callback);
      conn.send(reply.responseCode, reply.message);
      callback();
    };
  };

  // Once closing, the last DATA reply ends the sessions left idle.
  const dataStreams = createDataCollector(
    max.bytes,
    () => {
      if (closing && dataStreams.inFlight === 0) setImmediate(endIdleSessions);
    },
    deps.admission,
  );

  /** Each TLS session's socket, whose writes are coalesced (onSecure). */
  const secureSockets = new WeakMap<SMTPServerSession, Socket>();
  const checkAuth = createSmtpAuth({ credentials, throttle: deps.authThrottle ?? null, log, refuse });
  const admit = createSmtpConnectionGuard({ ...config.smtp, metrics: deps.metrics, log });

  const options: SMTPServerOptions = {
    name: config.hostname,
    banner: 'Kurir mail submission',
    key: deps.tls.key,
    cert: deps.tls.cert,
    minVersion: 'TLSv1.2',
    size: max.bytes,
    authMethods: AUTH_METHODS,
    authOptional: false,
    authRequiredMessage: '5.7.0 Authentication required',
    allowInsecureAuth: true, // the per-client rule is enforced in harden() and onAuth
    hideENHANCEDSTATUSCODES: false,
    hideSMTPUTF8: true, // addresses must be ASCII (IDN domains as punycode)
    hideDSN: true,
    hideREQUIRETLS: true,
    disableReverseLookup: true,
    logger: false, // smtp-server's own log would carry the AUTH lines; Kurir logs sessions itself
    socketTimeout: config.smtp.socketTimeoutSeconds * 1000,
    closeTimeout: CLOSE_GRACE_MS,
    // Also bounds implicit-TLS handshakes in progress; established sessions are capped first by `admit`.
    maxClients: config.smtp.maxConnections,

    onConnect(session, callback) {
      log.debug({ sid: session.id, remote: session.remoteAddress, secure: session.secure }, 'smtp: connection');
      callback();
    },

    // Replies ready in one event-loop turn leave in one TLS record and one send (src/lib/coalesced-writes.ts).
    onSecure(socket, session, callback) {
      coalesceSocketWrites(socket);
      secureSockets.set(session, socket);
      callback();
    },

    onAuth(auth: SMTPServerAuthentication, session, callback: (err: Error | null | undefined, res?: SMTPServerAuthenticationResponse) => void) {
      if (!mayAuth(session.secure, session.remoteAddress)) return callback(encryptionRequired());
      checkAuth(auth, session, callback);
    },

    onMailFrom(address: SMTPServerAddress, session, callback) {
      try {
        if (closing) return callback(smtpReply(421, '4.3.2', 'Service shutting down, try again later'));
        const cred = credentialOf(session);
        assertParameters('MAIL FROM', address.args);
        if (!address.address) throw new KurirError('BAD_ADDRESS', 'MAIL FROM: the null sender <> cannot submit mail', { field: 'mailFrom' });
        intake.checkSenderDomain(cred, normalizeAddress(address.address, 'MAIL FROM'), 'mailFrom', 'MAIL FROM');
        // A credential over its message budget is refused before the client uploads anything (451 4.7.1).
        intake.checkCredentialLimits(cred).then(
          () => {
            log.debug({ sid: session.id, mailFrom: address.address }, 'smtp: MAIL FROM accepted');
            callback();
          },
          (err: unknown) => callback(refuse(session, 'MAIL', err)),
        );
      } catch (err) {
        callback(refuse(session, 'MAIL', err));
      }
    },

    onRcptTo(address: SMTPServerAddress, session, callback) {
      const check = async (): Promise<void> => {
        credentialOf(session);
        assertParameters('RCPT TO', address.args);
        const rcpt = normalizeAddress(address.address, 'RCPT TO');
        const current = session.envelope.rcptTo;
        const key = address.address.toLowerCase();
        if (current.length >= max.recipients && !current.some((r) => r.address.toLowerCase() === key)) {
          throw new KurirError('TOO_MANY_RECIPIENTS', `RCPT TO: at most ${max.recipients} recipients per message`, { field: 'to' });
        }
        // Suppressed: 550 5.1.1. The priority is only known at DATA (X-Kurir-Priority): a recipient whose budget
        // is used up is refused here whatever the message's priority (450 4.2.1, temporary); DATA counts exactly.
        lateSuppression.checked(session.envelope, await intake.checkRecipients([rcpt]));
      };
      // MAIL's reply, when it was pipelined with this RCPT, waits for RCPT's and DATA's 354 (RFC 2920 allows holding
      // a group's replies): one record for the three. A client that waits for each reply had MAIL's sent already.
      const release = holdSocketWrites(secureSockets.get(session));
      const refused = (err: unknown): SmtpReplyError => refuse(session, 'RCPT', err);
      check()
        .then(() => null, refused)
        .then(callback)
        .finally(release);
    },

    onData(stream: SMTPServerDataStream, session, callback) {
      dataStreams.collect(stream, callback, {
        onError: (err, answer) => answer(refuse(session, 'DATA', err)),
        onEnd: (data, answer) => {
          const submit = async (): Promise<string> => {
            const credential = credentialOf(session);
            if (data.tooLarge) throw new KurirError('TOO_LARGE', `message exceeds the limit of ${max.bytes} bytes`, { field: 'message' });
            if (data.busy) throw new KurirError('BUSY');
            const raw = data.raw();
            const { envelope } = session;
            const checked = await lateSuppression.check(envelope);
            const accepted = await intake.accept({
              credential,
              iface: 'smtp',
              mailFrom: envelope.mailFrom ? envelope.mailFrom.address : undefined,
              recipients: checked.recipients,
              raw,
              ...kurirHeaderOptions(raw, config.delivery.maxTtlSeconds), // X-Kurir-Priority, X-Kurir-Ttl
              suppressionCheckedAt: checked.checkedAt,
              leftOut: checked.leftOut,
            });
            lateSuppression.logLeftOut(accepted.id, checked.leftOut, session.id);
            log.debug({ sid: session.id, id: accepted.id, bytes: raw.length, recipients: checked.recipients.length }, 'smtp: message accepted');
            return accepted.id;
          };
          submit().then(
            (id) => answer(null, `2.0.0 Ok: queued as ${id}`),
            (err: unknown) => answer(refuse(session, 'DATA', err)),
          );
        },
      });
    },

    onClose(session) {
      log.debug({ sid: session.id, remote: session.remoteAddress }, 'smtp: connection closed');
    },
  };

  const servers: HookedSmtpServer[] = [new HookedSmtpServer({ ...options }, harden, admit)];
  if (config.smtp.tlsPort !== null) servers.push(new HookedSmtpServer({ ...options, secure: true }, harden, admit));
  for (const server of servers) {
    // Connection-level failures (resets, failed TLS handshakes) land here; without a listener they would crash.
    server.on('error', (err: Error) => log.debug({ err: err.message }, 'smtp: connection error'));
  }

  const listenOn = (server: HookedSmtpServer, port: number, key: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void =>
        reject(new Error(`${key} = ${port}: cannot listen on ${config.smtp.host}:${port} (${err.code ?? err.message})`, { cause: err }));
      server.server.once('error', onError);
      server.listen(port, config.smtp.host, () => {
        server.server.off('error', onError);
        resolve((server.server.address() as AddressInfo).port);
      });
    });

  const closeAll = async (): Promise<void> => {
    const done = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    if (dataStreams.inFlight === 0) endIdleSessions();
    await Promise.all(done);
  };

  return {
    listen() {
      if (closing) return Promise.reject(new Error('smtp intake is closed'));
      listening ??= (async () => {
        try {
          const port = await listenOn(servers[0], config.smtp.port, 'smtp.port');
          const bound: { port: number; tlsPort?: number } = { port };
          if (servers[1]) bound.tlsPort = await listenOn(servers[1], config.smtp.tlsPort ?? 0, 'smtp.tlsPort');
          log.info({ host: config.smtp.host, ...bound }, 'smtp intake listening');
          return bound;
        } catch (err) {
          await closeAll(); // do not leave the first listener open when the second cannot bind
          throw err;
        }
      })();
      return listening;
    },

    close() {
      closing ??= closeAll().then(() => log.debug('smtp intake closed'));
      return closing;
    },
  };
}
