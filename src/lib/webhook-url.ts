/**
 * Webhook URLs: what a valid one looks like (configuration and `/v1/credentials` alike), and how one is shown
 * in views, the audit log and log lines without what may be a secret in it (docs/webhooks.md#the-url).
 */

/** An http:// or https:// URL with a host. */
const WEBHOOK_URL = /^https?:\/\/[^\s/?#]+[^\s]*$/i;

/** The rule in words, for error messages. */
export const WEBHOOK_URL_RULE = 'an http:// or https:// URL';

/**
 * Why `url` is no webhook URL, or null when it is one. A user name or password in it is refused: Kurir would
 * show and audit it with the URL, and fetch() does not send it anyway (a Request with credentials in its URL
 * cannot be built); the receiver checks the Kurir-Signature made with the webhook's secret instead.
 */
export function webhookUrlProblem(url: string): string | null {
  if (!WEBHOOK_URL.test(url)) return WEBHOOK_URL_RULE;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return WEBHOOK_URL_RULE;
  }
  if (parsed.username !== '' || parsed.password !== '') {
    return 'no user name or password in the URL (user:pass@host): Kurir sends none; the receiver verifies the Kurir-Signature header made with webhook.secret';
  }
  return null;
}

/**
 * The URL as it may be shown: every query-string value and the fragment as `…` (`?token=…&key=…`, a bare
 * `?s3cret` as `?…`), a password in it (stored before user info was refused) as `…`. Delivery uses the real URL.
 */
export function displayWebhookUrl(url: string): string {
  const q = url.search(/[?#]/);
  const base = (q < 0 ? url : url.slice(0, q)).replace(/^([a-z]+:\/\/[^/@]*?:)[^/@]*@/i, '$1…@');
  if (q < 0) return base;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  const shownQuery =
    url[q] === '?'
      ? `?${query
          .split('&')
          .map((p) => (p === '' ? p : p.includes('=') ? `${p.slice(0, p.indexOf('=') + 1)}…` : '…'))
          .join('&')}`
      : '';
  return `${base}${shownQuery}${hash < 0 ? '' : '#…'}`;
}
