/**
 * The untimed warm-up of an end-to-end gateway, in blocks, with the gateway's CPU per message of each block:
 * how much a fresh process pays while V8 is still compiling its hot code, and when that stops.
 *
 * Why it is long: a perf(1) sample of phase 4 after the old 1,500-message warm-up had V8's background compiler
 * threads at 10–15 % of the gateway's CPU in the first seconds of the measured phase (docs/benchmarks.md,
 * "Warm processes").
 */
import { cpuSecondsOf } from './gateway-child.js';
import type { ClosedLoopResult } from './load.js';
import type { Sink } from './sink.js';

/** One block of the warm-up. */
export interface WarmUpBlock {
  /** Messages sent before this block, since the warm-up started. */
  after: number;
  messages: number;
  /** Gateway CPU (all given processes, all threads) per delivered message, in ms. */
  cpuMsPerMsg: number;
  perSecond: number;
}

/** What a warm-up needs: the gateway processes, the sink the deliveries reach, and a sender of N messages. */
export interface WarmUpOptions {
  pids: number[];
  sink: Sink;
  total: number;
  block: number;
  /** Sends `count` messages (numbered from the caller's sequence); resolves when all were accepted. */
  send: (count: number) => Promise<ClosedLoopResult>;
  /** Give up waiting for a block's deliveries after this long. */
  timeoutMs?: number;
}

/** What one block of a warm-up cost: the gateway's CPU per delivered message (ms) and the delivered rate. */
export type BlockCost = Pick<WarmUpBlock, 'cpuMsPerMsg' | 'perSecond'>;

/**
 * Runs `total` messages in blocks of `block` through `runBlock` (which sends its `count` messages, waits for
 * their delivery and says what they cost), one block after the other. The loop shared by every warm-up.
 */
export async function inBlocks(total: number, block: number, runBlock: (count: number) => Promise<BlockCost>): Promise<WarmUpBlock[]> {
  const blocks: WarmUpBlock[] = [];
  for (let sent = 0; sent < total; sent += block) {
    const messages = Math.min(block, total - sent);
    blocks.push({ after: sent, messages, ...(await runBlock(messages)) });
  }
  return blocks;
}

/**
 * Sends `total` messages in blocks of `block`, waiting for each block to be delivered before the next, and
 * measures the gateway's CPU per message of each block. Resets the sink before each block and after the last.
 */
export async function warmUp(o: WarmUpOptions): Promise<WarmUpBlock[]> {
  const cpu = (): number => o.pids.reduce((s, pid) => s + cpuSecondsOf(pid), 0);
  const blocks = await inBlocks(o.total, o.block, async (n) => {
    o.sink.reset();
    const c0 = cpu();
    const t0 = performance.now();
    await o.send(n);
    await o.sink.waitForUnique(n, o.timeoutMs ?? 60_000);
    const delivered = Math.max(1, o.sink.unique);
    return { cpuMsPerMsg: ((cpu() - c0) * 1000) / delivered, perSecond: (delivered * 1000) / (performance.now() - t0) };
  });
  o.sink.reset();
  return blocks;
}

/** One line: the CPU per message of each block, e.g. "2.41, 1.87, … 1.30 ms". */
export function describeWarmUp(blocks: WarmUpBlock[]): string {
  if (blocks.length === 0) return 'none';
  const size = blocks[0]?.messages ?? 0;
  const list = blocks.map((b) => b.cpuMsPerMsg.toFixed(2)).join(', ');
  return `${blocks.reduce((s, b) => s + b.messages, 0)} messages in blocks of ${size}; gateway CPU per message by block: ${list} ms`;
}
