/**
 * Reads the receiver's verdicts from an `Authentication-Results` header (RFC 8601): the dkim, spf and
 * dmarc results as the receiving MX saw them. Pure: no I/O.
 */

/** The receiver's verdicts; a method the header does not mention is absent. */
export interface AuthVerdicts {
  /** authserv-id of the header, e.g. `mx.google.com`. */
  authservId?: string;
  dkim?: string;
  spf?: string;
  dmarc?: string;
}

const METHODS = ['dkim', 'spf', 'dmarc'] as const;

/** Unfolds header lines and drops RFC 5322 comments (parentheses), which may contain `dkim=` text of their own. */
function clean(value: string): string {
  let out = '';
  let depth = 0;
  for (const ch of value.replace(/\r?\n[ \t]+/g, ' ')) {
    if (ch === '(') depth++;
    else if (ch === ')' && depth > 0) depth--;
    else if (depth === 0) out += ch;
  }
  return out;
}

/**
 * Parses one Authentication-Results value (without the field name). For a method reported several
 * times (two DKIM signatures), `pass` wins if any passed, else the first result is kept.
 */
export function parseAuthResults(value: string): AuthVerdicts {
  const text = clean(value);
  const [head, ...rest] = text.split(';');
  const out: AuthVerdicts = {};
  const id = head.trim().split(/\s+/)[0];
  if (id && !id.includes('=')) out.authservId = id;
  for (const part of id?.includes('=') ? [head, ...rest] : rest) {
    const m = /^\s*([a-z-]+)\s*=\s*([a-z]+)/i.exec(part);
    if (!m) continue;
    const method = m[1].toLowerCase() as (typeof METHODS)[number];
    if (!METHODS.includes(method)) continue;
    const result = m[2].toLowerCase();
    if (out[method] === undefined || result === 'pass') out[method] = result;
  }
  return out;
}

/**
 * The verdicts of the topmost Authentication-Results field in a raw header block: the one the receiving
 * MX added last (fields below it may come from earlier hops, or be forged by the sender).
 */
export function receiverVerdicts(headerBlock: string): AuthVerdicts | undefined {
  const m = /(?:^|\r?\n)authentication-results:[ \t]*((?:[^\r\n]*)(?:\r?\n[ \t][^\r\n]*)*)/i.exec(headerBlock);
  return m ? parseAuthResults(m[1]) : undefined;
}
