/**
 * A scriptable SMTP receiver (a recipient's MX) built on smtp-server, bound to
 * 127.0.0.1 on an ephemeral port by default.
 *
 * - STARTTLS is offered by default with a self-signed certificate (tls.ts).
 * - AUTH is disabled, reverse DNS of the client is off, logging is off.
 * - Enhanced status codes are hidden by default, so a scripted reply line is
 *   exactly `<code> <message>` — write the enhanced code into the message
 *   yourself, e.g. `{ code: 451, message: '4.7.1 try later' }` → `451 4.7.1 try later`.
 * - Replies are decided per stage by `script` (first) and then `rules`;
 *   a reply with code < 400 (or no reply) accepts. At DATA, a 2xx reply's
 *   message becomes the 250 text (e.g. '2.0.0 queued as X').
 * - Only messages accepted at DATA end up in `messages`; every scripted or
 *   default decision is logged in `events`.
 * - Timing: smtp-server holds the 220 greeting for a fixed 100 ms (early-talker
 *   detection, not configurable), so every SMTP connection costs ≥100 ms.
 */
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { selfSignedCert, type CertPair } from './tls.js';

/** An SMTP reply to send instead of the default acceptance. */
export interface Reply {
  code: number;
  message: string;
}

/** SMTP stage at which a script is consulted. */
export type Stage = 'connect' | 'mail' | 'rcpt' | 'data';

/** What a script sees when deciding a reply. */
export interface ScriptContext {
  stage: Stage;
  /** MAIL FROM address (stage mail) or the candidate RCPT TO address (stage rcpt). */
  address?: string;
  /**
   * 1-based attempt number over the receiver's lifetime: per lower-cased address
   * for mail/rcpt, per DATA command for data, per connection for connect.
   */
  attempt: number;
  mailFrom: string | null;
  /** Recipients already accepted in the current transaction. */
  rcptTo: string[];
  /** Full message (stage data only). */
  raw?: Buffer;
  remoteAddress: string;
  /** HELO/EHLO name ('' before the client sent one). */
  clientHostname: string;
  secure: boolean;
}

/** Per-stage reply hook; return undefined to fall through to `rules`/acceptance. */
export type Script = (ctx: ScriptContext) => Reply | undefined | Promise<Reply | undefined>;

/** RCPT TO replies per recipient: a fixed reply, or one per attempt (then accept). */
export type Rules = Record<string, Reply | Reply[]>;

/** Options for {@link startReceiver}. */
export interface ReceiverOptions {
  port?: number;
  host?: string;
  /** Offer STARTTLS (default true). */
  tls?: boolean;
  /** Banner name and certificate CN (default 'mx.example.test'). */
  hostname?: string;
  script?: Script;
  rules?: Rules;
  /** Advertised SIZE limit in bytes (default 50 MiB). */
  size?: number;
  /** Let smtp-server add enhanced status codes itself (default false). */
  enhancedStatusCodes?: boolean;
  /** Certificate for STARTTLS instead of a self-signed one, e.g. `caSignedCert(name)` from tls.ts. */
  cert?: CertPair;
  /**
   * Offer AUTH PLAIN/LOGIN and accept these credentials. AUTH is accepted in clear too (allowInsecureAuth), so a
   * client that sends credentials without TLS shows up in `auths`.
   */
  auth?: { user: string; pass: string };
}

/** A message accepted at end of DATA. */
export interface ReceivedMessage {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  remoteAddress: string;
  /** HELO/EHLO name the client announced. */
  clientHostname: string;
  /** True when the transaction ran over TLS (after STARTTLS). */
  secure: boolean;
  receivedAt: Date;
}

/** One reply decision taken by the receiver. */
export interface ReceiverEvent {
  stage: Stage;
  address?: string;
  attempt: number;
  code: number;
  message: string;
}

/** Handle to a running receiver. */
export interface Receiver {
  host: string;
  port: number;
  messages: ReceivedMessage[];
  events: ReceiverEvent[];
  /** Number of SMTP connections accepted so far. */
  readonly connections: number;
  /** Every AUTH the client sent (with the `auth` option): user name and whether the session was on TLS. */
  auths: Array<{ user: string; secure: boolean }>;
  /** How many times `address` was offered at RCPT TO. */
  attempts(address: string): number;
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  close(): Promise<void>;
}

const smtpError = (reply: Reply): Error => Object.assign(new Error(reply.message), { responseCode: reply.code });

const describe = (m: ReceivedMessage): string => `<${m.mailFrom}> -> [${m.rcptTo.join(', ')}] ${m.raw.length}B secure=${m.secure}`;

/**
 * Start a scriptable SMTP receiver.
 * @param opts port/host, STARTTLS, per-stage `script` and per-recipient `rules`.
 * @returns the running receiver; call `close()` in afterEach/afterAll.
 */
export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const host = opts.host ?? '127.0.0.1';
  const hostname = opts.hostname ?? 'mx.example.test';
  const tls = opts.tls ?? true;
  const rules = new Map(Object.entries(opts.rules ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  const messages: ReceivedMessage[] = [];
  const events: ReceiverEvent[] = [];
  const counters = new Map<string, number>();
  const waiters = new Set<{ count: number; resolve: (m: ReceivedMessage[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let connections = 0;
  const auths: Array<{ user: string; secure: boolean }> = [];

  const bump = (key: string): number => {
    const n = (counters.get(key) ?? 0) + 1;
    counters.set(key, n);
    return n;
  };

  const decide = async (ctx: ScriptContext): Promise<Reply | undefined> => {
    let reply = await opts.script?.(ctx);
    if (!reply && ctx.stage === 'rcpt' && ctx.address) {
      const rule = rules.get(ctx.address.toLowerCase());
      reply = Array.isArray(rule) ? rule[ctx.attempt - 1] : rule;
    }
    events.push({ stage: ctx.stage, address: ctx.address, attempt: ctx.attempt, code: reply?.code ?? 250, message: reply?.message ?? 'default' });
    return reply;
  };

  const context = (session: SMTPServerSession, stage: Stage, attempt: number, address?: string): ScriptContext => ({
    stage,
    address,
    attempt,
    mailFrom: session.envelope?.mailFrom ? session.envelope.mailFrom.address : null,
    rcptTo: (session.envelope?.rcptTo ?? []).map((r) => r.address),
    remoteAddress: session.remoteAddress,
    clientHostname: session.hostNameAppearsAs || '',
    secure: session.secure,
  });

  /** Run the hook and translate its reply into an smtp-server callback. */
  const respond = (ctx: ScriptContext, callback: (err?: Error | null) => void): void => {
    decide(ctx).then(
      (reply) => callback(reply && reply.code >= 400 ? smtpError(reply) : null),
      (err: unknown) => callback(smtpError({ code: 451, message: `4.3.0 receiver script threw: ${String(err)}` })),
    );
  };

  const settleWaiters = (): void => {
    for (const w of waiters) {
      if (messages.length >= w.count) {
        clearTimeout(w.timer);
        waiters.delete(w);
        w.resolve(messages.slice());
      }
    }
  };

  const cert = tls ? (opts.cert ?? (await selfSignedCert(hostname))) : undefined;
  const auth = opts.auth;
  const disabledCommands = [...(auth ? [] : ['AUTH']), ...(tls ? [] : ['STARTTLS'])];
  const server = new SMTPServer({
    name: hostname,
    key: cert?.key,
    cert: cert?.cert,
    secure: false,
    authOptional: true,
    disabledCommands,
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true,
    onAuth(a, session, callback) {
      auths.push({ user: a.username ?? '', secure: session.secure });
      if (auth && a.username === auth.user && a.password === auth.pass) return callback(null, { user: a.username });
      callback(smtpError({ code: 535, message: '5.7.8 authentication failed' }));
    },
    hideSTARTTLS: !tls,
    hideENHANCEDSTATUSCODES: !opts.enhancedStatusCodes,
    disableReverseLookup: true,
    size: opts.size ?? 50 * 1024 * 1024,
    logger: false,
    closeTimeout: 1000,
    onConnect(session, callback) {
      connections++;
      respond(context(session, 'connect', connections), callback);
    },
    onMailFrom(address, session, callback) {
      respond(context(session, 'mail', bump(`mail:${address.address.toLowerCase()}`), address.address), callback);
    },
    onRcptTo(address, session, callback) {
      respond(context(session, 'rcpt', bump(`rcpt:${address.address.toLowerCase()}`), address.address), callback);
    },
    onData(stream: SMTPServerDataStream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (err: Error) => callback(err));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks);
        if (stream.sizeExceeded) return callback(smtpError({ code: 552, message: '5.3.4 message too big' }));
        const ctx = { ...context(session, 'data', bump('data')), raw };
        decide(ctx).then(
          (reply) => {
            if (reply && reply.code >= 400) return callback(smtpError(reply));
            messages.push({
              mailFrom: ctx.mailFrom ?? '',
              rcptTo: ctx.rcptTo,
              raw,
              remoteAddress: session.remoteAddress,
              clientHostname: ctx.clientHostname,
              secure: session.secure,
              receivedAt: new Date(),
            });
            settleWaiters();
            callback(null, reply?.message ?? 'OK: message accepted');
          },
          (err: unknown) => callback(smtpError({ code: 451, message: `4.3.0 receiver script threw: ${String(err)}` })),
        );
      });
    },
  });
  server.on('error', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    host,
    port,
    messages,
    events,
    get connections() {
      return connections;
    },
    auths,
    attempts: (address) => counters.get(`rcpt:${address.toLowerCase()}`) ?? 0,
    waitFor(count, timeoutMs = 2000) {
      if (messages.length >= count) return Promise.resolve(messages.slice());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const got = messages.map((m, i) => `  #${i + 1} ${describe(m)}`).join('\n') || '  (none)';
          const last = events.slice(-10).map((e) => `  ${e.stage} ${e.address ?? ''} #${e.attempt} -> ${e.code} ${e.message}`);
          reject(
            new Error(
              `receiver.waitFor(${count}) timed out after ${timeoutMs}ms: ${messages.length} message(s) received, ` +
                `${connections} connection(s)\n${got}\nlast replies:\n${last.join('\n') || '  (none)'}`,
            ),
          );
        }, timeoutMs);
        const waiter = { count, resolve, reject, timer };
        waiters.add(waiter);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const w of waiters) {
          clearTimeout(w.timer);
          w.reject(new Error(`receiver closed while waiting for ${w.count} message(s); got ${messages.length}`));
        }
        waiters.clear();
        server.close(() => resolve());
      }),
  };
}
