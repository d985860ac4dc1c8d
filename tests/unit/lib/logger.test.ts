import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, LOG_REDACTED, maskAddresses, serializeRequest } from '../../../src/lib/logger.js';

function capture(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString('utf8')));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

describe('createLogger redaction', () => {
  it('never writes credentials, at the top level or one object down', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        authorization: 'Bearer top-secret-key',
        req: { headers: { authorization: 'Bearer header-key', cookie: 'sid=1' } },
        auth: { user: 'booking', pass: 'smtp-s3cret' },
        smarthost: { password: 'relay-s3cret' },
        metrics: { token: 'metrics-s3cret' },
        webhook: { secret: 'hmac-s3cret' },
        mailgun: { signingKey: 'mg-s3cret' },
        apiKey: 'api-s3cret',
      },
      'x',
    );
    const line = lines[0];
    expect(line.authorization).toBe(LOG_REDACTED);
    expect(line.auth).toEqual({ user: 'booking', pass: LOG_REDACTED });
    expect(line.smarthost.password).toBe(LOG_REDACTED);
    expect(line.metrics.token).toBe(LOG_REDACTED);
    expect(line.webhook.secret).toBe(LOG_REDACTED);
    expect(line.mailgun.signingKey).toBe(LOG_REDACTED);
    expect(line.apiKey).toBe(LOG_REDACTED);
    expect(JSON.stringify(line)).not.toMatch(/s3cret|top-secret|header-key|sid=1/);
  });

  it('never writes message content', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        raw: Buffer.from('Subject: hi\r\n\r\nbody'),
        message: { text: 'hello', html: '<p>hello</p>', attachments: [{ content: 'AAAA' }] },
        body: { to: ['a@b.test'] },
      },
      'x',
    );
    expect(lines[0]).toMatchObject({ raw: LOG_REDACTED, body: LOG_REDACTED, message: { text: LOG_REDACTED, html: LOG_REDACTED, attachments: LOG_REDACTED } });
  });

  it('serializes fastify requests without headers and with mailboxes in the URL masked', () => {
    const out = serializeRequest({ method: 'GET', url: '/v1/suppressions/jane.doe%40example.org?x=1', ip: '127.0.0.1', socket: { remotePort: 4000 } });
    expect(out).toEqual({ method: 'GET', url: '/v1/suppressions/…%40example.org?x=1', host: undefined, remoteAddress: '127.0.0.1', remotePort: 4000 });
    const { logger, lines } = capture();
    logger.info({ req: { method: 'POST', url: '/v1/messages?to=a@example.org,b@example.net', headers: { authorization: 'Bearer k' } } }, 'incoming request');
    expect(lines[0].req).toEqual({ method: 'POST', url: '/v1/messages?to=…@example.org,…@example.net' });
  });
});

describe('maskAddresses', () => {
  it.each([
    ['jane@example.org is suppressed (hard bounce)', '…@example.org is suppressed (hard bounce)'],
    ['rcpt: <a.b+tag@sub.example.co.uk> refused', 'rcpt: <…@sub.example.co.uk> refused'],
    ['550 5.1.1 x@y.test, z@w.test', '550 5.1.1 …@y.test, …@w.test'],
    ['no address here: 5.7.1 Sender domain not allowed', 'no address here: 5.7.1 Sender domain not allowed'],
    // Quoted local parts, with a space or an @ inside (found 1 Dec 2026 in refusal lines: logged whole).
    ['550 5.1.1 "john doe"@dest.test is suppressed (hard-bounce)', '550 5.1.1 …@dest.test is suppressed (hard-bounce)'],
    ['to[0]: ""a@b"@dest.test" is not an e-mail address', 'to[0]: "…@dest.test" is not an e-mail address'],
    ['RCPT TO: <"x\\"y"@Dest.test> refused', 'RCPT TO: <…@Dest.test> refused'],
    // Badly quoted local parts (refused, but logged): nothing of the mailbox is left (until 2 Dec 2026 `"john` was).
    ['RCPT TO:<"john doe@example.org> refused', 'RCPT TO:<…@example.org> refused'],
    ['550 5.1.3 bad address <"a"b"@example.org>', '550 5.1.3 bad address <…@example.org>'],
    ['to="a\\"@example.org', 'to=…@example.org'],
    // The text around an address is not taken for a quoted local part.
    ['{"to":"a@example.org"}', '{"to":…@example.org"}'],
    // A stray quote before an address takes the words between with it: too much is masked, never too little.
    ['refused "x" for bob@example.org', 'refused …@example.org'],
  ])('%s', (input, expected) => {
    expect(maskAddresses(input)).toBe(expected);
  });
});

// Found 2 Dec 2026: request URLs with a non-ASCII address leaked the mailbox (`user%40b%C3%BCcher.example` whole,
// `j%C3%BCrgen.m%C3%BCller%40…` all but `j%C3`): the domain pattern took no percent-encoded IDN, the local part no `%`.
describe('maskAddresses in URLs and with non-ASCII addresses', () => {
  it.each([
    ['/v1/suppressions/user%40b%C3%BCcher.example', '/v1/suppressions/…%40b%C3%BCcher.example'],
    ['/v1/messages?to=applicant%40b%C3%BCcher.example', '/v1/messages?to=…%40b%C3%BCcher.example'],
    ['/v1/messages?to=j%C3%BCrgen.m%C3%BCller%40example.org', '/v1/messages?to=…%40example.org'],
    ['/v1/messages?to=J%C3%BCrgen%40B%C3%BCCHER.example&reference=x', '/v1/messages?to=…%40B%C3%BCCHER.example&reference=x'],
    ['/v1/suppressions/%E7%94%A8%E6%88%B7%40%E4%BE%8B%E5%AD%90.%E5%B9%BF%E5%91%8A', '/v1/suppressions/…%40%E4%BE%8B%E5%AD%90.%E5%B9%BF%E5%91%8A'],
    ['/v1/suppressions/jane%40xn--bcher-kva.example', '/v1/suppressions/…%40xn--bcher-kva.example'],
    ['/v1/messages?to=a%40x.org%2Cb%40y.org', '/v1/messages?to=…%40x.org%2C…%40y.org'],
    ['/v1/messages?to=a%40x.org,b%40y.org&x=1', '/v1/messages?to=…%40x.org,…%40y.org&x=1'],
    ['/v1/messages?to=a%2Bb%40x.org', '/v1/messages?to=…%40x.org'],
    ['/v1/messages?to=%22john%20doe%22%40x.org', '/v1/messages?to=…%40x.org'],
    ['/v1/messages?to=%22john%2Cdoe%22%40x.org', '/v1/messages?to=…%40x.org'],
    ['/v1/messages?to=a.b%40x.org#frag', '/v1/messages?to=…%40x.org#frag'],
    ['/v1/messages?to=jane%40', '/v1/messages?to=…%40…'],
    ['/v1/messages?to=jane%40&reference=r', '/v1/messages?to=…%40…&reference=r'],
    ['/v1/suppressions/jane@b%C3%BCcher.example', '/v1/suppressions/…@b%C3%BCcher.example'],
    ['/v1/messages?to=100%25%40x.org', '/v1/messages?to=…%40x.org'],
    // Plain UTF-8 in free text.
    ['jürgen.müller@bücher.example is suppressed', '…@bücher.example is suppressed'],
    ['550 5.1.1 <用户@例子.广告> refused', '550 5.1.1 <…@例子.广告> refused'],
    ['rcpt ok: jane@localhost', 'rcpt ok: …@localhost'],
    // Not addresses: left alone.
    ['/v1/messages?reference=booking-4711', '/v1/messages?reference=booking-4711'],
    ['/v1/messages?to=a%2540x.org', '/v1/messages?to=a%2540x.org'],
    ['/v1/queue?provider=gmail%2Ecom', '/v1/queue?provider=gmail%2Ecom'],
  ])('%s', (input, expected) => {
    expect(maskAddresses(input)).toBe(expected);
  });

  it('masks the request line of a lookup by a non-ASCII address', () => {
    const out = serializeRequest({ method: 'GET', url: '/v1/suppressions/j%C3%BCrgen.m%C3%BCller%40b%C3%BCcher.example', ip: '::1' });
    expect(out.url).toBe('/v1/suppressions/…%40b%C3%BCcher.example');
  });

  it('never leaves a byte of the mailbox, whatever it is made of', () => {
    for (const local of ['jürgen.müller', 'ÿ', 'a+b', "o'brien", 'x_y-z', '用户', 'a%b']) {
      const url = `/v1/messages?to=${encodeURIComponent(`${local}@bücher.example`)}`;
      const masked = maskAddresses(url);
      expect(masked).toBe(`/v1/messages?to=…%40${encodeURIComponent('bücher.example')}`);
      expect(maskAddresses(`${local}@bücher.example`)).toBe('…@bücher.example');
    }
  });

  it('stays cheap on a long URL without an address and on one with many', () => {
    const noAddress = `/v1/messages?to=${'a'.repeat(8000)} %40x`;
    const many = `/v1/messages?to=${Array.from({ length: 500 }, (_, i) => `j%C3%BC${i}%40example.org`).join('%2C')}`;
    const start = performance.now();
    maskAddresses(noAddress);
    const masked = maskAddresses(many);
    expect(performance.now() - start).toBeLessThan(100);
    expect(masked).not.toMatch(/%C3%BC\d/);
    expect(masked.split('…%40example.org')).toHaveLength(501);
  });
});
