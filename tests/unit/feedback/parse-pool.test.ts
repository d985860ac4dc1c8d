/**
 * Parsing DSN and ARF reports in threads (src/feedback/ingest/parse-pool.ts): the same answer as parsing them
 * on the event loop for every fixture and hostile input (plain objects that survive the structured clone); a
 * parse over the wall-clock cap is stopped with its thread (`timeout`), a full queue answers `busy`, and the
 * next report is parsed by a new thread.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ParsePool } from '../../../src/feedback/ingest/parse-pool.js';
import { parseReport } from '../../../src/feedback/reports/report.js';
import { fixtureNames, loadFixture, manyPartReport } from '../../helpers/feedback-fixtures.js';

const values = { verp: 'b+01hx.abc@bounce.example.test', rcpt: 'alice@dest.test', messageId: 'orig-1@example.test' };
const pools: ParsePool[] = [];

function pool(opts: Partial<ConstructorParameters<typeof ParsePool>[0]> = {}): ParsePool {
  const p = new ParsePool({ threads: 1, maxQueued: 8, maxParseMs: 60_000, ...opts });
  pools.push(p);
  return p;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

const inputs: Array<[string, Buffer]> = [
  ...fixtureNames().map((n): [string, Buffer] => [n, Buffer.from(loadFixture(n, values))]),
  ['500 HTML parts (1.9 MB)', Buffer.from(manyPartReport(values))],
  ['empty', Buffer.alloc(0)],
  ['binary', Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 37) % 256))],
  ['headers only', Buffer.from('Subject: Undelivered Mail Returned to Sender\r\nFrom: MAILER-DAEMON@x.test\r\n')],
  ['over maxBytes (2 MiB)', Buffer.alloc(2 * 1024 * 1024 + 1, 'a')],
];

describe('ParsePool', () => {
  it('answers exactly what parsing on the event loop answers, for every fixture and hostile input', async () => {
    const p = pool({ threads: 2, maxQueued: inputs.length });
    const inPool = await Promise.all(inputs.map(([, raw]) => p.parse(raw)));
    for (const [i, [name, raw]] of inputs.entries()) {
      const here = await parseReport(raw);
      expect(inPool[i], name).toStrictEqual(here);
      expect(JSON.stringify(inPool[i]), name).toBe(JSON.stringify(here));
    }
    // The comparison covered each kind: DSNs, complaints and unusable reports with several reasons.
    const kinds = new Set(inPool.map((r) => (r.kind === 'unusable' ? `unusable:${r.reason}` : r.kind)));
    for (const k of ['dsn', 'arf', 'unusable:empty', 'unusable:too-large', 'unusable:truncated', 'unusable:auto-reply']) expect(kinds).toContain(k);
    expect(p.workers()).toHaveLength(2);
  });

  it('stops a parse over the wall-clock cap with its thread (timeout), and parses the next report in a new one', async () => {
    const p = pool({ maxParseMs: 150 });
    const normal = Buffer.from(loadFixture('postfix-dsn.eml', values));
    expect((await p.parse(normal)).kind).toBe('dsn');
    const first = p.workers()[0];
    // Seconds of CPU in mailparser, far over the cap.
    const stopped = await p.parse(Buffer.from(manyPartReport(values, 500)), { maxBytes: 4 * 1024 * 1024 });
    expect(stopped).toMatchObject({ kind: 'unusable', reason: 'timeout', detail: expect.stringMatching(/feedback\.maxParseSeconds/) });
    expect(await p.parse(normal)).toStrictEqual(await parseReport(normal));
    expect(p.workers()).toHaveLength(1);
    expect(p.workers()[0]).not.toBe(first);
  });

  it('answers busy when maxQueued reports already wait, parses the others, and busy for everything after close', async () => {
    const p = pool({ maxQueued: 1 });
    const big = Buffer.from(manyPartReport(values, 200));
    const parses = [p.parse(big), p.parse(big), p.parse(big)];
    expect(await parses[2]).toMatchObject({ kind: 'busy', detail: expect.stringMatching(/feedback\.maxQueuedReports/) });
    for (const r of await Promise.all(parses.slice(0, 2))) expect(r.kind).toBe('dsn');
    const during = p.parse(big);
    await p.close();
    expect(await during).toMatchObject({ kind: 'busy' });
    expect(await p.parse(big)).toMatchObject({ kind: 'busy' });
  });
});
