import { describe, expect, it } from 'vitest';
import { inBlocks } from '../../../bench/warm-up.js';

describe('inBlocks (the warm-up loop of every benchmark phase)', () => {
  it('runs whole blocks, then the remainder, one after the other, and keeps what each cost', async () => {
    const calls: number[] = [];
    let running = 0;
    const blocks = await inBlocks(250, 100, async (count) => {
      running++;
      expect(running).toBe(1); // never two blocks at once
      calls.push(count);
      await new Promise((r) => setTimeout(r, 1));
      running--;
      return { cpuMsPerMsg: 10 / count, perSecond: count * 2 };
    });
    expect(calls).toEqual([100, 100, 50]);
    expect(blocks).toEqual([
      { after: 0, messages: 100, cpuMsPerMsg: 0.1, perSecond: 200 },
      { after: 100, messages: 100, cpuMsPerMsg: 0.1, perSecond: 200 },
      { after: 200, messages: 50, cpuMsPerMsg: 0.2, perSecond: 100 },
    ]);
  });

  it('runs nothing for no messages', async () => {
    const blocks = await inBlocks(0, 100, async () => {
      throw new Error('no block expected');
    });
    expect(blocks).toEqual([]);
  });
});
