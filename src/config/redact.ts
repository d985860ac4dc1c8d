/**
 * Keeps secrets out of configuration messages: API keys, passwords, tokens, signing keys, HMAC secrets
 * and the password in a Redis URL are never echoed, whatever went wrong with them.
 */

/** Field names whose string values are secrets wherever they appear (apiKeys[].key, smtpAccounts[].password, ...). */
const SECRET_FIELDS = new Set(['key', 'password', 'pass', 'token', 'secret', 'signingKey', 'masterKey', 'previousMasterKey']);

/**
 * Keys whose values hold secrets further down (a list of API keys, the smarthost's user and pass, a
 * webhook's secret, Mailgun's signing key): a value of the wrong type there (`KURIR_API_KEYS=<a key>`)
 * is likely the secret itself, so only its type is shown.
 */
const SECRET_HOLDERS = new Set(['apiKeys', 'smtpAccounts', 'smarthost', 'webhook', 'mailgun', 'auth']);

/** What is shown instead of a secret value. */
export const REDACTED = '<redacted>';

/** Whether the value at this config path is a secret. */
export function isSecretPath(path: ReadonlyArray<string | number>): boolean {
  const last = path.at(-1);
  return typeof last === 'string' && SECRET_FIELDS.has(last);
}

/** `redis://user:pass@host` → `redis://user:<redacted>@host` (anywhere in the text). */
function redactUrlPassword(url: string): string {
  return url.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@/\s]*@/gi, `$1:${REDACTED}@`);
}

/**
 * A value for a message: JSON for a plain value, `<redacted>` for a secret (of whatever type), any URL
 * without its password, only the shape of a list or mapping (a secret in the wrong place of one cannot
 * be recognised, so none of its contents is shown), and only the type of a plain value where a
 * mapping or list holding secrets belongs.
 */
export function showValue(path: ReadonlyArray<string | number>, value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (isSecretPath(path)) return REDACTED;
  if (Array.isArray(value)) return `(a list of ${value.length})`;
  if (typeof value === 'object') return '(a mapping)';
  const last = path.at(-1);
  if (typeof last === 'string' && SECRET_HOLDERS.has(last)) return `(a ${typeof value}, not shown)`;
  if (typeof value === 'string') return JSON.stringify(redactUrlPassword(value));
  return JSON.stringify(value);
}
