/**
 * Raw messages (SMTP DATA and HTTP `message/rfc822`) end to end: what intake removes from them, refuses in them and
 * reads from them, seen at the recipients' MX (smtp-server on loopback, DNS on loopback, DKIM checked with mailauth)
 * and in `GET /v1/messages/:id`. Both transports go through prepareMessage (src/intake/headers.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRawMx, type RawMx } from '../helpers/raw-mx.js';
import { adminRequest } from '../helpers/test-gateway.js';

let mx: RawMx;

beforeAll(async () => {
  mx = await startRawMx();
});

afterAll(async () => {
  await mx?.close();
});

/** A raw message as a client writes it: CRLF line ends, the header lines given, a short body. */
function raw(headers: string[], body = 'Code: 123456'): string {
  return `${headers.join('\r\n')}\r\n\r\n${body}\r\n`;
}

const sendSmtp = (message: string, to: string[]) => mx.sendSmtp(message, to);
const postRaw = (message: string | Buffer, to: string[]) => mx.postRaw(message, to);
const delivered = (id: string) => mx.delivered(id);
const dkimOf = (copy: Parameters<RawMx['dkimOf']>[0]) => mx.dkimOf(copy);
/** Sends a raw message over SMTP and answers the server's reply to it (the 250 or the refusal). */
const smtpReply = (message: string | Buffer, to = ['a@dest.test']) => mx.smtpReply(message, to);

describe('Bcc headers are removed from raw messages', () => {
  const BLIND = /^(resent-)?bcc\s*:/im;

  it('over SMTP: every envelope recipient gets the message, none sees the Bcc header, DKIM passes', async () => {
    const message = raw([
      'From: Passport office <noreply@example.test>',
      'To: a@dest.test',
      'Bcc: secret2@dest.test',
      'Subject: Your code',
      'Message-ID: <bcc-smtp@example.test>',
    ]);
    const id = await sendSmtp(message, ['a@dest.test', 'secret2@dest.test']);
    const copies = await delivered(id);
    expect(copies.flatMap((m) => m.rcptTo).sort()).toEqual(['a@dest.test', 'secret2@dest.test']);
    for (const copy of copies) {
      const text = copy.raw.toString('latin1');
      expect(text).not.toMatch(BLIND);
      expect(text).not.toContain('secret2@dest.test');
      expect(text).toMatch(/^To: a@dest\.test\r$/m);
      expect(await dkimOf(copy)).toEqual([
        ['example.test', 'pass'],
        ['example.test', 'pass'],
      ]);
    }
  });

  it('over HTTP: Bcc and a folded Resent-Bcc are removed, the ?to= recipients all get the message, DKIM passes', async () => {
    const message = raw([
      'From: noreply@example.test',
      'To: b@dest.test',
      'bcc: secret@dest.test',
      'Resent-Bcc: secret3@dest.test,',
      '\tsecret@dest.test',
      'Subject: Your code',
    ]);
    const res = await postRaw(message, ['b@dest.test', 'secret@dest.test', 'secret3@dest.test']);
    expect(res.status).toBe(202);
    const copies = await delivered(res.body.id);
    expect(copies.flatMap((m) => m.rcptTo).sort()).toEqual(['b@dest.test', 'secret3@dest.test', 'secret@dest.test']);
    for (const copy of copies) {
      const text = copy.raw.toString('latin1');
      expect(text).not.toMatch(BLIND);
      expect(text).not.toMatch(/secret/);
      expect((await dkimOf(copy)).every(([d, r]) => d === 'example.test' && r === 'pass')).toBe(true);
    }
  });
});

describe('control characters in raw messages', () => {
  const head = ['From: noreply@example.test', 'To: a@dest.test'];

  it('over SMTP: a control character in a header value or a NUL in the body is refused 554 5.6.0, naming where', async () => {
    expect(await smtpReply(raw([...head, 'Subject: a\x00b']))).toBe(
      '554 5.6.0 Subject: a header value may not hold control characters other than tab (0x00 at character 2)',
    );
    expect(await smtpReply(raw([...head, 'Subject: Your code', 'X-Note: esc \x1b[31m']))).toMatch(/^554 5\.6\.0 X-Note: .*\(0x1b at character 5\)$/);
    expect(await smtpReply(raw([...head, 'Subject: del \x7f']))).toMatch(/^554 5\.6\.0 Subject: .*0x7f/);
    expect(await smtpReply(raw([...head, 'Subject: Your code'], 'Code:\x00123456'))).toBe(
      '554 5.6.0 The message body may not hold a NUL byte (byte 6 of the body)',
    );
    // A tab is a header value's own whitespace: accepted.
    expect(await smtpReply(raw([...head, 'Subject: Your\tcode']))).toMatch(/^250 2\.0\.0 Ok: queued as /);
  });

  it('over HTTP: the same is refused 400 BAD_MESSAGE with the header as the field', async () => {
    const subject = await postRaw(raw([...head, 'Subject: a\x00b']), ['a@dest.test']);
    expect(subject).toEqual({
      status: 400,
      body: {
        error: {
          code: 'BAD_MESSAGE',
          field: 'Subject',
          message: 'Subject: a header value may not hold control characters other than tab (0x00 at character 2)',
        },
      },
    });
    const ctl = await postRaw(raw([...head, 'Reply-To: x@example.test\x01']), ['a@dest.test']);
    expect(ctl.status).toBe(400);
    expect(ctl.body.error).toMatchObject({ code: 'BAD_MESSAGE', field: 'Reply-To' });
    const body = await postRaw(Buffer.from(raw([...head, 'Subject: Your code'], 'Code: 1\x00')), ['a@dest.test']);
    expect(body.status).toBe(400);
    expect(body.body.error).toEqual({ code: 'BAD_MESSAGE', field: 'message', message: 'The message body may not hold a NUL byte (byte 8 of the body)' });
  });

  it('over HTTP as JSON: a control character in the subject or a header is refused under its JSON field; one in the text is encoded', async () => {
    const json = { from: 'noreply@example.test', to: ['json-ctl@dest.test'], subject: 'Your\tcode' };
    expect((await mx.t.submit({ ...json, subject: 'bell\x07', text: 'x' })).body.error).toEqual({
      code: 'HEADER_INJECTION',
      field: 'subject',
      message: 'subject: control characters other than tab are not allowed',
    });
    expect((await mx.t.submit({ ...json, text: 'x', headers: { 'X-Note': 'vt\x0b' } })).body.error).toMatchObject({
      code: 'HEADER_INJECTION',
      field: 'headers.X-Note',
    });
    // The composer writes the text quoted-printable: the message has no NUL, and it is accepted and delivered.
    const res = await mx.t.submit({ ...json, text: 'NUL \x00 and ESC \x1b in the text', headers: { 'X-Note': 'tab\tonly' } });
    expect(res.status).toBe(202);
    const [copy] = await delivered(res.body.id);
    expect(copy.raw.indexOf(0)).toBe(-1);
    expect(copy.raw.toString()).toMatch(/^X-Note: tab\tonly\r$/m);
  });
});

describe('the From header of a raw message is exactly one mailbox', () => {
  const AMBIGUOUS: Array<[string, RegExp]> = [
    ['noreply@example.test x@other.test', /more after the address noreply@example\.test/],
    ['<noreply@example.test>x@other.test', /more after <noreply@example\.test>/],
    ['noreply@example.test <>', /the angle brackets are empty/],
    ['x@other.test <noreply@example.test>', /the display name "x@other\.test" holds an unquoted "@"/],
  ];
  const ORDINARY = [
    'noreply@example.test',
    '<noreply@example.test>',
    'Passport office <noreply@example.test>',
    '"Office, Passport" <noreply@example.test>',
    '=?UTF-8?Q?Pa=C3=9F?= <noreply@example.test>',
    'noreply@example.test (Passport office)',
  ];
  const withFrom = (from: string) => raw([`From: ${from}`, 'To: a@dest.test', 'Subject: Your code']);

  it('over SMTP: an ambiguous From is refused 554 5.6.0 saying why; the ordinary forms are accepted', async () => {
    for (const [from, why] of AMBIGUOUS) {
      const reply = await smtpReply(withFrom(from));
      expect(reply, from).toMatch(/^554 5\.6\.0 From header: /);
      expect(reply, from).toMatch(why);
    }
    for (const from of ORDINARY) expect(await smtpReply(withFrom(from)), from).toMatch(/^250 2\.0\.0 Ok: queued as /);
  });

  it('over HTTP: the same is 400 BAD_MESSAGE with field from; the ordinary forms are 202', async () => {
    for (const [from, why] of AMBIGUOUS) {
      const res = await postRaw(withFrom(from), ['a@dest.test']);
      expect(res.status, from).toBe(400);
      expect(res.body.error, from).toMatchObject({ code: 'BAD_MESSAGE', field: 'from', message: expect.stringMatching(why) });
    }
    for (const from of ORDINARY) expect((await postRaw(withFrom(from), ['a@dest.test'])).status, from).toBe(202);
  });

  it('a display name with an @ in quotes is delivered signed for the address in the angle brackets', async () => {
    const res = await postRaw(withFrom('"x@other.test" <noreply@example.test>'), ['quoted-name@dest.test']);
    expect(res.status).toBe(202);
    const [copy] = await delivered(res.body.id);
    expect((await dkimOf(copy)).every(([d, r]) => d === 'example.test' && r === 'pass')).toBe(true);
  });
});

describe('X-Kurir-Ttl over SMTP', () => {
  const withTtl = (ttl: string) => raw(['From: noreply@example.test', 'To: ttl@dest.test', 'Subject: Your code', `X-Kurir-Ttl: ${ttl}`]);

  it('sets the message lifetime, as X-Kurir-Priority sets its priority', async () => {
    const reply = await smtpReply(raw(['From: noreply@example.test', 'To: ttl@dest.test', 'X-Kurir-Priority: bulk', 'X-Kurir-Ttl: 120']), ['ttl@dest.test']);
    const id = /queued as (\S+)/.exec(reply)![1];
    const record = (await mx.t.gateway.messages.getRecord(id))!;
    expect(record.priority).toBe('bulk');
    expect(record.expiresAt - record.createdAt).toBe(120_000);
  });

  it('refuses a bad value with 501 5.5.4 naming the header, as a bad X-Kurir-Priority', async () => {
    const max = mx.t.config.delivery.maxTtlSeconds;
    for (const bad of ['abc', '0', '1.5', '-5', String(max + 1)]) {
      expect(await smtpReply(withTtl(bad), ['ttl@dest.test']), bad).toBe(`501 5.5.4 X-Kurir-Ttl: must be a whole number of seconds from 1 to ${max}`);
    }
  });
});

describe('the subject GET /v1/messages/:id shows', () => {
  const view = async (id: string) => (await adminRequest(mx.t.url, 'GET', `/v1/messages/${id}`)).body;

  it('is the JSON subject as sent, though the message carries it encoded', async () => {
    const res = await mx.t.submit({ from: 'noreply@example.test', to: ['subject-json@dest.test'], subject: 'Your code ☃', text: 'x' });
    expect(res.status).toBe(202);
    expect((await mx.t.status(res.body.id)).subject).toBe('Your code ☃');
    const [copy] = await delivered(res.body.id);
    expect(copy.raw.toString()).toMatch(/^Subject: =\?UTF-8\?Q\?Your_code_=E2=98=83\?=\r$/m);
  });

  it('reads an 8-bit SMTP subject as UTF-8 (latin1 when it is not UTF-8), and decodes encoded words', async () => {
    const head = (subject: string) => raw(['From: noreply@example.test', 'To: a@dest.test', `Subject: ${subject}`]);
    const utf8 = /queued as (\S+)/.exec(await smtpReply(Buffer.from(head('ü 8bit'), 'utf8')))![1];
    expect((await view(utf8)).subject).toBe('ü 8bit');
    const latin1 = /queued as (\S+)/.exec(await smtpReply(Buffer.from(head('f\xfcr Sie'), 'latin1')))![1];
    expect((await view(latin1)).subject).toBe('für Sie');
    const encoded = /queued as (\S+)/.exec(await smtpReply(head('Re: =?ISO-8859-1?Q?f=FCr?= =?UTF-8?B?U2llIOKYgw==?=')))![1];
    expect((await view(encoded)).subject).toBe('Re: fürSie ☃');
  });

  it('is cut at 200 characters after decoding, over HTTP raw too; the delivered message keeps the whole header', async () => {
    const words = Array.from({ length: 120 }, () => '=?UTF-8?B?8J+YgMO8?=').join('\r\n ');
    const res = await postRaw(Buffer.from(raw(['From: noreply@example.test', 'To: long@dest.test', `Subject: ${words}`])), ['long@dest.test']);
    expect(res.status).toBe(202);
    expect((await mx.t.status(res.body.id)).subject).toBe('😀ü'.repeat(100));
    const [copy] = await delivered(res.body.id);
    expect(copy.raw.toString()).toContain(`Subject: ${words}\r\n`);
  });
});

describe("Kurir's control headers are read, then removed before signing", () => {
  const CONTROL = /^x-kurir-(priority|ttl|reference|to|from|override-suppression)\s*:/im;
  const withControls = (to: string) =>
    raw([
      'From: noreply@example.test',
      `To: ${to}`,
      'Subject: Your code',
      'X-Kurir-Priority: bulk',
      'X-Kurir-Ttl: 900',
      'X-Kurir-Reference: BK-2026-',
      '\t0042',
      'X-Kurir-To: someone-else@dest.test',
    ]);

  /** Checks a delivered copy: no control header, DKIM passing; and the record: what the headers asked for. */
  const check = async (id: string) => {
    const [copy] = await delivered(id);
    const text = copy.raw.toString('latin1');
    expect(text).not.toMatch(CONTROL);
    expect(text).not.toContain('BK-2026');
    expect(text).toMatch(/^Subject: Your code\r$/m);
    expect(await dkimOf(copy)).toEqual([
      ['example.test', 'pass'],
      ['example.test', 'pass'],
    ]);
    const record = (await mx.t.gateway.messages.getRecord(id))!;
    expect({ priority: record.priority, ttl: (record.expiresAt - record.createdAt) / 1000, reference: record.reference }).toEqual({
      priority: 'bulk',
      ttl: 900,
      reference: 'BK-2026- 0042',
    });
  };

  it('over SMTP', async () => {
    await check(await sendSmtp(withControls('control-smtp@dest.test'), ['control-smtp@dest.test']));
  });

  it('over HTTP raw', async () => {
    const res = await postRaw(withControls('control-http@dest.test'), ['control-http@dest.test']);
    expect(res.status).toBe(202);
    await check(res.body.id);
  });

  it("over HTTP JSON the reference header is read and removed; a header Kurir does not read (X-Kurir-Probe's name) stays", async () => {
    const res = await mx.t.submit({
      from: 'noreply@example.test',
      to: ['control-json@dest.test'],
      subject: 'Your code',
      text: 'Code: 123456',
      headers: { 'X-Kurir-Reference': 'BK-7', 'X-Kurir-Probe': 'kp-test' },
    });
    expect(res.status).toBe(202);
    const [copy] = await delivered(res.body.id);
    expect(copy.raw.toString('latin1')).not.toMatch(CONTROL);
    expect(copy.raw.toString('latin1')).toMatch(/^X-Kurir-Probe: kp-test\r$/m);
    expect((await mx.t.gateway.messages.getRecord(res.body.id))!.reference).toBe('BK-7');
  });
});
