/**
 * Message ids and random tokens (src/lib/ids.ts): drawn from a pooled CSPRNG buffer, so the checks below cross
 * several refills of the 4 KB pool.
 */
import { describe, expect, it } from 'vitest';
import { MESSAGE_ID_PATTERN, newMessageId, randomBase32, randomHex } from '../../../src/lib/ids.js';

describe('ids', () => {
  it('makes ids that sort by time, match the pattern and never repeat across pool refills', () => {
    const now = Date.UTC(2026, 10, 29, 21, 40);
    // 12 random bytes each: 3,000 ids draw 36,000 bytes, about nine refills.
    const ids = Array.from({ length: 3000 }, (_, i) => newMessageId(now + i));
    for (const id of ids) expect(id).toMatch(MESSAGE_ID_PATTERN);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids.map((id) => id.slice(10))).size).toBe(ids.length);
  });

  it('spreads random characters over the whole alphabet and hex tokens over every byte value', () => {
    const chars = randomBase32(64_000);
    const counts = new Map<string, number>();
    for (const c of chars) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(32);
    // 2,000 expected per character; a fair source stays far inside ±15 %.
    for (const n of counts.values()) expect(Math.abs(n - 2000)).toBeLessThan(300);
    const tokens = Array.from({ length: 2000 }, () => randomHex(8));
    for (const t of tokens) expect(t).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(tokens).size).toBe(tokens.length);
    expect(new Set(tokens.join('').match(/../g)).size).toBe(256);
    expect(() => randomHex(257)).toThrow(RangeError);
  });
});
