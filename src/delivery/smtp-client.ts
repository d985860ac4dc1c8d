import type { Socket } from 'node:net';
import { rootCertificates } from 'node:tls';
import { coalesceSocketWrites } from '../lib/coalesced-writes.js';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { canPipeline, pipelinedTransaction } from './pipelined-transaction.js';
import { kindOf, rcptKindOf, replyCode, type RecipientOutcome, type SmtpError, type Transaction } from './smtp-types.js';
import { markTlsFallback, sessionTlsFailure, sessionTlsIssue, tlsFailureReply, type TlsFailureType } from './tls-failure.js';

export type { RecipientOutcome, SmtpError, Transaction } from './smtp-types.js';

export interface SmtpTarget {
  /** Address or host name to connect to. */
  host: string;
  port: number;
  /** Name for TLS SNI and certificate checks (the MX host name). */
  servername?: string;
  /** Implicit TLS (smarthost on 465). */
  secure?: boolean;
  /** Fail rather than send in clear text when STARTTLS is not offered. */
  requireTls?: boolean;
  verifyTls?: boolean;
  auth?: { user: string; pass: string };
  /** Why TLS is required (e.g. "smarthost credentials"), for the reply text when it fails. */
  tlsRequiredBy?: string;
}

export interface SmtpTimeouts {
  connectMs: number;
  greetingMs: number;
  socketMs: number;
}

/** Per-call options of {@link sendMessage} (and of the pool's `send`). */
export interface SendOptions {
  ehloName: string;
  /** The local address to bind the connection to (a source-IP pool's address); unset: the OS picks it. */
  localAddress?: string;
  timeouts: SmtpTimeouts;
  /** PEM certificates trusted in addition to the system's roots when certificates are verified (tests inject their CA). */
  trustedCa?: readonly string[];
  /** Pipeline MAIL, RCPT and DATA (RFC 2920) when the server offers PIPELINING (`delivery.pipelining`; default true). */
  pipelining?: boolean;
}

export interface SendResult {
  /** False when no SMTP session was established: the caller tries the next host. */
  connected: boolean;
  tls: boolean;
  outcomes: RecipientOutcome[];
  /** True when the transaction ran on a pooled connection opened for an earlier message. */
  reused?: boolean;
  /**
   * TLS as RFC 8460 judges it: when the session could not be opened, why TLS failed; when it was opened, what a
   * verifying sender would have refused (no STARTTLS, a certificate that did not verify). Absent when all was well.
   */
  tlsFailure?: TlsFailureType;
}

/** Error codes for errors that are SMTP replies on a still usable session (not network or protocol failures). */
const REPLY_ERRORS = new Set(['EENVELOPE', 'EMESSAGE']);

function replyOf(err: SmtpError): string {
  return (err.response ?? err.message).trim();
}

/** The code of an error's reply: nodemailer's `responseCode` is the first line's, `replyCode` reads every line. */
function codeOf(err: SmtpError): number | null {
  return (err.response ? replyCode(err.response) : null) ?? err.responseCode ?? null;
}

/**
 * Runs one SMTPConnection call and settles also when the connection errors or ends without calling
 * back (SMTPConnection drops pending callbacks when the socket goes away).
 */
function guarded<T>(conn: SMTPConnection, call: (done: (err?: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const settle = (err?: Error | null, value?: T): void => {
      if (settled) return;
      settled = true;
      conn.removeListener('error', onError);
      conn.removeListener('end', onEnd);
      if (err) reject(err);
      else resolve(value as T);
    };
    const onError = (err: Error): void => settle(err);
    const onEnd = (): void => settle(Object.assign(new Error('Connection closed'), { code: 'ECONNECTION' }));
    conn.once('error', onError);
    conn.once('end', onEnd);
    call(settle);
  });
}

/** True when the session runs over TLS (implicit or after STARTTLS). */
export function sessionTls(conn: SMTPConnection): boolean {
  return Boolean(conn.secure);
}

/**
 * Connects and greets: connect, EHLO, STARTTLS whenever offered (required with `requireTls`; never tried with
 * `ignoreTls`). On failure the connection is closed and the error thrown with `connected: false` and, when TLS failed,
 * `tlsFailure`.
 */
async function connectSession(target: SmtpTarget, opts: SendOptions, ignoreTls: boolean): Promise<SMTPConnection> {
  const conn = new SMTPConnection({
    host: target.host,
    port: target.port,
    secure: target.secure ?? false,
    requireTLS: target.requireTls ?? false,
    opportunisticTLS: !target.requireTls,
    ignoreTLS: ignoreTls,
    name: opts.ehloName,
    ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    connectionTimeout: opts.timeouts.connectMs,
    greetingTimeout: opts.timeouts.greetingMs,
    socketTimeout: opts.timeouts.socketMs,
    tls: {
      rejectUnauthorized: target.verifyTls ?? false,
      servername: target.servername,
      minVersion: 'TLSv1.2',
      ...(opts.trustedCa?.length ? { ca: [...rootCertificates, ...opts.trustedCa] } : {}),
    },
    logger: false,
  } as ConstructorParameters<typeof SMTPConnection>[0]);
  // Errors are handled per call; this keeps an 'error' on an idle or closing connection from crashing the process.
  conn.on('error', () => undefined);
  try {
    await guarded<void>(conn, (done) => conn.connect(() => done()));
  } catch (err) {
    const tlsFailure = sessionTlsFailure(conn, err as SmtpError);
    conn.close();
    throw Object.assign(err as SmtpError, { connected: false, tlsFailure, label: target.servername ?? target.host, tlsRequiredBy: target.tlsRequiredBy });
  }
  return conn;
}

/** TLS is only opportunistic: not implicit, not required, certificates not verified, no credentials to protect. */
function opportunistic(target: SmtpTarget): boolean {
  return !target.secure && !target.requireTls && !target.verifyTls && !target.auth;
}

/**
 * Opens an SMTP session: connect, EHLO, STARTTLS whenever offered (required with `requireTls`), and AUTH
 * when the target has credentials. When TLS is only opportunistic and its handshake fails (a receiver offering a
 * STARTTLS it cannot do), the session is opened again without STARTTLS, as to a receiver that never offered it
 * (Postfix does the same): else every attempt would fail alike until the message expired. The session then reports
 * the TLS failure (`sessionTlsIssue`). On failure the connection is closed and the error is thrown with
 * `connected` telling whether the SMTP session had been established (i.e. only AUTH failed).
 */
export async function openSession(target: SmtpTarget, opts: SendOptions): Promise<SMTPConnection> {
  let conn: SMTPConnection;
  try {
    conn = await connectSession(target, opts, false);
  } catch (err) {
    const failure = (err as SmtpError).tlsFailure;
    if (!failure || !opportunistic(target)) throw err;
    conn = await connectSession(target, opts, true);
    markTlsFallback(conn, failure);
  }
  // SMTPConnection leaves Nagle on: the small final write of DATA (CRLF.CRLF) then waits for the receiver's delayed
  // ACK, ~40 ms per message on Linux. The socket (plain or TLS, whose handle passes it down) is not public API, so
  // this is best effort; the session works either way.
  const socket = (conn as unknown as { _socket?: Socket })._socket;
  socket?.setNoDelay?.(true);
  // The body and its final dot (and whatever else one turn writes) leave in one send.
  if (socket) coalesceSocketWrites(socket);
  if (target.auth) {
    const { user, pass } = target.auth;
    try {
      await guarded<void>(conn, (done) => conn.login({ user, pass }, done));
    } catch (err) {
      endSession(conn, true);
      throw Object.assign(err as SmtpError, { connected: true });
    }
  }
  return conn;
}

/** Maps a failure of {@link openSession} to a result where every recipient shares the error (temporary unless the host said it takes no mail). */
export function sessionFailure(err: SmtpError, to: string[]): SendResult {
  if (err.tlsFailure) {
    // Not a refusal of the message: the reply to STARTTLS (if any) says nothing about the recipients. Always temporary.
    const reply = tlsFailureReply(err.tlsFailure, err.label ?? 'the server', replyOf(err), err.tlsRequiredBy);
    return { connected: false, tls: false, tlsFailure: err.tlsFailure, outcomes: to.map((address) => ({ address, kind: 'temp', code: null, reply })) };
  }
  const code = codeOf(err);
  const reply = replyOf(err);
  // Our own smarthost credentials being refused is our fault, never the recipient's: always temporary. So is a 5xx
  // greeting (or EHLO and HELO refused) before any recipient was named: a host too busy, blocking us or broken says
  // nothing of the recipient (Postfix's smtp_skip_5xx_greeting likewise defers), unless it says it takes no mail at
  // all (RFC 7504: 521, 556).
  const beforeSession = !err.connected && code !== 521 && code !== 556;
  const kind = err.code === 'EAUTH' || beforeSession ? 'temp' : kindOf(code, reply);
  const refusedAt = code !== null ? { refusedAt: 'session' as const } : {};
  return { connected: err.connected ?? false, tls: false, outcomes: to.map((address) => ({ address, kind, code, reply, ...refusedAt })) };
}

/**
 * Runs one mail transaction (MAIL FROM, RCPT TO, DATA) on an open session, pipelined (src/delivery/pipelined-transaction.ts)
 * when the server offers it and `pipelining` is not false. Remote refusals are outcomes, not exceptions; network
 * trouble makes every recipient temporary.
 */
export async function runTransaction(
  conn: SMTPConnection,
  envelope: { from: string; to: string[] },
  raw: Buffer,
  opts: { pipelining?: boolean } = {},
): Promise<Transaction> {
  if (opts.pipelining !== false && canPipeline(conn, envelope)) return pipelinedTransaction(conn, envelope, raw);
  // SMTPConnection keeps and mutates the envelope it is given (rcptQueue is filled, then drained once MAIL FROM is
  // accepted): a private copy keeps the caller's object intact and shows how far the transaction got.
  const env = { from: envelope.from, to: [...envelope.to] } as { from: string; to: string[]; rcptQueue?: string[]; rejectedErrors?: SmtpError[] };
  try {
    const info = await guarded<SMTPConnection.SentMessageInfo>(conn, (done) => conn.send(env, raw, done));
    const rejected = (info as { rejectedErrors?: SmtpError[] }).rejectedErrors ?? [];
    const outcomes = outcomesFor(envelope.to, rejected, String(info.response ?? '250 OK'));
    const closing = rejected.some((e) => e.responseCode === 421);
    return { outcomes, next: closing ? 'discard' : rejected.length ? 'reset' : 'reuse', beforeMail: false };
  } catch (error) {
    const err = error as SmtpError;
    const closing = err.responseCode === 421 || (err.rejectedErrors ?? []).some((e) => e.responseCode === 421);
    const usable = !closing && REPLY_ERRORS.has(err.code ?? '');
    const mailAnswered = err.command === 'MAIL FROM' ? err.responseCode !== 421 : env.rcptQueue !== undefined && env.rcptQueue.length < env.to.length;
    // nodemailer puts the RCPT refusals on the error only when every recipient was refused; when the body is refused or
    // the connection lost after it, they are only on the envelope it was given: without them, a recipient refused with
    // 450 at RCPT took the body's 554 (and bounced), one refused with 550 the body's 451.
    const rejected = err.rejectedErrors ?? env.rejectedErrors ?? [];
    const outcomes = outcomesFor(envelope.to, rejected, null, err);
    // MAIL FROM answered with a refusal: every recipient took that reply.
    const atMail = err.command === 'MAIL FROM' && err.responseCode !== undefined;
    return { outcomes: atMail ? outcomes.map((o) => ({ ...o, refusedAt: 'mail' })) : outcomes, next: usable ? 'reset' : 'discard', beforeMail: !mailAnswered };
  }
}

/** Sends RSET so the session can start a fresh transaction; rejects when the session is unusable. */
export function resetSession(conn: SMTPConnection): Promise<void> {
  return guarded<void>(conn, (done) => conn.reset(done));
}

/** Ends a session: QUIT when it is healthy, otherwise just drop the socket. */
export function endSession(conn: SMTPConnection, graceful: boolean): void {
  try {
    if (graceful) conn.quit();
    else conn.close();
  } catch {
    conn.close();
  }
}

/**
 * Per-recipient outcomes: a recipient's own RCPT error wins (a 552 there is temporary: `rcptKindOf`); otherwise the
 * transaction's error (`err`), or delivery with the final DATA reply.
 */
function outcomesFor(to: string[], rejectedErrors: SmtpError[], response: string | null, err?: SmtpError): RecipientOutcome[] {
  const perRecipient = new Map<string, SmtpError>();
  for (const e of rejectedErrors) if (e.recipient) perRecipient.set(e.recipient, e);
  return to.map((address) => {
    const own = perRecipient.get(address);
    const e = own ?? err;
    if (!e) return { address, kind: 'delivered', code: Number(response?.slice(0, 3)) || 250, reply: response ?? '250 OK' };
    const code = codeOf(e);
    const reply = replyOf(e);
    return { address, kind: own ? rcptKindOf(code, reply) : kindOf(code, reply), code, reply };
  });
}

/**
 * Runs one SMTP transaction on a new connection (closed afterwards) and reports every recipient's outcome
 * as data. STARTTLS is used whenever offered. Remote refusals are results, not exceptions.
 */
export async function sendMessage(target: SmtpTarget, envelope: { from: string; to: string[] }, raw: Buffer, opts: SendOptions): Promise<SendResult> {
  let conn: SMTPConnection;
  try {
    conn = await openSession(target, opts);
  } catch (err) {
    return sessionFailure(err as SmtpError, envelope.to);
  }
  const tls = sessionTls(conn);
  const tlsFailure = sessionTlsIssue(conn);
  const tx = await runTransaction(conn, envelope, raw, opts);
  endSession(conn, tx.next !== 'discard');
  return { connected: true, tls, outcomes: tx.outcomes, ...(tlsFailure ? { tlsFailure } : {}) };
}
