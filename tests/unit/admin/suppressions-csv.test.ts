import { describe, expect, it } from 'vitest';
import { csvLine, parseCsv, parseSuppressionCsv } from '../../../src/admin/suppressions.js';

const opts = { now: Date.parse('2025-01-01T00:00:00Z'), defaultSource: 'import' };

describe('CSV parsing', () => {
  it('handles quotes, doubled quotes, commas and line breaks inside quotes, CRLF and a BOM', () => {
    const { records, error } = parseCsv('\ufeffa,"b,c"\r\n"d ""e""","multi\nline"\n\nlast');
    expect(error).toBeUndefined();
    expect(records).toEqual([
      { line: 1, fields: ['a', 'b,c'] },
      { line: 2, fields: ['d "e"', 'multi\nline'] },
      { line: 5, fields: ['last'] },
    ]);
  });

  it('reports an unterminated quote and a stray quote with their line', () => {
    expect(parseCsv('ok,1\n"open,2').error).toEqual({ line: 2, message: 'unterminated quoted field' });
    expect(parseCsv('ok,1\nab"c,2').error?.line).toBe(2);
  });
});

describe('suppression CSV import', () => {
  it('accepts rows without a header in the export column order, with defaults', () => {
    const r = parseSuppressionCsv('A@Example.ORG,hard-bounce\nb@example.org,complaint,fbl,1700000000000,m1\n', opts);
    expect(r.errors).toEqual([]);
    expect(r.entries).toEqual([
      { address: 'A@example.org', reason: 'hard-bounce', source: 'import', at: opts.now },
      { address: 'b@example.org', reason: 'complaint', source: 'fbl', at: 1700000000000, messageId: 'm1' },
    ]);
  });

  it('maps header columns in any order and refuses unknown columns', () => {
    expect(parseSuppressionCsv('reason,address\nmanual,c@example.org', opts).entries[0]).toMatchObject({ address: 'c@example.org', reason: 'manual' });
    expect(parseSuppressionCsv('address,reason,colour\nc@example.org,manual,red', opts).errors[0]).toMatchObject({ line: 1 });
    expect(parseSuppressionCsv('address\nc@example.org', opts).errors[0].message).toMatch(/reason column/);
  });

  it('lists every bad row and returns no entries when any row is bad', () => {
    const r = parseSuppressionCsv(
      "ok@example.org,manual\nbad,manual\nok2@example.org,manual,,13 o'clock\nok@example.org,manual\nx@example.org,manual,s,1,m,extra\n",
      opts,
    );
    expect(r.entries).toEqual([]);
    expect(r.errors.map((e) => [e.line, e.field])).toEqual([
      [2, 'address'],
      [3, 'at'],
      [4, 'address'],
      [5, undefined],
    ]);
    expect(parseSuppressionCsv('\n\n', opts).errors[0].message).toBe('no rows to import');
  });

  // Found 2 Dec 2026: a reason `=HYPERLINK(…)` was exported as is, and a spreadsheet ran it as a formula.
  it.each([
    ['=HYPERLINK("http://x.test","click")', `"'=HYPERLINK(""http://x.test"",""click"")"`],
    ['@SUM(1+1)', "'@SUM(1+1)"],
    ['+1', "'+1"],
    ['-2+3', "'-2+3"],
    ["'=already quoted", "''=already quoted"],
    ["''@x", "'''@x"],
    ["it's fine", "it's fine"],
    ["'plain", "'plain"],
    ['hard-bounce', 'hard-bounce'],
  ])('exports the reason %s as %s, a formula as text, and imports it back unchanged', (reason, cell) => {
    const e = { address: 'q@example.org', reason, source: 'fbl', at: 1700000000000 };
    const line = csvLine(e);
    expect(line).toBe(`q@example.org,${cell},fbl,2023-11-14T22:13:20.000Z,\r\n`);
    expect(parseSuppressionCsv(line, opts).entries).toEqual([e]);
  });

  it('neutralises every column: an address, a source or a message id starting with - + = @', () => {
    const e = { address: '-dash@example.org', reason: 'manual', source: '@ops', at: 1700000000000, messageId: '=1+1' };
    expect(csvLine(e)).toBe("'-dash@example.org,manual,'@ops,2023-11-14T22:13:20.000Z,'=1+1\r\n");
    expect(parseSuppressionCsv(csvLine(e), opts).entries).toEqual([e]);
  });

  it("takes one quote off a hand-written '= value (read as the export's escape), none off other quotes", () => {
    const r = parseSuppressionCsv("a@example.org,'=x\nb@example.org,'manual\nc@example.org,''-y\n", opts);
    expect(r.entries.map((x) => x.reason)).toEqual(['=x', "'manual", "'-y"]);
  });

  it('round-trips what csvLine writes', () => {
    const e = { address: 'q@example.org', reason: 'complaint, "abuse"', source: 'fbl', at: 1700000000000, messageId: 'm,1' };
    expect(parseSuppressionCsv(csvLine(e), opts).entries).toEqual([e]);
  });
});
