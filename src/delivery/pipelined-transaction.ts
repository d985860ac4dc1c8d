/**
 * One mail transaction with SMTP command pipelining (RFC 2920) on a session opened by nodemailer's
 * SMTPConnection: MAIL FROM, every RCPT TO and DATA leave in one write and their replies are matched in
 * order, then the body follows the 354. A message costs two round trips to the receiver instead of four
 * (MAIL FROM, the RCPT TOs, DATA, the body), which is most of the time a message spends on a warm connection
 * to a distant MX (bench/pipelining.ts: 86 → 44 ms per message with a 20 ms round trip), and the gateway makes
 * two fewer writes, reads and event-loop turns per message.
 *
 * nodemailer's client pipelines only the RCPT commands after MAIL FROM's reply, so this drives its session
 * through four internal members (the reply queue, the command writer, the body stream and the server's
 * extensions). {@link canPipeline} checks that they exist and says no otherwise, and the caller then runs
 * nodemailer's own `send`: a nodemailer that changed them loses the saving, never the message.
 */
import type SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { kindOf, rcptKindOf, replyCode, type RecipientOutcome, type SmtpError, type Transaction } from './smtp-types.js';

/** The members of SMTPConnection this module uses (nodemailer 7, lib/smtp-connection/index.js). */
interface SessionInternals {
  /** What the server's EHLO offered (upper case names). */
  _supportedExtensions: string[];
  /** Handlers of the replies still expected, in the order the commands were sent; each is called with one reply. */
  _responseActions: Array<(reply: string) => void>;
  /** Writes one command line (CRLF appended). */
  _sendCommand(line: string): void;
  /** The body stream after a 354: dot-stuffs and ends with CRLF.CRLF; calls back with the final reply (or an EMESSAGE error). */
  _createSendStream(callback: (err: SmtpError | null, reply?: string) => void): NodeJS.WritableStream;
  _destroyed: boolean;
  options: { lmtp?: boolean };
}

/** Addresses that go into a command line as they are: printable ASCII without the delimiters of the path. */
const PLAIN_ADDRESS = /^[\x21-\x3b\x3d\x3f-\x7e]+$/;

function internals(conn: SMTPConnection): Partial<SessionInternals> {
  return conn as unknown as Partial<SessionInternals>;
}

/**
 * Whether {@link pipelinedTransaction} can run this envelope on this session: the server offered PIPELINING,
 * the session is SMTP (not LMTP) and still open, the addresses are plain ASCII (SMTPUTF8 and invalid addresses
 * are left to nodemailer, which words their errors), and nodemailer still has the members this module drives.
 */
export function canPipeline(conn: SMTPConnection, envelope: { from: string; to: readonly string[] }): boolean {
  const c = internals(conn);
  return (
    Array.isArray(c._supportedExtensions) &&
    c._supportedExtensions.includes('PIPELINING') &&
    Array.isArray(c._responseActions) &&
    c._responseActions.length === 0 &&
    typeof c._sendCommand === 'function' &&
    typeof c._createSendStream === 'function' &&
    c._destroyed === false &&
    !c.options?.lmtp &&
    envelope.to.length > 0 &&
    (envelope.from === '' || PLAIN_ADDRESS.test(envelope.from)) &&
    envelope.to.every((a) => PLAIN_ADDRESS.test(a))
  );
}

const codeOf = (reply: string | null): number | null => (reply === null ? null : replyCode(reply));
const positive = (reply: string | null): boolean => reply !== null && reply.startsWith('2');
const refused = (address: string, reply: string): RecipientOutcome => {
  const code = codeOf(reply);
  return { address, kind: kindOf(code, reply), code, reply: reply.trim() };
};
/** A recipient refused at RCPT TO (a 552 there is temporary: smtp-types.ts `rcptKindOf`). */
const refusedAtRcpt = (address: string, reply: string): RecipientOutcome => ({ ...refused(address, reply), kind: rcptKindOf(codeOf(reply), reply) });

/** The replies collected so far; `final` is the reply to the body (or to the lone dot), when one was sent. */
interface Replies {
  mail: string | null;
  rcpt: string[];
  data: string | null;
  final: string | null;
  /** True when the body was sent (DATA went ahead with at least one recipient accepted). */
  bodySent: boolean;
}

/**
 * Runs one transaction pipelined (call only when {@link canPipeline} says so). The outcomes, `next` and
 * `beforeMail` mean what runTransaction's (smtp-client.ts) do; a recipient refused at RCPT keeps its own reply even when
 * the transaction fails later. When every recipient was refused but the server still answered DATA with 354,
 * the client sends the lone terminating dot, as RFC 2920 section 3.1 asks, and reports the refusals.
 */
export async function pipelinedTransaction(conn: SMTPConnection, envelope: { from: string; to: readonly string[] }, raw: Buffer): Promise<Transaction> {
  const c = conn as unknown as SessionInternals;
  const to = envelope.to;
  const r: Replies = { mail: null, rcpt: [], data: null, final: null, bodySent: false };
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => finish(err);
      const onEnd = (): void => finish(Object.assign(new Error('Connection closed'), { code: 'ECONNECTION' }));
      let settled = false;
      function finish(err?: Error): void {
        if (settled) return;
        settled = true;
        conn.removeListener('error', onError);
        conn.removeListener('end', onEnd);
        if (err) reject(err);
        else resolve();
      }
      conn.once('error', onError);
      conn.once('end', onEnd);
      c._responseActions.push((reply) => {
        r.mail = reply;
      });
      for (let i = 0; i < to.length; i++) c._responseActions.push((reply) => void r.rcpt.push(reply));
      c._responseActions.push((reply) => {
        r.data = reply;
        if (!/^[23]/.test(reply)) return finish(); // DATA refused: nothing more is expected
        if (positive(r.mail) && r.rcpt.some(positive)) {
          r.bodySent = true;
          const stream = c._createSendStream((err, final) => {
            if (err && err.code !== 'EMESSAGE') return finish(err);
            r.final = err ? (err.response ?? err.message) : (final ?? '');
            finish();
          });
          stream.end(raw);
          return;
        }
        // Accepted DATA with nobody to deliver to: end the (empty) message at once and take its reply.
        c._responseActions.push((reply2) => {
          r.final = reply2;
          finish();
        });
        c._sendCommand('.');
      });
      c._sendCommand(`MAIL FROM:<${envelope.from}>`);
      for (const address of to) c._sendCommand(`RCPT TO:<${address}>`);
      c._sendCommand('DATA');
    });
  } catch (error) {
    return broken(error as SmtpError, to, r);
  }
  return completed(to, r);
}

/** Every reply arrived: outcomes per recipient and what the session is good for. */
function completed(to: readonly string[], r: Replies): Transaction {
  const replies = [r.mail, ...r.rcpt, r.data, r.final];
  const closing = replies.some((x) => codeOf(x) === 421);
  if (!positive(r.mail)) {
    const mail = r.mail ?? '';
    return { outcomes: to.map((a) => ({ ...refused(a, mail), refusedAt: 'mail' })), next: closing ? 'discard' : 'reset', beforeMail: codeOf(mail) === 421 };
  }
  const bodyOk = r.bodySent && positive(r.final);
  const failure = r.bodySent ? r.final : r.data;
  const outcomes = to.map((address, i): RecipientOutcome => {
    const rcpt = r.rcpt[i] ?? '';
    if (!positive(rcpt)) return refusedAtRcpt(address, rcpt);
    if (bodyOk) return { address, kind: 'delivered', code: codeOf(r.final) ?? 250, reply: (r.final ?? '250 OK').trim() };
    return refused(address, failure ?? '');
  });
  const clean = outcomes.every((o) => o.kind === 'delivered');
  return { outcomes, next: closing ? 'discard' : clean ? 'reuse' : 'reset', beforeMail: false };
}

/** The session failed (closed, timed out, broken) before every reply arrived: whatever was not refused is temporary. */
function broken(err: SmtpError, to: readonly string[], r: Replies): Transaction {
  const mailCode = codeOf(r.mail);
  // Nothing was committed when MAIL FROM got no answer, or 421 (the server closing, e.g. an idle connection it had dropped).
  const beforeMail = r.mail === null || mailCode === 421;
  const cause = mailCode === 421 && r.mail ? r.mail.trim() : (err.response ?? err.message).trim();
  const code = mailCode === 421 ? 421 : (err.responseCode ?? null);
  const outcomes = to.map((address, i): RecipientOutcome => {
    const rcpt = positive(r.mail) ? r.rcpt[i] : undefined;
    if (rcpt !== undefined && !positive(rcpt)) return refusedAtRcpt(address, rcpt);
    return { address, kind: 'temp', code, reply: cause };
  });
  return { outcomes, next: 'discard', beforeMail };
}
