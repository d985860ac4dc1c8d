/** Load generators and statistics for the benchmark: HTTP (node:http keep-alive) and SMTP (nodemailer pool). */
import { Agent, request } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import nodemailer from 'nodemailer';
import { BENCH_API_KEY, BENCH_SMTP } from './gateway-child.js';
import { closedLoop, type Stats, summarize } from './loops.js';

/** ~4 KB of plain ASCII text in 72-character lines, unique per message number. */
export function paddedText(n: number, bytes = 4096): string {
  const head = `Benchmark message ${n}. Your verification code is ${String(100000 + (n % 900000))}.\n`;
  const line = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\n'; // 73 bytes
  let text = head;
  while (text.length + line.length <= bytes) text += line;
  return `${text}${'x'.repeat(Math.max(0, bytes - text.length - 1))}\n`;
}

/** What varies between the benchmark's messages: priority and recipient domain (default `normal`, `dest.test`). */
export interface MessageKind {
  priority?: 'verification' | 'normal' | 'bulk';
  domain?: string;
}

export function messageJson(n: number, kind: MessageKind = {}): string {
  return JSON.stringify({
    from: 'Bench <noreply@example.test>',
    to: [`user${n}@${kind.domain ?? 'dest.test'}`],
    subject: `Benchmark ${n}`,
    text: paddedText(n),
    priority: kind.priority ?? 'normal',
  });
}

/** A keep-alive HTTP client for POST /v1/messages. */
export class HttpClient {
  readonly agent: Agent;
  lastError = '';
  constructor(
    private readonly port: number,
    maxSockets: number,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  /** Resolves with the status and the id of a 202, never rejects. */
  submit(body: string): Promise<{ status: number; id?: string }> {
    return new Promise((resolve) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          method: 'POST',
          path: '/v1/messages',
          agent: this.agent,
          headers: { authorization: `Bearer ${BENCH_API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            if (res.statusCode === 202) {
              let id: string | undefined;
              try {
                id = (JSON.parse(text) as { id?: string }).id;
              } catch {
                /* counted as accepted without id */
              }
              resolve({ status: 202, id });
            } else {
              this.lastError = `${res.statusCode} ${text.slice(0, 300)}`;
              resolve({ status: res.statusCode ?? 0 });
            }
          });
          res.on('error', (e) => {
            this.lastError = String(e);
            resolve({ status: 0 });
          });
        },
      );
      req.on('error', (e) => {
        this.lastError = String(e);
        resolve({ status: 0 });
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface ClosedLoopResult {
  stats: Stats;
  ids: string[];
  firstSubmitAt: number;
}

/**
 * Closed loop: `concurrency` workers each submit the next message as soon as the previous one is answered.
 * `messageNumber` offsets the numbering so every phase uses fresh recipients.
 */
export async function httpClosedLoop(
  client: HttpClient,
  total: number,
  concurrency: number,
  firstNumber: number,
  deadline: number,
  kind: MessageKind = {},
): Promise<ClosedLoopResult> {
  const bodies = Array.from({ length: total }, (_, i) => messageJson(firstNumber + i, kind));
  const latencies: number[] = [];
  const ids: string[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const firstSubmitAt = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total && Date.now() < deadline) {
        const body = bodies[next++];
        const t0 = performance.now();
        const res = await client.submit(body);
        if (res.status === 202) {
          latencies.push(performance.now() - t0);
          if (res.id) ids.push(res.id);
        } else errors++;
      }
    }),
  );
  return { stats: summarize(latencies, errors, (performance.now() - started) / 1000), ids, firstSubmitAt };
}

/**
 * Open loop at a fixed rate: request i is due at start + i/rate, whatever the answers do. Latency is taken
 * from the moment a request was due (so a stalled client or server cannot hide queueing: no coordinated omission).
 */
export async function httpPaced(client: HttpClient, rate: number, seconds: number, firstNumber: number): Promise<Stats & { maxLagMs: number }> {
  const total = Math.round(rate * seconds);
  const bodies = Array.from({ length: total }, (_, i) => messageJson(firstNumber + i));
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  let errors = 0;
  let maxLag = 0;
  const start = performance.now() + 20;
  let i = 0;
  while (i < total) {
    const now = performance.now();
    while (i < total && start + (i * 1000) / rate <= now) {
      const due = start + (i * 1000) / rate;
      maxLag = Math.max(maxLag, now - due);
      const body = bodies[i++];
      pending.push(
        client.submit(body).then((res) => {
          if (res.status === 202) latencies.push(performance.now() - due);
          else errors++;
        }),
      );
    }
    const nextDue = start + (i * 1000) / rate;
    await new Promise((r) => setTimeout(r, Math.max(0, nextDue - performance.now())));
  }
  await Promise.all(pending);
  return { ...summarize(latencies, errors, (performance.now() - start) / 1000), maxLagMs: maxLag };
}

/**
 * `sessions` pooled SMTP connections (AUTH PLAIN, STARTTLS) each sending its next message when the last was
 * answered. `noDelay` sets TCP_NODELAY on the client's sockets (nodemailer leaves Nagle's algorithm on).
 * `afterWarmUp` runs once every session is open (one untimed message each), just before the clock starts.
 */
export async function smtpClosedLoop(
  port: number,
  total: number,
  sessions: number,
  firstNumber: number,
  deadline: number,
  noDelay = false,
  /** Awaited once the sessions are open, before the clock starts (e.g. to wait for the warm-up mail at the sink). */
  onStarted?: () => Promise<void>,
): Promise<Stats & { lastError: string }> {
  const getSocket = (_opts: unknown, callback: (err: Error | null, socketOptions?: { connection: Socket }) => void): void => {
    const socket = netConnect({ host: '127.0.0.1', port, noDelay: true });
    socket.once('error', (err) => callback(err));
    socket.once('connect', () => callback(null, { connection: socket }));
  };
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    pool: true,
    maxConnections: sessions,
    maxMessages: Infinity,
    auth: BENCH_SMTP,
    tls: { rejectUnauthorized: false },
    ...(noDelay ? { getSocket } : {}),
  } as Parameters<typeof nodemailer.createTransport>[0]);
  // Open the sessions before the clock starts: connection set-up is not what this phase measures.
  const warm = Array.from({ length: sessions }, (_, k) =>
    transport.sendMail({ from: 'noreply@example.test', to: `warm${k}@dest.test`, subject: 'warm-up', text: paddedText(k) }).catch(() => undefined),
  );
  await Promise.all(warm);
  await onStarted?.();
  const run = await closedLoop(sessions, total, deadline, (i) =>
    transport.sendMail({
      from: 'Bench <noreply@example.test>',
      to: `user${firstNumber + i}@dest.test`,
      subject: `Benchmark ${firstNumber + i}`,
      text: paddedText(firstNumber + i),
    }),
  );
  transport.close();
  return run;
}
