/**
 * Suppression list administration shared by the HTTP admin API and the CLI: CSV export and an
 * all-or-nothing CSV import that validates every row before anything is written.
 *
 * CSV (RFC 4180): columns `address,reason,source,at,messageId`; a header row is optional on import (when
 * present its columns may come in any order; `address` and `reason` are required); `at` is ISO 8601 or
 * Unix milliseconds; fields with a comma, quote or line break are quoted, quotes doubled. A field a spreadsheet
 * would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) is exported with a `'` in front, which the import
 * takes off again (src/lib/spreadsheet-cell.ts).
 */
import { normalizeAddress } from '../lib/address.js';
import { KurirError } from '../lib/errors.js';
import { fromSpreadsheetSafe, spreadsheetSafe } from '../lib/spreadsheet-cell.js';
import type { Suppression, SuppressionStore } from '../store/suppression-store.js';

export const CSV_COLUMNS = ['address', 'reason', 'source', 'at', 'messageId'] as const;
type Column = (typeof CSV_COLUMNS)[number];

/** Rows one import may carry (one MULTI/EXEC). */
export const MAX_IMPORT_ROWS = 100_000;
/** Errors listed in a refusal (the total is always given). */
export const MAX_REPORTED_ERRORS = 100;
const MAX_REASON = 200;
const MAX_SOURCE = 100;

export interface CsvRowError {
  /** 1-based line of the file where the row starts. */
  line: number;
  field?: string;
  message: string;
}

/** A CSV record with the line it starts on. */
interface CsvRecord {
  line: number;
  fields: string[];
}

/** Splits CSV text into records; quoted fields may hold commas, quotes ("") and line breaks. */
export function parseCsv(text: string): { records: CsvRecord[]; error?: CsvRowError } {
  const records: CsvRecord[] = [];
  let line = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (i < text.length) {
    const start = line;
    const fields: string[] = [];
    let field = '';
    let quoted = false;
    let atFieldStart = true;
    for (;;) {
      if (i >= text.length) {
        if (quoted) return { records, error: { line: start, message: 'unterminated quoted field' } };
        fields.push(field);
        break;
      }
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') {
          field += '"';
          i += 2;
        } else if (c === '"') {
          quoted = false;
          i++;
        } else {
          if (c === '\n') line++;
          field += c;
          i++;
        }
        continue;
      }
      if (c === '"' && atFieldStart) {
        quoted = true;
        atFieldStart = false;
        i++;
      } else if (c === ',') {
        fields.push(field);
        field = '';
        atFieldStart = true;
        i++;
      } else if (c === '\n' || c === '\r') {
        i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
        line++;
        fields.push(field);
        break;
      } else if (c === '"') {
        return { records, error: { line: start, message: 'a quote inside an unquoted field (quote the field and double the quote)' } };
      } else {
        field += c;
        atFieldStart = false;
        i++;
      }
    }
    if (!(fields.length === 1 && fields[0].trim() === '')) records.push({ line: start, fields });
  }
  return { records };
}

function csvField(raw: string): string {
  const value = spreadsheetSafe(raw);
  return /[",\r\n]/.test(value) || value !== value.trim() ? `"${value.replace(/"/g, '""')}"` : value;
}

/** The CSV header line. */
export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

/** One entry as a CSV line (CRLF-terminated). */
export function csvLine(e: Suppression): string {
  return `${[e.address, e.reason, e.source, new Date(e.at).toISOString(), e.messageId ?? ''].map(csvField).join(',')}\r\n`;
}

/** Streams the whole list (optionally filtered) as CSV text chunks, header first; `onRows` hears the rows of each page as it goes out. */
export async function* exportCsv(
  store: SuppressionStore,
  filter: { domain?: string; reason?: string } = {},
  onRows: (rows: number) => void = () => undefined,
): AsyncGenerator<string> {
  yield csvHeader();
  for await (const page of store.all(filter)) {
    onRows(page.length);
    yield page.map(csvLine).join('');
  }
}

function parseAt(value: string): number | null {
  if (/^\d{1,15}$/.test(value)) return Number(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

function hasControls(value: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  return /[\x00-\x1f\x7f]/.test(value);
}

/**
 * Validates every row of an import; returns the entries only when all rows are valid, otherwise the
 * errors of every invalid row (with line numbers).
 */
export function parseSuppressionCsv(text: string, opts: { now: number; defaultSource: string }): { entries: Suppression[]; errors: CsvRowError[] } {
  const parsed = parseCsv(text);
  const errors: CsvRowError[] = parsed.error ? [parsed.error] : [];
  let records = parsed.records;
  let columns: Column[] = [...CSV_COLUMNS];
  const lower = (n: string): string => n.trim().toLowerCase();
  const head = records[0];
  // A header row: no address in it, and it names the address or reason column (any case, any order).
  if (head && !head.fields.some((f) => f.includes('@')) && head.fields.some((f) => ['address', 'reason'].includes(lower(f)))) {
    records = records.slice(1);
    const names = head.fields.map((f) => CSV_COLUMNS.find((c) => c.toLowerCase() === lower(f)) ?? f.trim());
    const unknown = names.filter((n) => !(CSV_COLUMNS as readonly string[]).includes(n));
    const dupes = names.filter((n, i) => names.indexOf(n) !== i);
    if (unknown.length) errors.push({ line: head.line, message: `unknown column(s) ${unknown.join(', ')}; expected ${CSV_COLUMNS.join(',')}` });
    if (dupes.length) errors.push({ line: head.line, message: `duplicate column(s) ${dupes.join(', ')}` });
    if (!names.includes('reason')) errors.push({ line: head.line, message: 'the reason column is required' });
    columns = names as Column[];
  }
  if (records.length > MAX_IMPORT_ROWS) errors.push({ line: records[MAX_IMPORT_ROWS].line, message: `at most ${MAX_IMPORT_ROWS} rows per import` });
  if (!records.length && !errors.length) errors.push({ line: 1, message: 'no rows to import' });
  if (errors.length) return { entries: [], errors };

  const entries: Suppression[] = [];
  const seen = new Map<string, number>();
  for (const rec of records) {
    const bad = (message: string, field?: string): void => void errors.push({ line: rec.line, field, message });
    if (rec.fields.length > columns.length) {
      bad(`${rec.fields.length} fields, at most ${columns.length} expected (${columns.join(',')})`);
      continue;
    }
    const row: Partial<Record<Column, string>> = {};
    columns.forEach((c, i) => {
      row[c] = fromSpreadsheetSafe(rec.fields[i]?.trim() ?? '');
    });
    const before = errors.length;
    let address = '';
    try {
      address = normalizeAddress(row.address ?? '', 'address');
    } catch (err) {
      bad(err instanceof KurirError ? err.message : 'address: invalid', 'address');
    }
    const reason = row.reason ?? '';
    if (!reason) bad('reason: is required', 'reason');
    else if (reason.length > MAX_REASON || hasControls(reason)) bad(`reason: at most ${MAX_REASON} printable characters`, 'reason');
    const source = row.source || opts.defaultSource;
    if (source.length > MAX_SOURCE || hasControls(source)) bad(`source: at most ${MAX_SOURCE} printable characters`, 'source');
    const at = row.at ? parseAt(row.at) : opts.now;
    if (at === null) bad(`at: "${row.at}" is neither ISO 8601 nor Unix milliseconds`, 'at');
    const messageId = row.messageId || undefined;
    if (messageId !== undefined && (messageId.length > 200 || hasControls(messageId))) bad('messageId: at most 200 printable characters', 'messageId');
    if (address) {
      const first = seen.get(address.toLowerCase());
      if (first !== undefined) bad(`address: ${address} is also on line ${first}`, 'address');
      else seen.set(address.toLowerCase(), rec.line);
    }
    if (errors.length === before) entries.push({ address, reason, source, at: at as number, ...(messageId ? { messageId } : {}) });
  }
  return errors.length ? { entries: [], errors } : { entries, errors };
}

/**
 * Imports a CSV all or nothing: throws VALIDATION listing every invalid row (line numbers) and writes
 * nothing; otherwise writes every row in one transaction. Existing entries for the same address are replaced.
 */
export async function importSuppressionCsv(
  store: SuppressionStore,
  text: string,
  opts: { now: number; defaultSource: string },
): Promise<{ imported: number; added: number }> {
  const { entries, errors } = parseSuppressionCsv(text, opts);
  if (errors.length) {
    const first = errors[0];
    throw new KurirError('VALIDATION', `CSV has ${errors.length} invalid row(s), nothing was imported; line ${first.line}: ${first.message}`, {
      field: 'body',
      details: { errorCount: errors.length, errors: errors.slice(0, MAX_REPORTED_ERRORS) },
    });
  }
  const added = await store.addMany(entries);
  return { imported: entries.length, added };
}
