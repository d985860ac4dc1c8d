/**
 * CSV cells a spreadsheet will not run as a formula (OWASP "CSV injection"): a value that starts with `=`, `+`,
 * `-`, `@`, a tab or a carriage return is written with a `'` in front, which spreadsheets show as text. So that an
 * export imports back to the same values, a value that already starts with quotes followed by one of those
 * (`'=x`) gets one more quote too, and the import takes one quote off exactly the values of that shape
 * (docs/feedback.md#suppression-list-administration).
 */

/** One or more quotes, then a character a spreadsheet takes as the start of a formula. */
const ESCAPED = /^'+[=+\-@\t\r]/;
/** Zero or more quotes, then such a character: the values an export prefixes. */
const NEEDS_ESCAPE = /^'*[=+\-@\t\r]/;

/** `=HYPERLINK(…)` → `'=HYPERLINK(…)`; `'=x` → `''=x`; anything else unchanged. */
export function spreadsheetSafe(value: string): string {
  return NEEDS_ESCAPE.test(value) ? `'${value}` : value;
}

/** The inverse of {@link spreadsheetSafe}: `'=x` → `=x`, `''=x` → `'=x`; anything else unchanged. */
export function fromSpreadsheetSafe(value: string): string {
  return ESCAPED.test(value) ? value.slice(1) : value;
}
