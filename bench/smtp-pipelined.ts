/**
 * A lean SMTP submission client for the benchmark's load: STARTTLS, AUTH PLAIN, then per message one write of
 * MAIL FROM, RCPT TO and DATA together (PIPELINING, RFC 2920), the 354 awaited, the prepared message and its
 * final dot, and the 250 awaited. Messages are built once as raw RFC 5322 text (no MIME composer per message).
 *
 * Why: nodemailer (bench/load.ts `smtpClosedLoop`) composes every message and waits for each of its four
 * command replies; on two cores the load generator shares the CPU with what it measures, so what the client
 * spends per message is taken from the gateway. This one sends the same 4 KB text with two round trips and
 * little work. BENCH_SMTP_CLIENT picks the client of the phases that call `smtpLoad`.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { BENCH_SMTP } from './gateway-child.js';
import { paddedText, smtpClosedLoop } from './load.js';
import { closedLoop, pacedPool, percentile, type Stats } from './loops.js';

interface Reply {
  code: number;
  text: string;
}

/** Splits a socket's bytes into SMTP replies (multi-line replies joined) and hands them out in order. */
class ReplyReader {
  private buf = '';
  private lines: string[] = [];
  private readonly ready: Reply[] = [];
  private readonly waiting: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  private failure: Error | undefined;

  readonly onData = (chunk: Buffer): void => {
    this.buf += chunk.toString('latin1');
    let eol = this.buf.indexOf('\r\n');
    while (eol >= 0) {
      const line = this.buf.slice(0, eol);
      this.buf = this.buf.slice(eol + 2);
      this.lines.push(line);
      if (line.charAt(3) !== '-') {
        const reply = { code: Number(line.slice(0, 3)), text: this.lines.join('\n') };
        this.lines = [];
        const w = this.waiting.shift();
        if (w) w.resolve(reply);
        else this.ready.push(reply);
      }
      eol = this.buf.indexOf('\r\n');
    }
  };

  fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  next(): Promise<Reply> {
    const r = this.ready.shift();
    if (r) return Promise.resolve(r);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }
}

function expect(reply: Reply, code: number, what: string): void {
  if (reply.code !== code) throw new Error(`${what}: ${reply.text}`);
}

/** One authenticated session over STARTTLS. */
export class PipelinedSession {
  /** Per message accepted: ms from writing its final dot to the server's 250 (the server's accept, as the client sees it). */
  readonly dataEndMs: number[] = [];

  private constructor(
    private readonly socket: TLSSocket,
    private readonly reader: ReplyReader,
    /** The server advertised PIPELINING; otherwise the commands go one by one. */
    readonly pipelining: boolean,
  ) {}

  /** Connects, upgrades with STARTTLS (any certificate) and authenticates with `auth`. */
  static async open(port: number, auth: { user: string; pass: string } = BENCH_SMTP): Promise<PipelinedSession> {
    const plain: Socket = netConnect({ host: '127.0.0.1', port, noDelay: true });
    let socket: TLSSocket | undefined;
    try {
      const first = new ReplyReader();
      plain.on('data', first.onData);
      plain.once('error', (e) => first.fail(e));
      plain.once('close', () => first.fail(new Error('connection closed')));
      expect(await first.next(), 220, 'greeting');
      plain.write('EHLO bench.local\r\n');
      expect(await first.next(), 250, 'EHLO');
      plain.write('STARTTLS\r\n');
      expect(await first.next(), 220, 'STARTTLS');
      plain.off('data', first.onData);
      const tls = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' });
      socket = tls;
      const reader = new ReplyReader();
      tls.on('data', reader.onData);
      tls.on('error', (e) => reader.fail(e));
      tls.on('close', () => reader.fail(new Error('connection closed')));
      await new Promise<void>((resolve, reject) => {
        tls.once('secureConnect', resolve);
        tls.once('error', reject);
      });
      tls.write('EHLO bench.local\r\n');
      const ehlo = await reader.next();
      expect(ehlo, 250, 'EHLO after STARTTLS');
      tls.write(`AUTH PLAIN ${Buffer.from(`\0${auth.user}\0${auth.pass}`).toString('base64')}\r\n`);
      expect(await reader.next(), 235, 'AUTH');
      return new PipelinedSession(tls, reader, /\bPIPELINING\b/i.test(ehlo.text));
    } catch (err) {
      // A session that could not be opened leaves nothing open behind it.
      socket?.destroy();
      plain.destroy();
      throw err;
    }
  }

  /**
   * Sends one message (`raw`: CRLF lines, dot-stuffed, ending in CRLF) and resolves with the server's final reply
   * (Kurir's names the message: `250 2.0.0 Ok: queued as <id>`); rejects with the server's reply.
   */
  async send(from: string, to: string, raw: Buffer): Promise<string> {
    const commands = [`MAIL FROM:<${from}>\r\n`, `RCPT TO:<${to}>\r\n`, 'DATA\r\n'];
    const wanted = [250, 250, 354];
    if (this.pipelining) this.socket.write(commands.join(''));
    // Pipelined, every reply is read even after a refusal, so the next message starts in step.
    let refused: Error | undefined;
    for (let i = 0; i < 3; i++) {
      if (!this.pipelining) this.socket.write(commands[i]);
      const reply = await this.reader.next();
      if (reply.code !== wanted[i]) refused ??= new Error(`${commands[i].trim()}: ${reply.text}`);
      if (refused && !this.pipelining) break;
    }
    if (refused) {
      // An accepted MAIL FROM leaves the transaction open after a refused RCPT or DATA: close it.
      this.socket.write('RSET\r\n');
      await this.reader.next();
      throw refused;
    }
    const dotAt = performance.now();
    this.socket.write(raw);
    this.socket.write('.\r\n');
    const done = await this.reader.next();
    expect(done, 250, 'end of DATA');
    this.dataEndMs.push(performance.now() - dotAt);
    return done.text;
  }

  close(): void {
    this.socket.end('QUIT\r\n');
  }
}

/** The benchmark's message `n` as raw RFC 5322 text: the same 4 KB body as the HTTP and nodemailer loads. */
export function rawMessage(n: number, to: string): Buffer {
  const body = paddedText(n).replace(/\n/g, '\r\n').replace(/^\./gm, '..');
  const head = [
    'From: Bench <noreply@example.test>',
    `To: ${to}`,
    `Subject: Benchmark ${n}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <bench-${n}-${process.pid}@example.test>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
  ].join('\r\n');
  return Buffer.from(`${head}\r\n\r\n${body}`, 'latin1');
}

type Auth = { user: string; pass: string };
/** Sends message i of a run on session w; resolves with the server's final reply. */
type SendMessage = (i: number, w: number) => Promise<string>;

/** The final dot → 250 times of a run's accepted messages (ms): the server's accept as the client sees it. */
export interface DataEndStats {
  dataEndP50: number;
  dataEndP99: number;
}

/**
 * Opens `sessions` sessions, sends one untimed message on each (connection set-up is not what is measured),
 * prepares messages `firstNumber`.. as raw text, awaits `onStarted` and hands `drive` a sender; closes the
 * sessions after it. Adds the timed messages' final dot → 250 percentiles to what `drive` answers.
 */
async function pipelinedRun<R>(
  o: { port: number; total: number; sessions: number; firstNumber: number; auth: Auth; onStarted?: () => Promise<void> },
  drive: (send: SendMessage) => Promise<R>,
): Promise<R & DataEndStats> {
  const open = await Promise.all(Array.from({ length: o.sessions }, () => PipelinedSession.open(o.port, o.auth)));
  try {
    await Promise.all(open.map((s, k) => s.send('noreply@example.test', `warm${k}@dest.test`, rawMessage(k, `warm${k}@dest.test`)).catch(() => undefined)));
    for (const s of open) s.dataEndMs.length = 0;
    const to = (i: number): string => `user${o.firstNumber + i}@dest.test`;
    const raws = Array.from({ length: o.total }, (_, i) => rawMessage(o.firstNumber + i, to(i)));
    await o.onStarted?.();
    const r = await drive((i, w) => open[w].send('noreply@example.test', to(i), raws[i]));
    const ends = open.flatMap((s) => s.dataEndMs).sort((a, b) => a - b);
    return { ...r, dataEndP50: percentile(ends, 50), dataEndP99: percentile(ends, 99) };
  } finally {
    for (const s of open) s.close();
  }
}

/**
 * As `smtpClosedLoop`, with the pipelining client: `sessions` sessions opened and each used for one untimed
 * message before `onStarted` and the clock, then each sends its next message as soon as the last is answered.
 */
export async function smtpPipelinedLoop(
  port: number,
  total: number,
  sessions: number,
  firstNumber: number,
  deadline: number,
  onStarted?: () => Promise<void>,
  auth: Auth = BENCH_SMTP,
): Promise<Stats & { lastError: string } & Partial<DataEndStats>> {
  return pipelinedRun({ port, total, sessions, firstNumber, auth, onStarted }, (send) => closedLoop(sessions, total, deadline, send));
}

/**
 * The pipelining client at a fixed offered rate (open loop, `pacedPool`): `total` messages due `rate` per second
 * over `sessions` sessions opened and warmed as in the closed loop. Accept latency counts from each message's due
 * time, so what a booking system sending `rate` messages a second would wait, queueing for a free session included.
 * `ids[i]`: the id the server's final reply named for message i (Kurir's `queued as <id>`), when it named one.
 */
export async function smtpPipelinedPaced(o: {
  port: number;
  rate: number;
  total: number;
  sessions: number;
  firstNumber: number;
  deadline: number;
  onStarted?: () => Promise<void>;
  auth?: Auth;
}): Promise<Stats & DataEndStats & { lastError: string; maxLagMs: number; dueAt(i: number): number; ids: Array<string | undefined> }> {
  const { rate, total, sessions, deadline } = o;
  const ids: Array<string | undefined> = new Array(total);
  const run = await pipelinedRun({ ...o, auth: o.auth ?? BENCH_SMTP }, (send) =>
    pacedPool(sessions, rate, total, deadline, async (i, w) => {
      ids[i] = /queued as (\S+)/.exec(await send(i, w))?.[1];
    }),
  );
  return { ...run, ids };
}

/**
 * Which SMTP load client phase 8 and the 50-session phase use: BENCH_SMTP_CLIENT `pipelining` (the default since
 * 30 Nov 2026) or `nodemailer` (the client of every earlier figure). Phases 2 and 2b always use nodemailer's, 2c this one.
 */
export const SMTP_CLIENT: 'nodemailer' | 'pipelining' = process.env.BENCH_SMTP_CLIENT === 'nodemailer' ? 'nodemailer' : 'pipelining';

/** The SMTP closed loop of the selected client (`SMTP_CLIENT`); nodemailer's with TCP_NODELAY on. */
export const smtpLoad: typeof smtpPipelinedLoop = (port, total, sessions, firstNumber, deadline, onStarted) =>
  SMTP_CLIENT === 'pipelining'
    ? smtpPipelinedLoop(port, total, sessions, firstNumber, deadline, onStarted)
    : smtpClosedLoop(port, total, sessions, firstNumber, deadline, true, onStarted);
