/** The rspamd client against plain HTTP servers on loopback: request headers, verdict parsing, failure reasons. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { actionLabel } from '../../../src/scoring/pre-send-scorer.js';
import { checkWithRspamd, RspamdUnavailable } from '../../../src/scoring/rspamd-client.js';

const env = { ip: '192.0.2.10', helo: 'mail.example.test', mailFrom: 'b+id.tok@bounce.example.test', recipients: ['a@x.test', '用户@y.test'], queueId: 'id1' };
let server: Server | undefined;

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

describe('checkWithRspamd', () => {
  it('posts the message to /checkv2 with one Rcpt header per recipient and parses the verdict, symbols highest first', async () => {
    let seen: { url?: string; headers?: IncomingHttpHeaders; raw?: string[]; body?: string } = {};
    const url = await serve((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen = { url: req.url, headers: req.headers, raw: req.rawHeaders, body };
        res.end(JSON.stringify({ score: 3.5, required_score: 15, action: 'no action', symbols: { A: { score: 0.5 }, B: { score: 3 }, C: { score: -1 } } }));
      });
    });
    const v = await checkWithRspamd(url, 1000, Buffer.from('Subject: x\r\n\r\nhi\r\n'), env);
    expect(v).toEqual({
      score: 3.5,
      requiredScore: 15,
      action: 'no action',
      symbols: [
        { name: 'B', score: 3 },
        { name: 'A', score: 0.5 },
        { name: 'C', score: -1 },
      ],
    });
    expect(seen.url).toBe('/checkv2');
    expect(seen.body).toBe('Subject: x\r\n\r\nhi\r\n');
    expect(seen.headers).toMatchObject({ ip: '192.0.2.10', helo: 'mail.example.test', hostname: 'mail.example.test', from: env.mailFrom, 'queue-id': 'id1' });
    const rcpts = seen.raw!.filter((_, i) => i % 2 === 1 && seen.raw![i - 1].toLowerCase() === 'rcpt');
    // An internationalised address goes out as its UTF-8 bytes (node reads header bytes as latin1).
    expect(rcpts.map((r) => Buffer.from(r, 'latin1').toString('utf8'))).toEqual(['a@x.test', '用户@y.test']);
  });

  it('names why there is no verdict: bad-answer (HTTP error or not a verdict), unreachable, timeout', async () => {
    const reason = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'none',
        (e: unknown) => (e instanceof RspamdUnavailable ? e.reason : `other: ${String(e)}`),
      );
    let url = await serve((_req, res) => {
      res.statusCode = 503;
      res.end('busy');
    });
    expect(await reason(checkWithRspamd(url, 1000, Buffer.from('x'), env))).toBe('bad-answer');
    await new Promise((r) => server!.close(r));
    server = undefined;
    url = await serve((_req, res) => res.end('{"nothing": true}'));
    expect(await reason(checkWithRspamd(url, 1000, Buffer.from('x'), env))).toBe('bad-answer');
    server!.closeAllConnections();
    await new Promise((r) => server!.close(r));
    server = undefined;
    // The closed server's port now refuses connections.
    expect(await reason(checkWithRspamd(url, 1000, Buffer.from('x'), env))).toBe('unreachable');
    url = await serve(() => undefined);
    const started = Date.now();
    expect(await reason(checkWithRspamd(url, 200, Buffer.from('x'), env))).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('actionLabel', () => {
  it('maps rspamd actions to bounded label values', () => {
    expect(['no action', 'add header', 'rewrite subject', 'soft reject', 'reject', 'greylist', 'discard'].map(actionLabel)).toEqual([
      'no-action',
      'add-header',
      'rewrite-subject',
      'soft-reject',
      'reject',
      'greylist',
      'other',
    ]);
  });
});
