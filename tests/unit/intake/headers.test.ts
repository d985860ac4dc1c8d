import { describe, expect, it } from 'vitest';
import { toCrlf } from '../../../src/intake/header-block.js';
import { kurirHeaderOptions, prepareMessage, priorityOf, ttlOf } from '../../../src/intake/headers.js';
import { KurirError } from '../../../src/lib/errors.js';

const now = Date.UTC(2026, 10, 28, 12, 0, 0);

describe('prepareMessage', () => {
  it('adds Date and Message-ID when missing and converts LF to CRLF', () => {
    const p = prepareMessage(Buffer.from('From: A <a@example.test>\nTo: b@dest.test\nSubject: Hi\n\nBody\n'), { hostname: 'gw.example.test', now });
    const text = p.raw.toString();
    expect(text).toContain('Date: Sat, 28 Nov 2026 12:00:00 +0000\r\n');
    expect(p.messageId).toMatch(/^<[0-9a-f]{24}@gw\.example\.test>$/);
    expect(text).toContain(`Message-ID: ${p.messageId}\r\n\r\nBody\r\n`);
    expect(text).not.toMatch(/[^\r]\n/);
    expect(p.fromAddresses).toEqual(['a@example.test']);
    expect(p.subject).toBe('Hi');
  });

  it('keeps an existing Message-ID and Date untouched', () => {
    const raw = Buffer.from('From: a@example.test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nB');
    const p = prepareMessage(raw, { hostname: 'h', now });
    expect(p.raw.equals(raw)).toBe(true);
    expect(p.messageId).toBe('<x@y>');
  });

  it('removes every Bcc and Resent-Bcc header with its folded lines, and leaves the rest byte for byte', () => {
    const head = [
      'From: a@example.test',
      'BCC: hidden@dest.test',
      'To: b@dest.test',
      'bcc : other@dest.test,',
      '\tthird@dest.test',
      'Subject: Hi',
      'Resent-Bcc: resent@dest.test,',
      '  more@dest.test',
      'X-Bcc-Note: kept (not a Bcc header)',
      'Date: Mon, 1 Jan 2024 00:00:00 +0000',
      'Message-ID: <x@y>',
    ];
    const p = prepareMessage(Buffer.from(`${head.join('\r\n')}\r\n\r\nBcc: in the body stays\r\n`), { hostname: 'h', now });
    expect(p.raw.toString()).toBe(
      'From: a@example.test\r\nTo: b@dest.test\r\nSubject: Hi\r\nX-Bcc-Note: kept (not a Bcc header)\r\n' +
        'Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\nBcc: in the body stays\r\n',
    );
    expect(p.headers.map((h) => h.name)).toEqual(['From', 'To', 'Subject', 'X-Bcc-Note', 'Date', 'Message-ID']);
  });

  it("removes Kurir's control headers with their folded lines, returns them in control, and keeps the headers meant for receivers", () => {
    const head = [
      'From: a@example.test',
      'X-Kurir-Priority: bulk',
      'To: b@dest.test',
      'x-kurir-ttl : 600',
      'X-Kurir-Reference: BK-2026-',
      ' 0042',
      'X-Kurir-To: c@dest.test',
      'X-Kurir-From: d@example.test',
      'X-Kurir-Override-Suppression: true',
      'X-Kurir-Probe: kp-0123',
      'X-Kurir-Id: 01kb0000000000000000000000',
      'X-Kurir-Campaign: kept (not a control header)',
      'Feedback-ID: a:b:c:kurir',
      'Date: Mon, 1 Jan 2024 00:00:00 +0000',
      'Message-ID: <x@y>',
    ];
    const p = prepareMessage(Buffer.from(`${head.join('\r\n')}\r\n\r\nX-Kurir-Priority: in the body stays\r\n`), { hostname: 'h', now });
    expect(p.raw.toString()).toBe(
      'From: a@example.test\r\nTo: b@dest.test\r\nX-Kurir-Probe: kp-0123\r\nX-Kurir-Id: 01kb0000000000000000000000\r\n' +
        'X-Kurir-Campaign: kept (not a control header)\r\nFeedback-ID: a:b:c:kurir\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <x@y>\r\n\r\n' +
        'X-Kurir-Priority: in the body stays\r\n',
    );
    expect(p.headers.map((h) => h.name)).toEqual(['From', 'To', 'X-Kurir-Probe', 'X-Kurir-Id', 'X-Kurir-Campaign', 'Feedback-ID', 'Date', 'Message-ID']);
    expect(p.control).toEqual([
      { name: 'X-Kurir-Priority', value: 'bulk' },
      { name: 'x-kurir-ttl', value: '600' },
      { name: 'X-Kurir-Reference', value: 'BK-2026- 0042' },
      { name: 'X-Kurir-To', value: 'c@dest.test' },
      { name: 'X-Kurir-From', value: 'd@example.test' },
      { name: 'X-Kurir-Override-Suppression', value: 'true' },
    ]);
  });

  it('removes a Bcc header and adds the missing Date and Message-ID in the same pass', () => {
    const p = prepareMessage(Buffer.from('Bcc: hidden@dest.test\nFrom: a@example.test\nTo: b@dest.test\n\nBody\n'), { hostname: 'h', now });
    const text = p.raw.toString();
    expect(text).toMatch(/^From: a@example\.test\r\nTo: b@dest\.test\r\nDate: .*\r\nMessage-ID: <[0-9a-f]+@h>\r\n\r\nBody\r\n$/);
    expect(text).not.toContain('hidden');
  });

  const refusal = (raw: string | Buffer): KurirError => {
    try {
      prepareMessage(Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'latin1'), { hostname: 'h', now });
    } catch (err) {
      if (err instanceof KurirError) return err;
      throw err;
    }
    throw new Error('prepareMessage accepted the message');
  };

  it.each([
    ['Subject: a\x00b', 'Subject', '0x00 at character 2'],
    ['Subject: \x01', 'Subject', '0x01 at character 1'],
    ['X-Note: bell\x07', 'X-Note', '0x07'],
    ['X-Note: vertical\x0btab', 'X-Note', '0x0b'],
    ['X-Note: form\x0cfeed', 'X-Note', '0x0c'],
    ['Subject: \x1b$B', 'Subject', '0x1b'],
    ['Subject: unit\x1fsep', 'Subject', '0x1f'],
    ['Subject: del\x7f', 'Subject', '0x7f'],
    ['Subject: folded,\r\n  then\x00NUL', 'Subject', '0x00 at character 13'],
    ['To: b@dest.test\x00', 'To', '0x00'],
  ])('refuses a control character in a header value: %j', (line, name, where) => {
    const err = refusal(`From: a@example.test\r\n${line}\r\n\r\nBody\r\n`);
    expect(err).toMatchObject({ code: 'BAD_MESSAGE', field: name });
    expect(err.message.startsWith(`${name}: a header value may not hold control characters other than tab (`)).toBe(true);
    expect(err.message).toContain(where);
  });

  it('refuses a NUL anywhere in the body, and names its byte', () => {
    const err = refusal(Buffer.concat([Buffer.from('From: a@example.test\r\n\r\nline one\r\n'), Buffer.from([0x61, 0x00, 0x62])]));
    expect(err).toMatchObject({ code: 'BAD_MESSAGE', field: 'message', message: 'The message body may not hold a NUL byte (byte 12 of the body)' });
    expect(refusal('From: a@example.test\n\n\x00')).toMatchObject({ message: expect.stringContaining('byte 1 of the body') });
  });

  it('accepts tab in header values, 8-bit text, and controls other than NUL in the body (ISO-2022-JP escapes)', () => {
    const raw = Buffer.concat([
      Buffer.from('From: a@example.test\r\nSubject: a\tb \u00fc\r\nX-Folded: one\r\n\ttwo\r\n\r\n', 'utf8'),
      Buffer.from('\x1b$B$3$s\x1b(B \x07\x7f text\r\n', 'latin1'),
    ]);
    const p = prepareMessage(raw, { hostname: 'h', now });
    expect(p.headers.find((h) => h.name === 'X-Folded')?.value).toBe('one two');
  });

  it.each([
    ['To: b@dest.test\r\n\r\nB', /no From header/],
    ['From: a@example.test\r\nFrom: c@example.test\r\n\r\nB', /more than one From/],
    ['From: a@example.test, c@example.test\r\n\r\nB', /exactly one address/],
    ['From: a@example.test\r\nthis is not a header\r\n\r\nB', /Malformed header line/],
  ])('refuses %j', (raw, re) => {
    expect(() => prepareMessage(Buffer.from(raw), { hostname: 'h', now })).toThrowError(re);
    expect(() => prepareMessage(Buffer.from(raw), { hostname: 'h', now })).toThrowError(KurirError);
  });

  it('toCrlf leaves CRLF input as the same buffer', () => {
    const b = Buffer.from('a\r\nb\r\n');
    expect(toCrlf(b)).toBe(b);
    const none = Buffer.from('no line end at all');
    expect(toCrlf(none)).toBe(none);
  });

  it.each([
    ['\nstarts with a bare LF', '\r\nstarts with a bare LF'],
    ['a\nb\r\nc', 'a\r\nb\r\nc'],
    ['a\r\nb\rc', 'a\r\nb\r\nc'],
    ['ends with a bare CR\r', 'ends with a bare CR\r\n'],
    ['a\r\r\nb', 'a\r\n\r\nb'],
    ['a\n\rb', 'a\r\n\r\nb'],
    ['8-bit \xe9\xff\nend', '8-bit \xe9\xff\r\nend'],
  ])('toCrlf turns every bare CR and LF of %j into CRLF', (input, want) => {
    expect(toCrlf(Buffer.from(input, 'latin1')).toString('latin1')).toBe(want);
  });
});

describe('X-Kurir-Priority and X-Kurir-Ttl', () => {
  const MAX = 7 * 86400;
  const msg = (...lines: string[]) => Buffer.from(`From: a@example.test\n${lines.join('\n')}\n\nX-Kurir-Ttl: 5 (in the body: not a header)\n`);

  it('reads both from the header block (any line ends), defaults without them', () => {
    expect(kurirHeaderOptions(msg('X-Kurir-Priority: Bulk', 'x-kurir-ttl:  120 '), MAX)).toEqual({ priority: 'bulk', ttlSeconds: 120 });
    expect(kurirHeaderOptions(msg('Subject: none'), MAX)).toEqual({ priority: 'normal', ttlSeconds: undefined });
    expect(ttlOf(Buffer.from('From: a@example.test\r\nX-Kurir-Ttl: 1\r\n\r\nB'), MAX)).toBe(1);
    expect(ttlOf(msg(`X-Kurir-Ttl: ${MAX}`), MAX)).toBe(MAX);
    expect(priorityOf(msg('X-Kurir-Priority: verification'))).toBe('verification');
  });

  it.each(['abc', '0', '-1', '1.5', '1e3', '', '12345678901', '60s', '+60', '0x10'])('refuses X-Kurir-Ttl: %j, naming the header', (value) => {
    expect(() => ttlOf(msg(`X-Kurir-Ttl: ${value}`), MAX)).toThrowError(
      expect.objectContaining({ code: 'VALIDATION', field: 'X-Kurir-Ttl', message: `X-Kurir-Ttl: must be a whole number of seconds from 1 to ${MAX}` }),
    );
  });

  it('refuses an X-Kurir-Ttl over the API limit (delivery.maxTtlSeconds)', () => {
    expect(() => ttlOf(msg(`X-Kurir-Ttl: ${MAX + 1}`), MAX)).toThrowError(
      expect.objectContaining({ code: 'VALIDATION', field: 'X-Kurir-Ttl', message: `X-Kurir-Ttl: must be a whole number of seconds from 1 to ${MAX}` }),
    );
  });
});
