import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readTimeline } from '../../../bench/gc-window.js';
import { closedLoop } from '../../../bench/loops.js';

describe('BENCH_TIMELINE (closed loop) read back by bench/gc-window.ts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kurir-timeline-'));
  afterEach(() => {
    delete process.env.BENCH_TIMELINE;
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes one loop per run, each message with its wall-clock end and latency', async () => {
    const file = join(dir, 'timeline.txt');
    process.env.BENCH_TIMELINE = file;
    const before = Date.now();
    await closedLoop(2, 5, Date.now() + 10_000, () => new Promise((r) => setTimeout(r, 20)));
    await closedLoop(1, 3, Date.now() + 10_000, async () => undefined);
    const loops = readTimeline(readFileSync(file, 'utf8'));
    expect(loops.map((l) => l.ends.length)).toEqual([5, 3]);
    for (const latency of loops[0]!.latencies) expect(latency).toBeGreaterThanOrEqual(19);
    for (const end of loops[0]!.ends) {
      expect(end).toBeGreaterThanOrEqual(before);
      expect(end).toBeLessThanOrEqual(Date.now() + 1);
    }
  });

  it('writes nothing without BENCH_TIMELINE', async () => {
    const stats = await closedLoop(1, 2, Date.now() + 10_000, async () => undefined);
    expect(stats.count).toBe(2);
    expect(() => readFileSync(join(dir, 'timeline.txt'))).toThrow();
  });
});
