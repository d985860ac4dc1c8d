/**
 * Redis MONITOR on a plain socket, for tests that check which commands reach Redis and in what order.
 *
 * Not ioredis' `monitor()`: it switches to monitoring only in a promise callback after MONITOR's +OK, so a
 * monitored command that arrives in the same read as the +OK is taken for a reply to nothing ("Command queue
 * state error"), which a busy shared Redis makes likely (seen in placement-oauth2.test.ts, 2 Dec 2026).
 */
import { connect, type Socket } from 'node:net';
import { until } from './until.js';

/** One command as Redis saw it: its arguments (command name first) and where it came from (`lua` for a script's own). */
export interface MonitoredCommand {
  args: string[];
  source: string;
}

export interface RedisMonitor {
  /** Every command seen since the monitor started, in Redis' order. */
  readonly commands: MonitoredCommand[];
  /**
   * Resolves once every command Redis ran before this call is in `commands`: sends a unique ECHO on a connection of
   * its own and waits for it to come through (MONITOR reports commands in the order Redis runs them).
   */
  sync(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' };

/** Parses one MONITOR line: `<time> [<db> <source>] "arg" "arg" …` with sdscatrepr's escapes in the args. */
export function parseMonitorLine(line: string): MonitoredCommand | null {
  const m = /^\d+\.\d+ \[\d+ ([^\]]+)\] (.*)$/.exec(line);
  if (!m) return null;
  const args: string[] = [];
  const text = m[2]!;
  let i = 0;
  while (i < text.length) {
    if (text[i] !== '"') {
      i++;
      continue;
    }
    let arg = '';
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') {
        const next = text[i + 1]!;
        if (next === 'x') {
          arg += String.fromCharCode(Number.parseInt(text.slice(i + 2, i + 4), 16));
          i += 4;
        } else {
          arg += ESCAPES[next] ?? next;
          i += 2;
        }
      } else arg += text[i++];
    }
    args.push(arg);
    i++;
  }
  return { args, source: m[1]! };
}

/** Starts MONITOR on a new connection and resolves once Redis has confirmed it. */
export async function openMonitor(port = 6379, host = '127.0.0.1'): Promise<RedisMonitor> {
  const socket: Socket = connect(port, host);
  const commands: MonitoredCommand[] = [];
  let buffered = '';
  let confirmed: (() => void) | null = null;
  const ready = new Promise<void>((resolve, reject) => {
    confirmed = resolve;
    socket.once('error', reject);
  });
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let end = buffered.indexOf('\r\n');
    while (end >= 0) {
      const line = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (line === '+OK') confirmed?.();
      else if (line.startsWith('+')) {
        const c = parseMonitorLine(line.slice(1));
        if (c) commands.push(c);
      }
      end = buffered.indexOf('\r\n');
    }
  });
  socket.write('MONITOR\r\n');
  await ready;
  // Later socket errors (Redis restarted under a test) show as missing commands in the test's assertions.
  socket.on('error', () => undefined);
  return {
    commands,
    sync: (timeoutMs = 5000) => echoSeen(port, host, commands, timeoutMs),
    close: () =>
      new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.destroy();
      }),
  };
}

let echoes = 0;

async function echoSeen(port: number, host: string, commands: readonly MonitoredCommand[], timeoutMs: number): Promise<void> {
  const marker = `kurir-monitor-sync-${process.pid}-${++echoes}`;
  const probe = connect(port, host);
  probe.on('error', () => undefined);
  probe.on('data', () => undefined);
  probe.write(`ECHO ${marker}\r\n`);
  try {
    await until(() => commands.some((c) => c.args[0]?.toLowerCase() === 'echo' && c.args[1] === marker), timeoutMs, `the monitor to see ${marker}`, 5);
  } finally {
    probe.destroy();
  }
}
