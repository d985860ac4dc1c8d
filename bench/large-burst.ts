/**
 * Large concurrent submissions (issue 8 part 2): 16 clients each POST one JSON message of ~9.9 MB at once
 * to a gateway child process. Reports the answers, the worst /healthz latency during the burst (how long
 * the event loop was blocked), the gateway's peak and after-burst RSS, and whether every 202 was stored.
 * Usage: tsx bench/large-burst.ts [clients=16] [megabytes=9.9]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { dropPrefix } from '../tests/helpers/test-gateway.js';

const clients = Number(process.argv[2] ?? 16);
const megabytes = Number(process.argv[3] ?? 9.9);
const API_KEY = 'bench-api-key-0000000001';
const dir = mkdtempSync(join(tmpdir(), 'kurir-burst-'));
const prefix = `kurir-burst-${Date.now()}`;
const httpPort = 18000 + Math.floor(Math.random() * 1000);
const configFile = join(dir, 'kurir.yaml');
writeFileSync(
  configFile,
  stringify({
    dataDir: dir,
    log: { level: 'warn' },
    roles: ['intake', 'api'],
    redis: { prefix, manage: 'never' },
    http: { port: httpPort },
    smtp: { enabled: false },
    limits: { enabled: false },
    domains: [{ name: 'example.test', dkim: [{ selector: 's1', algorithm: 'rsa', privateKeyFile: join(dir, 'rsa.pem'), generate: true }] }],
    apiKeys: [{ name: 'booking', key: API_KEY, domains: ['example.test'] }],
  }),
);
const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
  env: { ...process.env, KURIR_CONFIG: configFile },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const base = `http://127.0.0.1:${httpPort}`;
for (let i = 0; i < 300; i++) {
  if (
    await fetch(`${base}/healthz`)
      .then((r) => r.ok)
      .catch(() => false)
  )
    break;
  await new Promise((r) => setTimeout(r, 100));
}
const rss = (): number => {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
};
// ~megabytes of JSON: an HTML body (the API caps attachments at 5 MB, so the bulk is the body itself).
const line = '<p>Your appointment details are below; please keep this message.</p>\n';
const html = line.repeat(Math.floor((megabytes * 1024 * 1024 - 2000) / (line.length + 1)));
const bodies = Array.from({ length: clients }, (_, i) =>
  JSON.stringify({ from: 'noreply@example.test', to: [`user${i}@dest.test`], subject: `big ${i}`, text: 'see the HTML part', html }),
);
console.log(`rss before ${rss().toFixed(0)} MiB; body ${(bodies[0].length / 1048576).toFixed(2)} MiB x ${clients}`);
let peak = rss();
let worstHealth = 0;
let running = true;
const sampler = (async () => {
  while (running) {
    const t0 = performance.now();
    await fetch(`${base}/healthz`).catch(() => null);
    worstHealth = Math.max(worstHealth, performance.now() - t0);
    peak = Math.max(peak, rss());
    await new Promise((r) => setTimeout(r, 20));
  }
})();
const started = performance.now();
const results = await Promise.all(
  bodies.map(async (body) => {
    const res = await fetch(`${base}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body,
    }).catch((e: Error) => ({ status: 0, text: async () => e.message }));
    const text = await res.text();
    return { status: res.status, text: text.slice(0, 200) };
  }),
);
const elapsed = performance.now() - started;
running = false;
await sampler;
const counts: Record<string, number> = {};
for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
const redis = new Redis();
const ids = results.filter((r) => r.status === 202).map((r) => (JSON.parse(r.text) as { id: string }).id);
let stored = 0;
for (const id of ids) if (await redis.exists(`${prefix}:msg:${id}`)) stored++;
const keysNow = (await redis.keys(`${prefix}:msg:*`)).length;
const jobs = await redis.hlen(`${prefix}:{dq}:jobs`);
const heapUsedMiB = async (): Promise<number> => {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Math.round(Number(/^kurir_nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? 0) / 1048576);
};
const heapAtEnd = await heapUsedMiB();
await new Promise((r) => setTimeout(r, 30_000));
console.log(
  JSON.stringify({
    clients,
    megabytes,
    answers: counts,
    elapsedMs: Math.round(elapsed),
    worstHealthzMs: Math.round(worstHealth),
    peakRssMiB: Math.round(peak),
    heapUsedAtEndMiB: heapAtEnd,
    rssAfter30sMiB: Math.round(rss()),
    heapUsedAfter30sMiB: await heapUsedMiB(),
    accepted: ids.length,
    acceptedStored: stored,
    storedMessages: keysNow,
    jobs,
  }),
);
for (const r of results.filter((x) => x.status !== 202).slice(0, 3)) console.log(r.status, r.text);
child.kill('SIGTERM');
await redis.quit();
await dropPrefix(prefix);
