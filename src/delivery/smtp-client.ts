import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';

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
}

export interface SmtpTimeouts {
  connectMs: number;
  greetingMs: number;
  socketMs: number;
}

/** One recipient's result of one attempt. `kind` temp covers 4xx and network trouble; perm is 5xx. */
export interface RecipientOutcome {
  address: string;
  kind: 'delivered' | 'temp' | 'perm';
  code: number | null;
  reply: string;
}

export interface SendResult {
  /** False when no SMTP session was established: the caller tries the next host. */
  connected: boolean;
  tls: boolean;
  outcomes: RecipientOutcome[];
}

type SmtpError = Error & { code?: string; responseCode?: number; response?: string; command?: string; rejectedErrors?: SmtpError[]; recipient?: string };

function kindOf(code: number | null): 'temp' | 'perm' {
  return code !== null && code >= 500 && code < 600 ? 'perm' : 'temp';
}

function replyOf(err: SmtpError): string {
  return (err.response ?? err.message).trim();
}

/**
 * Runs one SMTP transaction with nodemailer's SMTPConnection and reports every recipient's outcome as
 * data. STARTTLS is used whenever offered. Remote refusals are results, not exceptions.
 */
export async function sendMessage(
  target: SmtpTarget,
  envelope: { from: string; to: string[] },
  raw: Buffer,
  opts: { ehloName: string; timeouts: SmtpTimeouts },
): Promise<SendResult> {
  const conn = new SMTPConnection({
    host: target.host,
    port: target.port,
    secure: target.secure ?? false,
    requireTLS: target.requireTls ?? false,
    opportunisticTLS: !target.requireTls,
    name: opts.ehloName,
    connectionTimeout: opts.timeouts.connectMs,
    greetingTimeout: opts.timeouts.greetingMs,
    socketTimeout: opts.timeouts.socketMs,
    tls: { rejectUnauthorized: target.verifyTls ?? false, servername: target.servername, minVersion: 'TLSv1.2' },
    logger: false,
  } as ConstructorParameters<typeof SMTPConnection>[0]);
  let sessionOpen = false;
  conn.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      conn.once('error', reject);
      conn.connect(() => {
        conn.removeListener('error', reject);
        resolve();
      });
    });
    sessionOpen = true;
    if (target.auth) {
      await new Promise<void>((resolve, reject) => conn.login({ user: target.auth!.user, pass: target.auth!.pass }, (err) => (err ? reject(err) : resolve())));
    }
    const tls = Boolean((conn as unknown as { secure: boolean }).secure);
    const outcomes = await new Promise<RecipientOutcome[]>((resolve) => {
      conn.send(envelope, raw, (err, info) => {
        if (!err) {
          const rejected = new Map<string, SmtpError>();
          for (const e of (info as unknown as { rejectedErrors?: SmtpError[] }).rejectedErrors ?? []) if (e.recipient) rejected.set(e.recipient, e);
          const response = String(info.response ?? '250 OK');
          resolve(
            envelope.to.map((address) => {
              const e = rejected.get(address);
              if (!e) return { address, kind: 'delivered', code: Number(response.slice(0, 3)) || 250, reply: response };
              const code = e.responseCode ?? null;
              return { address, kind: kindOf(code), code, reply: replyOf(e) };
            }),
          );
          return;
        }
        resolve(outcomesFromError(err as SmtpError, envelope.to));
      });
    });
    return { connected: true, tls, outcomes };
  } catch (error) {
    const err = error as SmtpError;
    const code = err.responseCode ?? null;
    const reply = replyOf(err);
    // Our own smarthost credentials being refused is our fault, never the recipient's: always temporary.
    const kind = err.code === 'EAUTH' ? 'temp' : kindOf(code);
    return { connected: sessionOpen, tls: false, outcomes: envelope.to.map((address) => ({ address, kind, code, reply })) };
  } finally {
    try {
      if (sessionOpen) conn.quit();
      else conn.close();
    } catch {
      conn.close();
    }
  }
}

function outcomesFromError(err: SmtpError, to: string[]): RecipientOutcome[] {
  const perRecipient = new Map<string, SmtpError>();
  for (const e of err.rejectedErrors ?? []) if (e.recipient) perRecipient.set(e.recipient, e);
  return to.map((address) => {
    const e = perRecipient.get(address) ?? err;
    const code = e.responseCode ?? null;
    return { address, kind: kindOf(code), code, reply: replyOf(e) };
  });
}
