/**
 * Raw messages with body lines over 998 octets (RFC 5322 §2.1.1), end to end over SMTP and HTTP (`message/rfc822`) to
 * the recipients' MX (smtp-server on loopback, DNS on loopback): the copy that arrives has no line over 998 octets,
 * its DKIM signatures verify (mailauth), and a mail reader (mailparser) reads the HTML that was submitted. Until
 * 2 Dec 2026 the long line was signed and sent as it was; a relay that folds it (Postfix at 2,048) broke DKIM.
 * A message without long lines arrives byte for byte as it was submitted, after the DKIM-Signature headers.
 */
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRawMx, type RawMx } from '../helpers/raw-mx.js';
import type { ReceivedMessage } from '../helpers/receiver.js';

let mx: RawMx;

beforeAll(async () => {
  mx = await startRawMx();
});

afterAll(async () => {
  await mx?.close();
});

/** A booking confirmation's HTML as some templating engines write it: one line, here 3,000 characters and more. */
const HTML = `<html><body><p>Ihr Termin ist bestätigt – Code <b>482913</b>.</p><table>${'<tr><td class="slot">Mo 10:00</td><td>Schalter 4</td></tr>'.repeat(55)}</table></body></html>`;

const head = (to: string, id: string) => ['From: Bürgerbüro <noreply@example.test>', `To: ${to}`, 'Subject: Ihr Termin', `Message-ID: <${id}@example.test>`];

/** multipart/alternative: a short text part and the HTML in one 8bit line. */
function multipart(to: string, id: string): Buffer {
  const lines = [
    ...head(to, id),
    'MIME-Version: 1.0',
    'Content-Type: multipart/alternative; boundary="alt"',
    '',
    '--alt',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Ihr Code: 482913',
    '--alt',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    HTML,
    '--alt--',
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'utf8');
}

async function delivered(id: string): Promise<ReceivedMessage> {
  const [copy] = await mx.delivered(id);
  return copy;
}

/** The longest line of a message, in octets (CRLF not counted). */
const longest = (raw: Buffer): number =>
  Math.max(
    ...raw
      .toString('latin1')
      .split('\r\n')
      .map((l) => l.length),
  );

const dkimResults = async (copy: ReceivedMessage): Promise<string[]> => (await mx.dkimOf(copy)).map(([domain, result]) => `${domain} ${result}`);

describe('a raw message with a body line over 998 octets', () => {
  it('over SMTP: arrives with no line over 998 octets, DKIM passing, and the HTML it was sent with', async () => {
    expect(Buffer.byteLength(HTML)).toBeGreaterThan(3000);
    const reply = await mx.smtpReply(multipart('smtp-long@dest.test', 'smtp-long'), ['smtp-long@dest.test']);
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    const copy = await delivered(/queued as (\S+)/.exec(reply)![1]);
    expect(longest(copy.raw)).toBeLessThanOrEqual(998);
    expect(copy.raw.toString('latin1')).toMatch(/^Content-Transfer-Encoding: quoted-printable\r$/m);
    expect(await dkimResults(copy)).toEqual(['example.test pass', 'example.test pass']);
    const read = await simpleParser(copy.raw);
    expect(read.html).toBe(HTML);
    expect(read.text).toBe('Ihr Code: 482913');
  });

  it('over HTTP: a single-part HTML message arrives quoted-printable, DKIM passing, with the same HTML', async () => {
    const message = Buffer.from([...head('http-long@dest.test', 'http-long'), 'Content-Type: text/html; charset=utf-8', '', HTML, ''].join('\r\n'), 'utf8');
    const res = await mx.postRaw(message, ['http-long@dest.test']);
    expect(res.status).toBe(202);
    const copy = await delivered(res.body.id);
    expect(longest(copy.raw)).toBeLessThanOrEqual(998);
    expect(await dkimResults(copy)).toEqual(['example.test pass', 'example.test pass']);
    expect((await simpleParser(copy.raw)).html).toBe(`${HTML}\n`);
  });

  it('arrives byte for byte as sent, after the DKIM signatures, when no line is long', async () => {
    const message = Buffer.from(
      [...head('short@dest.test', 'short'), 'Date: Wed, 2 Dec 2026 12:00:00 +0000', 'Content-Type: text/plain; charset=utf-8', '', 'Ihr Code: 482913', ''].join(
        '\r\n',
      ),
      'utf8',
    );
    const res = await mx.postRaw(message, ['short@dest.test']);
    expect(res.status).toBe(202);
    const copy = await delivered(res.body.id);
    expect(copy.raw.subarray(copy.raw.length - message.length)).toEqual(message);
    expect(copy.raw.subarray(0, copy.raw.length - message.length).toString('latin1')).toMatch(/^DKIM-Signature: /);
  });

  it('is refused where it cannot be re-encoded (a message/rfc822 part): SMTP 554 5.6.0 and HTTP 400, naming the line', async () => {
    const forwarded = Buffer.from(
      [
        ...head('fwd@dest.test', 'fwd'),
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary=m',
        '',
        '--m',
        'Content-Type: message/rfc822',
        '',
        'Subject: inner',
        '',
        HTML,
        '--m--',
        '',
      ].join('\r\n'),
      'utf8',
    );
    const why = new RegExp(`^Line 13 of the message is ${Buffer.byteLength(HTML)} octets long, over the 998 RFC 5322 allows, in a message/rfc822 part`);
    const reply = await mx.smtpReply(forwarded, ['fwd@dest.test']);
    expect(reply).toMatch(/^554 5\.6\.0 Line 13 of the message /);
    expect(reply.slice('554 5.6.0 '.length)).toMatch(why);
    const res = await mx.postRaw(forwarded, ['fwd@dest.test']);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'BAD_MESSAGE', field: 'message', message: expect.stringMatching(why) });
  });
});
