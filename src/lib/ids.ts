import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * A message id: 10 characters of millisecond time then 12 random ones (Crockford base32, lower case),
 * so ids sort by acceptance time and are safe in VERP local parts, URLs and Redis keys.
 */
export function newMessageId(now: number = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(12);
  let rand = '';
  for (const b of bytes) rand += ALPHABET[b % 32];
  return time + rand;
}

export const MESSAGE_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{22}$/;
