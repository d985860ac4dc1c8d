/**
 * `npm run bench:sign`: DKIM signing on the event loop vs in signing threads (dkim.signingThreads).
 * A. Signatures/s of RSA-2048 over 4 KB messages, 20 signatures in flight, on the main thread and through
 *    SignPool with 1 and 2 threads, with the main thread's event-loop utilisation (how much of the loop signing
 *    leaves to I/O).
 * B. End-to-end HTTP accept throughput of a gateway child (roles intake+api, concurrency 20) with
 *    signingThreads 0 and 1, sides alternated.
 * Each measurement is repeated ROUNDS times (env BENCH_SIGN_ROUNDS, default 3): the spread is printed, because
 * the machine is shared. `--no-http` runs part A only, `--http-only` part B only. Env BENCH_SIGN_SECONDS (part A, per run; default 3), BENCH_SIGN_N (part B, default 2000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateDkimKey } from '../src/dkim/keys.js';
import { SignPool } from '../src/dkim/sign-pool.js';
import { createDkimSigner, type SigningEngine } from '../src/dkim/signer.js';
import { startDnsServer } from '../tests/helpers/dns-server.js';
import { dropPrefix } from '../tests/helpers/test-gateway.js';
import { cpuSecondsOf, startGatewayChild } from './gateway-child.js';
import { HttpClient, httpClosedLoop, paddedText } from './load.js';

const ROUNDS = Number(process.env.BENCH_SIGN_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SIGN_SECONDS ?? 3);
const N_HTTP = Number(process.env.BENCH_SIGN_N ?? 2000);
const IN_FLIGHT = 20;

const spread = (xs: number[]): string => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]!.toFixed(0)} (min ${s[0]!.toFixed(0)}, max ${s.at(-1)!.toFixed(0)}; runs ${xs.map((x) => x.toFixed(0)).join(', ')})`;
};

async function signRate(engine: SigningEngine | undefined, key: string): Promise<{ perSecond: number; elu: number; cpuUs: number }> {
  const signer = createDkimSigner({ keys: [{ domain: 'example.test', selector: 'bench', algorithm: 'rsa', privateKeyPem: key }], engine });
  const messages = Array.from({ length: 64 }, (_, i) =>
    Buffer.from(
      `From: Bench <noreply@example.test>\r\nTo: user${i}@dest.test\r\nSubject: Benchmark ${i}\r\nDate: Sun, 29 Nov 2026 08:00:00 +0000\r\nMessage-ID: <b${i}@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${paddedText(i).replace(/\n/g, '\r\n')}`,
    ),
  );
  for (let i = 0; i < 50; i++) await signer.sign(messages[i % 64]!, 'example.test'); // warm-up
  let done = 0;
  const end = performance.now() + SECONDS * 1000;
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage(); // the whole process: main thread and signing threads
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async (_, w) => {
      for (let i = w; performance.now() < end; i += IN_FLIGHT) {
        await signer.sign(messages[i % 64]!, 'example.test');
        done++;
        // The main-thread signer never yields between signatures; this lets timers and I/O run as a server's would.
        if (!engine) await new Promise((r) => setImmediate(r));
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: done / seconds, elu: performance.eventLoopUtilization(elu0).utilization, cpuUs: (cpu.user + cpu.system) / done };
}

async function partA(): Promise<void> {
  const key = generateDkimKey('rsa').privateKeyPem;
  console.log(`\nA. RSA-2048 signatures/s, 4 KB messages, ${IN_FLIGHT} in flight, ${SECONDS} s per run, ${ROUNDS} runs`);
  for (const threads of [0, 1, 2]) {
    const pool = threads ? await SignPool.start({ threads }) : undefined;
    const rates: number[] = [];
    const elus: number[] = [];
    const cpus: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const { perSecond, elu, cpuUs } = await signRate(pool, key);
      rates.push(perSecond);
      elus.push(elu * 100);
      cpus.push(cpuUs);
    }
    await pool?.close();
    console.log(
      `  ${threads ? `pool, ${threads} thread(s)` : 'main thread'}: ${spread(rates)} sig/s; event loop busy ${spread(elus)} %; CPU µs per signature (all threads) ${spread(cpus)}`,
    );
  }
}

async function partB(): Promise<void> {
  console.log(`\nB. HTTP accept (roles intake+api), ${N_HTTP} msgs of 4 KB, concurrency 20, RSA-2048, ${ROUNDS} rounds, sides alternated`);
  const dns = await startDnsServer({});
  const dir = mkdtempSync(join(tmpdir(), 'kurir-bench-sign-'));
  const results: Record<number, { rate: number[]; p50: number[]; p99: number[]; cpuPerK: number[] }> = {
    0: { rate: [], p50: [], p99: [], cpuPerK: [] },
    1: { rate: [], p50: [], p99: [], cpuPerK: [] },
  };
  let seq = 0;
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const threads of r % 2 ? [1, 0] : [0, 1]) {
        const prefix = `kurir-bench-sign-${Math.random().toString(36).slice(2, 8)}`;
        const child = await startGatewayChild({
          dir,
          prefix,
          roles: ['intake', 'api'],
          dnsAddress: dns.address,
          mxPort: 9,
          label: `sign-${threads}-${r}`,
          extraConfig: { dkim: { signingThreads: threads } },
        });
        try {
          const http = new HttpClient(child.httpPort, 20);
          const deadline = Date.now() + 120_000;
          await httpClosedLoop(http, 300, 20, seq, deadline); // warm-up
          seq += 300;
          const cpu0 = cpuSecondsOf(child.pid);
          const { stats } = await httpClosedLoop(http, N_HTTP, 20, seq, deadline);
          const cpu = cpuSecondsOf(child.pid) - cpu0;
          seq += N_HTTP;
          if (stats.errors) console.log(`  (${stats.errors} errors: ${http.lastError})`);
          const res = results[threads]!;
          res.rate.push(stats.perSecond);
          res.p50.push(stats.p50);
          res.p99.push(stats.p99);
          res.cpuPerK.push((cpu / stats.count) * 1000);
          console.log(
            `  round ${r + 1}, signingThreads ${threads}: ${stats.perSecond.toFixed(0)} msg/s, p50 ${stats.p50.toFixed(1)} ms, p99 ${stats.p99.toFixed(1)} ms, gateway CPU ${((cpu / stats.count) * 1000).toFixed(2)} s per 1,000 msgs`,
          );
        } finally {
          await child.stop();
          await dropPrefix(prefix);
        }
      }
    }
  } finally {
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  }
  // Paired: each round ran both sides back to back, so their ratio is less exposed to the machine's load swings.
  const ratios = results[1]!.rate.map((on, i) => (100 * on) / results[0]!.rate[i]!);
  console.log(`  signingThreads 1 vs 0, per round: ${spread(ratios)} %`);
  for (const t of [0, 1]) {
    const res = results[t]!;
    console.log(
      `  signingThreads ${t}: ${spread(res.rate)} msg/s; p99 ${spread(res.p99)} ms; CPU s/1000 msgs ${res.cpuPerK.map((x) => x.toFixed(2)).join(', ')}`,
    );
  }
}

console.log(
  `Kurir signing bench: ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), node ${process.version}, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}, ${new Date().toISOString()}`,
);
if (!process.argv.includes('--http-only')) await partA();
if (!process.argv.includes('--no-http')) await partB();
process.exit(0);
