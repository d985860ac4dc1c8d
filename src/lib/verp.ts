import { timingSafeEqual } from 'node:crypto';
import { hmacSha256 } from './hmac.js';

/**
 * VERP return paths: `b+<messageId>.<token>@<bounce domain>`, where the token is an HMAC of the id so a
 * bounce for a forged address cannot touch a real message (no backscatter, no forged suppressions).
 */
export function verpAddress(messageId: string, bounceDomain: string, secret: string): string {
  return `b+${messageId}.${token(messageId, secret)}@${bounceDomain}`;
}

/** The message id of a VERP address whose token verifies, or null. */
export function parseVerp(address: string, bounceDomain: string, secret: string): string | null {
  const m = /^b\+([0-9a-z]+)\.([0-9a-z]+)@(.+)$/i.exec(address.trim());
  if (!m || m[3].toLowerCase() !== bounceDomain.toLowerCase()) return null;
  const id = m[1].toLowerCase();
  const expected = Buffer.from(token(id, secret));
  const given = Buffer.from(m[2].toLowerCase());
  return expected.length === given.length && timingSafeEqual(expected, given) ? id : null;
}

function token(id: string, secret: string): string {
  return hmacSha256(secret, id, 'hex').slice(0, 12);
}
