import { describe, expect, it } from 'vitest';
import { displayWebhookUrl, webhookUrlProblem } from '../../../src/lib/webhook-url.js';

describe('webhookUrlProblem', () => {
  it.each(['https://booking.example.org/hooks/kurir', 'http://127.0.0.1:9/x?token=abc', 'https://h.example/p#f', 'HTTPS://H.EXAMPLE'])(
    '%s is a webhook URL',
    (url) => {
      expect(webhookUrlProblem(url)).toBeNull();
    },
  );

  it.each([
    ['ftp://x', /^an http:\/\/ or https:\/\/ URL$/],
    ['http://', /^an http/],
    ['http://user:hunter2pass@127.0.0.1:9/x', /^no user name or password in the URL/],
    ['http://user@127.0.0.1:9/x', /^no user name or password/],
    ['https://:pw@h.example/', /^no user name or password/],
  ])('%s is refused', (url, message) => {
    expect(webhookUrlProblem(url)).toMatch(message);
  });
});

describe('displayWebhookUrl', () => {
  it.each([
    ['https://booking.example.org/hooks/kurir', 'https://booking.example.org/hooks/kurir'],
    ['http://127.0.0.1:9/x?token=sekrit123', 'http://127.0.0.1:9/x?token=…'],
    ['http://h.test/x?token=a&key=b&flag', 'http://h.test/x?token=…&key=…&…'],
    ['http://h.test/x?sekrit', 'http://h.test/x?…'],
    ['http://h.test/x?a=1#frag-secret', 'http://h.test/x?a=…#…'],
    ['http://h.test/x#frag?not=query', 'http://h.test/x#…'],
    ['http://h.test/x?', 'http://h.test/x?'],
    // Stored before user info was refused: the password is not shown.
    ['http://user:hunter2pass@127.0.0.1:9/x', 'http://user:…@127.0.0.1:9/x'],
  ])('%s → %s', (url, shown) => {
    expect(displayWebhookUrl(url)).toBe(shown);
  });
});
