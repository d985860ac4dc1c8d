import { describe, expect, it } from 'vitest';
import { normalizeAddress, normalizeDomain } from '../../../src/lib/address.js';
import { KurirError } from '../../../src/lib/errors.js';
import { newMessageId, MESSAGE_ID_PATTERN } from '../../../src/lib/ids.js';
import { parseVerp, verpAddress } from '../../../src/lib/verp.js';

describe('normalizeAddress', () => {
  it.each([
    ['User@Example.COM', 'User@example.com'],
    ['<a.b+tag@sub.example.org>', 'a.b+tag@sub.example.org'],
    ['user@bücher.example', 'user@xn--bcher-kva.example'],
    ['"quoted name"@example.org', '"quoted name"@example.org'],
  ])('%s → %s', (input, out) => expect(normalizeAddress(input)).toBe(out));

  it.each(['no-at-sign', '@example.com', 'a@', 'a@localhost', 'a..b@example.com', 'a@-bad-.com', 'a b@example.com', `${'x'.repeat(65)}@example.com`])(
    'rejects %s',
    (input) => expect(() => normalizeAddress(input, 'to[0]')).toThrowError(KurirError),
  );

  it('rejects CR/LF injection with HEADER_INJECTION naming the field', () => {
    try {
      normalizeAddress('a@example.com\r\nBcc: victim@example.org', 'to[1]');
      expect.unreachable();
    } catch (err) {
      expect((err as KurirError).code).toBe('HEADER_INJECTION');
      expect((err as KurirError).field).toBe('to[1]');
    }
  });
});

describe('normalizeDomain (remembered answers)', () => {
  it('answers the same the second time, for IDN and plain names, and still refuses invalid ones every time', () => {
    for (let round = 0; round < 2; round++) {
      expect(normalizeDomain('Bücher.Example')).toBe('xn--bcher-kva.example');
      expect(normalizeDomain('Mail.Example.TEST.')).toBe('mail.example.test');
      for (let i = 0; i < 2; i++) expect(() => normalizeDomain('no_underscore.example', 'to')).toThrow(/to: "no_underscore.example" is not a valid domain/);
    }
  });

  it('refuses a name whose last label is all digits (an IP address), for a sender domain and a recipient alike', () => {
    expect(() => normalizeDomain('1.2.3.4', 'name')).toThrow(/name: "1\.2\.3\.4" is not a valid domain \(an IP address is no domain name/);
    expect(() => normalizeAddress('user@192.0.2.10', 'to[0]')).toThrow(/to\[0\]: "192\.0\.2\.10" is not a valid domain/);
    expect(normalizeDomain('123.example')).toBe('123.example');
    expect(normalizeDomain('mail.1example')).toBe('mail.1example');
  });

  it('stays correct past its bound (it empties itself and starts again)', () => {
    for (let i = 0; i < 5000; i++) expect(normalizeDomain(`D${i}.Example`)).toBe(`d${i}.example`);
    expect(normalizeDomain('D1.Example')).toBe('d1.example');
  });
});

describe('message ids and VERP', () => {
  it('ids sort by time and match their pattern', () => {
    const a = newMessageId(1_700_000_000_000);
    const b = newMessageId(1_700_000_000_001);
    expect(a < b).toBe(true);
    expect(a).toMatch(MESSAGE_ID_PATTERN);
  });

  it('a VERP address round-trips and a forged token does not verify', () => {
    const id = newMessageId();
    const addr = verpAddress(id, 'bounce.example.test', 'secret');
    expect(parseVerp(addr, 'bounce.example.test', 'secret')).toBe(id);
    expect(parseVerp(addr, 'bounce.example.test', 'other-secret')).toBeNull();
    expect(parseVerp(addr.replace(/\.[0-9a-f]+@/, '.000000000000@'), 'bounce.example.test', 'secret')).toBeNull();
    expect(parseVerp(addr, 'elsewhere.test', 'secret')).toBeNull();
  });
});
