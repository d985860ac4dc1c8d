/**
 * readAggregateReport never throws and never rejects: random bytes, and every reporter's real archive with
 * bytes flipped, cut short or spliced, resolve to a report or to a refusal with a reason of the bounded set.
 */
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { strToU8, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import { REPORT_REFUSALS, readAggregateReport, type AggregateLimits } from '../../../src/feedback/reports/aggregate-report.js';
import { googleDmarcMail, outlookDmarcMail, reportFixture, tlsRptMail, yahooDmarcMail } from '../../helpers/report-fixtures.js';

const limits: AggregateLimits = { ...loadConfig({ file: 'config/default.yaml', env: {} }).feedback.reports, maxInflatedBytes: 4 * 1024 * 1024 };
const TO = 'dmarc@bounce.example.test';
const originals: Uint8Array[] = [
  zipSync({ 'r.xml': strToU8(reportFixture('google-dmarc.xml')) }),
  gzipSync(reportFixture('outlook-dmarc.xml')),
  gzipSync(reportFixture('microsoft-tlsrpt.json')),
  Buffer.from(reportFixture('foreign-dmarc.xml')),
  Buffer.from(reportFixture('google-tlsrpt.json')),
  Buffer.from(googleDmarcMail(TO)),
  Buffer.from(outlookDmarcMail(TO)),
  Buffer.from(yahooDmarcMail(TO)),
  Buffer.from(tlsRptMail('tls-reports@bounce.example.test', 'google-tlsrpt.json')),
];

async function readsSafely(bytes: Uint8Array): Promise<void> {
  const r = await readAggregateReport(bytes, limits);
  if (!r.ok) {
    expect(REPORT_REFUSALS).toContain(r.reason);
    expect(r.reason).not.toBe('internal-error');
  }
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 64 }) }),
);

function mutate(original: Uint8Array, mutations: Array<{ kind: 'flip' | 'cut' | 'splice'; at: number; value?: number; bytes?: Uint8Array }>): Uint8Array {
  let b = Buffer.from(original);
  for (const m of mutations) {
    const at = b.length ? m.at % b.length : 0;
    if (m.kind === 'flip') b[at] = m.value ?? 0;
    else if (m.kind === 'cut') b = b.subarray(0, at);
    else b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes ?? []), b.subarray(at)]);
  }
  return b;
}

describe('aggregate report reading never throws', () => {
  it('random bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 20_000 }), (bytes) => readsSafely(bytes)),
      { numRuns: 150 },
    );
  });

  it('real archives and messages with bytes flipped, cut or spliced in', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: originals.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 3 }), (i, mutations) =>
        readsSafely(mutate(originals[i], mutations)),
      ),
      { numRuns: 300 },
    );
  });
});
