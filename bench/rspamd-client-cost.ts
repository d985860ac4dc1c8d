/**
 * Kurir's side of one rspamd scoring call, alone: `npx tsx bench/rspamd-client-cost.ts`. Starts a real
 * rspamd (tests/helpers/rspamd.ts) with DNS from a loopback server, scores N signed-size messages through
 * src/scoring/rspamd-client.ts at a small concurrency, and prints this process's CPU per call (user+system,
 * process.cpuUsage), rspamd's CPU per call and how many calls reused a kept-alive connection.
 * Env: N (default 300), C (concurrency, default 4).
 */
import { randomBytes } from 'node:crypto';
import { ClientRequest } from 'node:http';
import { checkUrl, checkWithRspamd } from '../src/scoring/rspamd-client.js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rspamdAvailable, startRspamd } from '../tests/helpers/rspamd.js';
import { rspamdCpuSeconds } from './features-helpers.js';

const N = Number(process.env.N ?? 300);
const C = Number(process.env.C ?? 4);

function message(i: number): Buffer {
  const body = randomBytes(1800)
    .toString('base64')
    .replace(/(.{76})/g, '$1\r\n');
  return Buffer.from(
    `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test; s=bench; h=from:to:subject:date:message-id; bh=${randomBytes(32).toString('base64')}; b=${randomBytes(256).toString('base64')}\r\n` +
      `From: Bench <noreply@example.test>\r\nTo: user${i}@dest.test\r\nSubject: Your verification code ${i}\r\nDate: ${new Date().toUTCString()}\r\n` +
      `Message-ID: <${i}.${Date.now()}@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour code is ${i}.\r\n${body}\r\n`,
  );
}

async function main(): Promise<void> {
  const avail = rspamdAvailable();
  if (!avail.ok) throw new Error(avail.reason);
  // rspamd's resolver in another process: its CPU is not Kurir's.
  const dnsProc = spawn(process.execPath, ['--import', 'tsx', 'bench/dns-child.ts'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(dnsProc.stdout, 'data')) as [Buffer];
  const rspamd = await startRspamd({ dnsAddress: line.toString().trim(), timeoutMs: 60_000 });
  let reused = 0;
  const onSocket = ClientRequest.prototype.onSocket;
  ClientRequest.prototype.onSocket = function (this: ClientRequest, ...args: Parameters<ClientRequest['onSocket']>) {
    if (this.reusedSocket) reused++;
    return onSocket.apply(this, args);
  } as ClientRequest['onSocket'];
  try {
    const url = checkUrl(rspamd.url); // once, as the scorer does
    const msgs = Array.from({ length: N + 20 }, (_, i) => message(i));
    const env = (i: number) => ({
      ip: '192.0.2.10',
      helo: 'mail.example.test',
      mailFrom: `b+${i}@bounce.example.test`,
      recipients: [`user${i}@dest.test`],
      queueId: `q${i}`,
    });
    for (let i = 0; i < 20; i++) await checkWithRspamd(url, 10_000, msgs[N + i], env(N + i)); // warm-up
    reused = 0;
    const cpu0 = process.cpuUsage();
    const r0 = rspamdCpuSeconds();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: C }, async () => {
        while (next < N) {
          const i = next++;
          await checkWithRspamd(url, 10_000, msgs[i], env(i));
        }
      }),
    );
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `${N} calls, concurrency ${C}: ${(wall / N).toFixed(2)} ms wall per call; Kurir-side CPU ${((cpu.user + cpu.system) / 1000 / N).toFixed(3)} ms per call ` +
        `(user ${(cpu.user / 1000 / N).toFixed(3)}, system ${(cpu.system / 1000 / N).toFixed(3)}); rspamd CPU ${(((rspamdCpuSeconds() - r0) * 1000) / N).toFixed(2)} ms per call; ` +
        `${reused} of ${N} on a reused connection`,
    );
  } finally {
    await rspamd.close();
    dnsProc.stdin?.end();
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
