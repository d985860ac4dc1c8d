/**
 * A body over `http.maxMessageBytes` is answered 413 TOO_LARGE on a real socket, whatever the client does.
 * Until 2 Dec 2026 a client that wrote its whole body before reading (Python's http.client, curl without
 * `Expect`) got a reset instead: the 413 was sent, then the socket closed with the rest of the body unread, and
 * the kernel's RST took the answer with it. A client sending `Expect: 100-continue` got `100 Continue` first,
 * although its Content-Length was already over the limit, and then the same reset. A route with a smaller limit (the
 * ESP endpoints' 1 MiB, POST /v1/reports' twice feedback.reports.maxCompressedBytes) names its own limit in the 413;
 * until 2 Dec 2026 every 413 named http.maxMessageBytes.
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ESP_BODY_LIMIT } from '../../src/http/esp-routes.js';
import { MAILGUN_KEY } from '../helpers/esp.js';
import { ADMIN_KEY, API_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gatewayForFile } from '../helpers/file-gateway.js';

const MiB = 1024 * 1024;
/** The production default: a body of 11 MB does not fit the loopback socket buffers, so the client's write blocks. */
const LIMIT = 10 * MiB;
/** feedback.reports.maxCompressedBytes: POST /v1/reports takes twice as much. */
const REPORT_BYTES = 64 * 1024;
let t: TestGateway;

gatewayForFile(
  {
    overrides: {
      roles: ['api'],
      http: { maxMessageBytes: LIMIT },
      feedback: { reports: { maxCompressedBytes: REPORT_BYTES }, mailgun: { signingKey: MAILGUN_KEY } },
    },
  },
  (g) => {
    t = g;
  },
);

const head = (type: string, bytes: number, extra = '', key = API_KEY): string =>
  `POST /v1/messages?to=carol@dest.test HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nContent-Type: ${type}\r\nContent-Length: ${bytes}\r\n${extra}\r\n`;

/** Everything the server sends until it closes the connection (or `ms` pass), and how the connection ended. */
function readAll(s: Socket, ms = 10_000): Promise<{ text: string; error?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), error });
    });
    s.resume();
  });
}

/**
 * As Python's http.client does: writes the request head and the whole body, reading nothing until the last byte
 * is written; then reads the answer. A write the server resets ends the attempt (`BrokenPipeError` in Python).
 */
async function writeAllThenRead(headText: string, body: Buffer): Promise<{ text: string; error?: string }> {
  const s = connect(t.gateway.ports.http!, '127.0.0.1');
  s.pause();
  const written = await new Promise<string | null>((resolve) => {
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.once('connect', () => {
      s.write(headText);
      s.write(body, (err) => resolve(err ? ((err as NodeJS.ErrnoException).code ?? err.message) : null));
    });
  });
  if (written !== null) {
    s.destroy();
    return { text: '', error: `write failed: ${written}` };
  }
  return readAll(s);
}

const statusLine = (text: string): string => text.slice(0, text.indexOf('\r\n'));
const jsonOf = (text: string): any => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4));

describe('a client that writes its whole oversized body before reading', () => {
  const body = Buffer.alloc(11_000_000, 'x');

  it('gets 413 TOO_LARGE with Connection: close for message/rfc822', async () => {
    const got = await writeAllThenRead(head('message/rfc822', body.length), body);
    expect(got.error).toBeUndefined();
    expect(statusLine(got.text)).toBe('HTTP/1.1 413 Payload Too Large');
    expect(got.text.toLowerCase()).toContain('\r\nconnection: close\r\n');
    expect(jsonOf(got.text).error).toMatchObject({ code: 'TOO_LARGE', field: 'body', details: { limitBytes: LIMIT } });
  });

  it('gets 413 TOO_LARGE for JSON', async () => {
    const json = Buffer.concat([Buffer.from('{"from":"noreply@example.test","to":["a@dest.test"],"text":"'), body, Buffer.from('"}')]);
    const got = await writeAllThenRead(head('application/json', json.length), json);
    expect(got.error).toBeUndefined();
    expect(statusLine(got.text)).toBe('HTTP/1.1 413 Payload Too Large');
    expect(jsonOf(got.text).error).toMatchObject({ code: 'TOO_LARGE', details: { limitBytes: LIMIT } });
  });

  it('gets 413 when the body is chunked (no Content-Length), once the limit is passed', async () => {
    const chunk = Buffer.alloc(MiB, 'y');
    const chunked = Buffer.concat([
      ...Array.from({ length: 11 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])),
      Buffer.from('0\r\n\r\n'),
    ]);
    const text = `POST /v1/messages?to=carol@dest.test HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: message/rfc822\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const got = await writeAllThenRead(text, chunked);
    expect(got.error).toBeUndefined();
    expect(statusLine(got.text)).toBe('HTTP/1.1 413 Payload Too Large');
  });

  it('gets the 401 of a wrong key, not a reset', async () => {
    const got = await writeAllThenRead(head('message/rfc822', body.length, '', 'not-a-key-of-this-gateway'), body);
    expect(got.error).toBeUndefined();
    expect(statusLine(got.text)).toBe('HTTP/1.1 401 Unauthorized');
  });
});

describe('Expect: 100-continue', () => {
  /** Sends the head only and reads until the server closes or `ms` pass; the client sends no body. */
  async function headOnly(text: string, ms = 5000): Promise<string> {
    const s = connect(t.gateway.ports.http!, '127.0.0.1');
    await new Promise((resolve) => s.once('connect', resolve));
    s.write(text);
    return (await readAll(s, ms)).text;
  }

  it('a Content-Length over the limit is answered 413 at once, never 100 Continue (raw and JSON)', async () => {
    for (const type of ['message/rfc822', 'application/json']) {
      const text = await headOnly(head(type, LIMIT + 1, 'Expect: 100-continue\r\n'));
      expect(statusLine(text), type).toBe('HTTP/1.1 413 Payload Too Large');
      expect(text).not.toContain('100 Continue');
      expect(jsonOf(text).error).toMatchObject({ code: 'TOO_LARGE', details: { limitBytes: LIMIT } });
    }
  });

  it('a route with a smaller limit names that limit, not http.maxMessageBytes', async () => {
    const cases: Array<[string, string, number]> = [
      ['/v1/feedback/mailgun', '', ESP_BODY_LIMIT],
      ['/v1/reports', `Authorization: Bearer ${ADMIN_KEY}\r\n`, 2 * REPORT_BYTES],
    ];
    for (const [path, auth, limit] of cases) {
      expect(limit).toBeLessThan(LIMIT);
      const text = await headOnly(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Content-Type: application/json\r\nContent-Length: ${limit + 1}\r\nExpect: 100-continue\r\n\r\n`,
      );
      expect(statusLine(text), path).toBe('HTTP/1.1 413 Payload Too Large');
      expect(jsonOf(text).error, path).toEqual({
        code: 'TOO_LARGE',
        field: 'body',
        message: `Request body exceeds ${limit} bytes, the limit of POST ${path}`,
        details: { limitBytes: limit },
      });
    }
    const messages = await headOnly(head('message/rfc822', LIMIT + 1, 'Expect: 100-continue\r\n'));
    expect(jsonOf(messages).error.message).toBe(`Request body exceeds ${LIMIT} bytes, the limit of POST /v1/messages`);
  });

  it('a wrong key is answered 401 without 100 Continue', async () => {
    const text = await headOnly(head('message/rfc822', 100, 'Expect: 100-continue\r\n', 'not-a-key-of-this-gateway'));
    expect(statusLine(text)).toBe('HTTP/1.1 401 Unauthorized');
    expect(text).not.toContain('100 Continue');
  });

  it('a charset or Content-Encoding the route does not read is answered 415 at once, never 100 Continue', async () => {
    // Until 2 Dec 2026 these were refused by the body parser, after 100 Continue and the whole body.
    const cases: Array<[string, string, string]> = [
      ['application/json; charset=latin1', '', 'Content-Type'],
      ['application/json', 'Content-Encoding: gzip\r\n', 'Content-Encoding'],
      ['message/rfc822', 'Content-Encoding: gzip\r\n', 'Content-Encoding'],
    ];
    for (const [type, extra, field] of cases) {
      const text = await headOnly(head(type, 5000, `Expect: 100-continue\r\n${extra}`));
      expect(statusLine(text), `${type} ${extra}`).toBe('HTTP/1.1 415 Unsupported Media Type');
      expect(text).not.toContain('100 Continue');
      expect(text.toLowerCase()).toContain('\r\nconnection: close\r\n');
      expect(jsonOf(text).error).toMatchObject({ code: 'UNSUPPORTED_MEDIA', field });
    }
    // An admin route reads JSON through the same parser.
    const admin = await headOnly(
      `PUT /v1/suppressions/x%40dest.test HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json; charset=iso-8859-1\r\nContent-Length: 30\r\nExpect: 100-continue\r\n\r\n`,
    );
    expect(statusLine(admin)).toBe('HTTP/1.1 415 Unsupported Media Type');
    expect(admin).not.toContain('100 Continue');
  });

  it('a route that reads JSON as bytes of its own is not refused for its charset: it gets 100 Continue', async () => {
    const s = connect(t.gateway.ports.http!, '127.0.0.1');
    await new Promise((resolve) => s.once('connect', resolve));
    const answer = readAll(s);
    s.write(
      `POST /v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json; charset=latin1\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    );
    await new Promise<void>((resolve) => s.once('data', () => resolve()));
    s.write('{}');
    const { text } = await answer;
    expect(text.startsWith('HTTP/1.1 100 Continue\r\n\r\n')).toBe(true);
    // Read and refused for what it holds, not for its charset.
    expect(statusLine(text.slice('HTTP/1.1 100 Continue\r\n\r\n'.length))).toBe('HTTP/1.1 422 Unprocessable Entity');
  });

  it('a body within the limit gets 100 Continue, then 202 once sent', async () => {
    const raw = 'From: noreply@example.test\r\nTo: carol@dest.test\r\nSubject: continue\r\n\r\nCode 1\r\n';
    const s = connect(t.gateway.ports.http!, '127.0.0.1');
    await new Promise((resolve) => s.once('connect', resolve));
    const answer = readAll(s);
    const continued = new Promise<string>((resolve) => s.once('data', (c: Buffer) => resolve(c.toString('latin1'))));
    s.write(head('message/rfc822', raw.length, 'Expect: 100-continue\r\nConnection: close\r\n'));
    expect(await continued).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    s.write(raw);
    const { text } = await answer;
    expect(text).toContain('HTTP/1.1 202 Accepted');
  });
});
