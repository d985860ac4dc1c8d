import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hmacSha256 } from '../../../src/lib/hmac.js';
import { parseVerp, verpAddress } from '../../../src/lib/verp.js';

describe('hmacSha256', () => {
  it('gives what createHmac gives with the secret as a string, for every secret and encoding', () => {
    const secrets = ['a'.repeat(64), 'short', 'ključ-šifre-č', ''.padEnd(200, 'x')];
    for (const secret of secrets) {
      for (const data of ['', 'msg-1', 'confirm:01jabc', 'žaba 🐸']) {
        for (const encoding of ['hex', 'base64url', 'base64'] as const) {
          expect(hmacSha256(secret, data, encoding)).toBe(createHmac('sha256', secret).update(data).digest(encoding));
        }
      }
    }
  });

  it('keeps working past its bound on remembered secrets', () => {
    for (let i = 0; i < 200; i++) {
      const secret = `s${i}`;
      expect(hmacSha256(secret, 'd', 'hex')).toBe(createHmac('sha256', secret).update('d').digest('hex'));
    }
  });

  it('VERP addresses made before the change still verify (same token bytes)', () => {
    const secret = 'verp-secret';
    const id = '01jd3kq7r8xyz';
    const before = `b+${id}.${createHmac('sha256', secret).update(id).digest('hex').slice(0, 12)}@bounce.example.test`;
    expect(verpAddress(id, 'bounce.example.test', secret)).toBe(before);
    expect(parseVerp(before, 'bounce.example.test', secret)).toBe(id);
  });
});
