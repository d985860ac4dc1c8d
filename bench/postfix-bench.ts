/**
 * `npm run bench:postfix`: the side-by-side phase of bench/postfix-phase.ts alone (Postfix + OpenDKIM vs
 * Kurir, same load, same sink, one run), without the rest of `npm run bench`. Skipped with a message when
 * Postfix, OpenDKIM or Cyrus SASL are not installed. Stops by itself within 10 minutes.
 *
 * Env: as the phase (BENCH_POSTFIX_N default 3000, BENCH_POSTFIX_SESSIONS default "20,50",
 * BENCH_POSTFIX_KURIR, BENCH_POSTFIX_DELIVERY).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsServer } from '../tests/helpers/dns-server.js';
import { startGatewayChild, type GatewayChild } from './gateway-child.js';
import { postfixPhase } from './postfix-phase.js';
import { onInterrupt, stopAllPostfix } from './postfix-instance.js';
import { startSink } from './sink.js';

const BUDGET_MS = 540_000;
const deadline = Date.now() + BUDGET_MS;
let children: GatewayChild[] = [];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kurir-bench-pf-'));
  onInterrupt(async () => {
    await Promise.all(children.map((c) => c.stop(3000)));
    rmSync(dir, { recursive: true, force: true });
  });
  const sink = await startSink({ tls: true });
  const dns = await startDnsServer(
    { 'dest.test': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } },
    { negativeTtl: 300 },
  );
  console.log(
    `Postfix side-by-side benchmark: ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ${new Date().toISOString()}`,
  );
  let seq = 0;
  try {
    const result = await postfixPhase({
      sink,
      dns,
      dir,
      removeDirIfKilled: true,
      messages: Number(process.env.BENCH_POSTFIX_N ?? 3000),
      sessions: (process.env.BENCH_POSTFIX_SESSIONS ?? '20,50')
        .split(',')
        .map(Number)
        .filter((n) => n > 0),
      deadline,
      left: () => deadline - Date.now(),
      takeSeq: (count) => (seq += count) - count,
      startChild: async (opts, prefix) => {
        const c = await startGatewayChild({ ...opts, dir, prefix, dnsAddress: dns.address, mxPort: sink.port });
        children.push(c);
        return c;
      },
      stopChildren: async () => {
        const list = children;
        children = [];
        await Promise.all(list.map((c) => c.stop()));
      },
    });
    console.log(
      `\nload average at the end: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    console.log(`\nJSON ${JSON.stringify({ date: new Date().toISOString(), postfix: result })}`);
  } finally {
    await Promise.all(children.map((c) => c.stop(5000)));
    await sink.close();
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error('benchmark exceeded its time budget: stopping');
  for (const c of children) c.proc.kill('SIGKILL');
  void stopAllPostfix().finally(() => process.exit(1));
}, BUDGET_MS + 30_000);

let code = 0;
try {
  await main();
} catch (err) {
  console.error(err);
  code = 1;
} finally {
  clearTimeout(watchdog);
  for (const c of children) c.proc.kill('SIGKILL');
  await stopAllPostfix();
}
process.exit(code);
