/**
 * `npx tsx bench/confirm-batch.ts`: the gateway's and Redis's CPU per confirmation reported in batches
 * (POST /v1/confirmations), measured over many batches in one gateway child (roles intake+api) on the shared
 * Redis, so the CPU counters' 10 ms ticks and the gateway's background work stay small against the total.
 * Submits N verification messages, confirms the first 4,000 untimed (warm-up), then the rest in four passes.
 * Prints, per pass, CPU per confirmation and the longest batch request (it bounds how long one batch's
 * scripts held Redis).
 *
 * Env: N (messages, default 24000), BATCH (confirmations per request, default 50, at most 1000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsServer } from '../tests/helpers/dns-server.js';
import { dropPrefix } from '../tests/helpers/test-gateway.js';
import { confirmPass, describeConfirmCost } from './confirm-cost.js';
import { privateRedisStats } from './features-helpers.js';
import { startGatewayChild } from './gateway-child.js';
import { HttpClient, httpClosedLoop } from './load.js';

const N = Number(process.env.N ?? 24_000);
const BATCH = Math.min(1000, Math.max(1, Number(process.env.BATCH ?? 50)));
const WARM = 4000;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kurir-confirm-batch-'));
  const dns = await startDnsServer({});
  const redisStats = privateRedisStats('redis://127.0.0.1:6379');
  const prefix = `kurir-bench-cb-${Math.random().toString(36).slice(2, 8)}`;
  // No worker: confirmations need an accepted message, not a delivered one.
  const child = await startGatewayChild({ dir, prefix, roles: ['intake', 'api'], dnsAddress: dns.address, mxPort: 9, label: 'confirm-batch' });
  const http = new HttpClient(child.httpPort, 20);
  try {
    const submitted = await httpClosedLoop(http, N, 20, 0, Date.now() + 300_000, { priority: 'verification' });
    const pass = async (label: string, ids: string[]): Promise<void> => {
      const cost = await confirmPass({ port: child.httpPort, pid: child.pid, ids, concurrency: 2, redisStats, batch: BATCH });
      console.log(`  ${describeConfirmCost(label, cost)}`);
    };
    console.log(`confirm-batch: ${submitted.ids.length} messages, batches of ${BATCH}, gateway pid ${child.pid}`);
    await pass('warm-up (untimed)', submitted.ids.slice(0, WARM));
    const rest = submitted.ids.slice(WARM);
    const step = Math.floor(rest.length / 4);
    for (let i = 0; i < 4; i++) await pass(`pass ${i + 1}`, rest.slice(i * step, (i + 1) * step));
  } finally {
    http.close();
    await child.stop(3000);
    await dns.close();
    await dropPrefix(prefix);
    redisStats.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
