/**
 * What RFC 2920 pipelining (src/delivery/pipelined-transaction.ts) buys the delivery client, measured alone:
 * messages sent through the delivery connection pool (src/delivery/connection-pool.ts) to the benchmark's sink
 * (bench/sink.ts, STARTTLS, in a child process so its CPU is not counted), with pipelining on and off in
 * alternating rounds. The sink sits behind a relay that holds every chunk for a set delay each way, so a
 * round trip costs what it would to a distant MX.
 *
 * Prints per round and per side: msg/s, the client's CPU per message (this process: pool, nodemailer, TLS) and
 * the mean time a message takes. `npm run bench:pipelining`; env N (messages per round, default 2000),
 * ROUNDS (pairs, default 4), CONCURRENCY (messages in flight = connections, default 10), RTT_MS (the relay's
 * added round trip, default 0: loopback), RECIPIENTS (per message, default 1).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { createSmtpPool } from '../src/delivery/connection-pool.js';
import { startSink } from './sink.js';

const SELF = fileURLToPath(import.meta.url);

/** Child mode: the sink and, in front of it, a relay adding `rttMs / 2` each way; prints the relay's port. */
async function serveSink(rttMs: number): Promise<void> {
  const sink = await startSink({ tls: true });
  const hold = (from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (rttMs <= 0) to.write(chunk);
      else setTimeout(() => to.write(chunk), rttMs / 2);
    });
    from.on('end', () => setTimeout(() => to.end(), rttMs / 2));
    from.on('error', () => to.destroy());
  };
  const relay = net.createServer((client) => {
    client.setNoDelay(true);
    const upstream = net.connect(sink.port, '127.0.0.1');
    upstream.setNoDelay(true);
    hold(client, upstream);
    hold(upstream, client);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${(relay.address() as net.AddressInfo).port}\n`);
}

async function startSinkChild(rttMs: number): Promise<{ port: number; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', SELF, '--sink', String(rttMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    proc.once('exit', (code) => reject(new Error(`sink child exited (${code})`)));
  });
  return { port, proc };
}

interface Round {
  perSecond: number;
  cpuUsPerMessage: number;
  meanMs: number;
}

async function round(port: number, pipelining: boolean, n: number, concurrency: number, recipients: number, seq: number): Promise<Round> {
  const pool = createSmtpPool({ maxIdlePerTarget: concurrency, maxMessagesPerConnection: 1_000_000 });
  const target = { host: '127.0.0.1', port, servername: 'mx.dest.test' };
  const opts = { ehloName: 'bench.kurir.test', timeouts: { connectMs: 5000, greetingMs: 5000, socketMs: 30_000 }, pipelining };
  const to = Array.from({ length: recipients }, (_, i) => `r${i}@dest.test`);
  const body = (i: number) => Buffer.from(`From: a@example.test\r\nTo: r0@dest.test\r\nMessage-ID: <p${i}@bench>\r\nSubject: t\r\n\r\n${'x'.repeat(3000)}\r\n`);
  // Open the connections first (untimed): the rounds compare transactions, not TLS handshakes.
  await Promise.all(Array.from({ length: concurrency }, (_, i) => pool.send(target, { from: `b+w${seq + i}@bounce.example.test`, to }, body(seq + i), opts)));
  let next = 0;
  let latency = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        const r = await pool.send(target, { from: `b+m${seq + concurrency + i}@bounce.example.test`, to }, body(seq + concurrency + i), opts);
        latency += performance.now() - s;
        if (r.outcomes.some((o) => o.kind !== 'delivered')) throw new Error(JSON.stringify(r.outcomes));
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu0);
  await pool.close();
  return { perSecond: n / seconds, cpuUsPerMessage: (used.user + used.system) / n, meanMs: latency / n };
}

async function main(): Promise<void> {
  const n = Number(process.env.N ?? 2000);
  const rounds = Number(process.env.ROUNDS ?? 4);
  const concurrency = Number(process.env.CONCURRENCY ?? 10);
  const rttMs = Number(process.env.RTT_MS ?? 0);
  const recipients = Number(process.env.RECIPIENTS ?? 1);
  const { port, proc } = await startSinkChild(rttMs);
  console.log(`pipelining on vs off: ${n} messages per round, ${concurrency} connections, ${recipients} recipient(s), added round trip ${rttMs} ms, STARTTLS`);
  const sides: Record<'on' | 'off', Round[]> = { on: [], off: [] };
  let seq = 0;
  try {
    // JIT warm-up, one untimed round per side.
    for (const side of ['on', 'off'] as const) await round(port, side === 'on', Math.min(n, 1000), concurrency, recipients, (seq += n + concurrency));
    for (let r = 1; r <= rounds; r++) {
      for (const side of r % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        const res = await round(port, side === 'on', n, concurrency, recipients, (seq += n + concurrency));
        sides[side].push(res);
        console.log(
          `  round ${r}, pipelining ${side}: ${res.perSecond.toFixed(0)} msg/s, client CPU ${res.cpuUsPerMessage.toFixed(0)} µs per message, ${res.meanMs.toFixed(2)} ms per message`,
        );
      }
    }
  } finally {
    proc.kill();
  }
  const mean = (rs: Round[], k: keyof Round) => rs.reduce((s, x) => s + x[k], 0) / rs.length;
  const line = (side: 'on' | 'off') =>
    `${mean(sides[side], 'perSecond').toFixed(0)} msg/s, ${mean(sides[side], 'cpuUsPerMessage').toFixed(0)} µs CPU, ${mean(sides[side], 'meanMs').toFixed(2)} ms per message`;
  console.log(`  mean: on ${line('on')}; off ${line('off')}`);
  console.log(
    `  on vs off: ${((mean(sides.on, 'perSecond') / mean(sides.off, 'perSecond') - 1) * 100).toFixed(1)} % msg/s, ` +
      `${((mean(sides.on, 'cpuUsPerMessage') / mean(sides.off, 'cpuUsPerMessage') - 1) * 100).toFixed(1)} % client CPU per message`,
  );
}

if (process.argv[2] === '--sink') await serveSink(Number(process.argv[3] ?? 0));
else await main();
