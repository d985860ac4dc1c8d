/**
 * Long fuzz run of the report parser (src/feedback/reports/report.ts), outside the test suite: mutated
 * fixtures (tests/helpers/report-mutations.ts, the same mutations the property test uses, with far more runs)
 * are parsed one by one and the outcomes counted. The parser must never reject and never answer
 * `internal-error` (an exception it caught); the exit code is 1 when it did.
 *
 *   npx tsx bench/fuzz-feedback-parser.ts [runs=10000] [seed]
 */
import fc from 'fast-check';
import { parseReport } from '../src/feedback/reports/report.js';
import { verpAddress } from '../src/lib/verp.js';
import { fixtureNames, loadFixture } from '../tests/helpers/feedback-fixtures.js';
import { mutation } from '../tests/helpers/report-mutations.js';

const runs = Number(process.argv[2] ?? 10_000);
const seed = process.argv[3] !== undefined ? Number(process.argv[3]) : Date.now() % 2 ** 31;
const values = {
  verp: verpAddress('01hq7x3k9m2n4p6r8t0v2w4y6z', 'bounce.example.test', 'fuzz-secret'),
  rcpt: 'nobody@example.org',
  messageId: 'orig-1@example.test',
};
const names = fixtureNames();
const fixtures = names.map((name) => Buffer.from(loadFixture(name, values), 'utf8'));

const cases = fc.sample(fc.tuple(fc.integer({ min: 0, max: fixtures.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 })), {
  numRuns: runs,
  seed,
});
const outcomes = new Map<string, number>();
const internal: string[] = [];
let rejected = 0;
const started = performance.now();
for (const [i, mutations] of cases) {
  const input = mutations.reduce<Buffer>((b, m) => m(b), fixtures[i]);
  try {
    const r = await parseReport(input, { timeoutMs: 5000 });
    const key = r.kind === 'unusable' ? `unusable:${r.reason}` : r.kind;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    if (r.kind === 'unusable' && r.reason === 'internal-error' && internal.length < 20) internal.push(`${names[i]}: ${r.detail}`);
  } catch (err) {
    rejected++;
    if (internal.length < 20) internal.push(`${names[i]}: rejected: ${String(err)}`);
  }
}
const seconds = (performance.now() - started) / 1000;
const errors = outcomes.get('unusable:internal-error') ?? 0;
console.log(`fuzz: ${cases.length} mutated reports from ${fixtures.length} fixtures, seed ${seed}, ${seconds.toFixed(1)} s`);
for (const [k, n] of [...outcomes].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(28)} ${n}`);
console.log(`internal errors: ${errors}, rejections: ${rejected}`);
for (const line of internal) console.log(`  ${line}`);
process.exitCode = errors || rejected ? 1 : 0;
