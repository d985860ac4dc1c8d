/**
 * Preloaded into a gateway child by `npm run bench:redis`: counts the child's Redis round trips on the
 * client side (a command sent alone is one, a pipeline or MULTI is one) and the commands in them, and
 * writes the totals to $BENCH_RT_FILE every 200 ms (when they changed) and at exit. Commands that Lua scripts run inside Redis
 * are not seen here (INFO commandstats counts those).
 */
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { Pipeline, Redis } from 'ioredis';

// The preload runs in the gateway's worker threads too (the report and signing pools): only the main thread, which
// makes the Redis calls, writes the file; a thread's own zero counts would overwrite it (seen as negative deltas).
const file = isMainThread ? process.env.BENCH_RT_FILE : undefined;
const counts = { roundTrips: 0, commands: 0 };
const send = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function (this: Redis, command: Parameters<Redis['sendCommand']>[0], stream?: unknown) {
  counts.commands++;
  if (!stream) counts.roundTrips++;
  return send.call(this, command, stream as never);
} as Redis['sendCommand'];
const exec = Pipeline.prototype.exec;
const counted = new WeakSet<Pipeline>();
Pipeline.prototype.exec = function (this: Pipeline, ...args: Parameters<Pipeline['exec']>) {
  // A MULTI's exec calls this one again for the same pipeline (ioredis' transaction wrapper): count it once.
  if (!counted.has(this)) counts.roundTrips++;
  counted.add(this);
  return exec.apply(this, args);
} as Pipeline['exec'];
let written = '';
// Only when the counts moved: each synchronous write took about 1 ms of the child's main thread under load
// (bench CPU profile), which an idle child should not pay five times a second.
const flush = (): void => {
  const now = JSON.stringify(counts);
  if (file && now !== written) writeFileSync(file, now);
  written = now;
};
setInterval(flush, 200).unref();
process.on('exit', flush);
