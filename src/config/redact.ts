/**
 * Keeps secrets out of configuration messages: API keys, passwords, tokens, signing keys, HMAC secrets
 * and the password in a Redis URL are never echoed, whatever went wrong with them.
 */

/** Field names whose string values are secrets wherever they appear (apiKeys[].key, smtpAccounts[].password, ...). */
const SECRET_FIELDS = new Set(['key', 'password', 'pass', 'token', 'secret', 'signingKey']);

/** What is shown instead of a secret value. */
export const REDACTED = '<redacted>';

/** Whether the value at this config path is a secret. */
export function isSecretPath(path: ReadonlyArray<string | number>): boolean {
  const last = path.at(-1);
  return typeof last === 'string' && SECRET_FIELDS.has(last);
}

/** `redis://user:pass@host` → `redis://user:<redacted>@host`. */
function redactUrlPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, `$1:${REDACTED}@`);
}

/** A copy of `value` (found at `path`) with every secret replaced by `<redacted>`. */
export function redactValue(path: ReadonlyArray<string | number>, value: unknown): unknown {
  if (typeof value === 'string') {
    if (isSecretPath(path)) return REDACTED;
    return path.at(-1) === 'url' ? redactUrlPassword(value) : value;
  }
  if (Array.isArray(value)) return value.map((v, i) => redactValue([...path, i], v));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue([...path, k], v)]));
  }
  return value;
}

/** A value for a message: JSON, except that a secret string shows as `<redacted>` (unquoted). */
export function showValue(path: ReadonlyArray<string | number>, value: unknown): string {
  if (typeof value === 'string' && isSecretPath(path)) return REDACTED;
  return JSON.stringify(redactValue(path, value));
}
