import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

// Random bytes fetched 4 KB at a time: one crypto.randomBytes call per message id or lease cost about 1 % of the
// gateway's CPU (bench profile, 29 Nov 2026). Each byte is handed out once; the pool never leaves this module.
const POOL = Buffer.alloc(4096);
let used = POOL.length;

// Where `n` fresh bytes start in the pool (n ≤ 256).
function take(n: number): number {
  if (!(n >= 0 && n <= 256)) throw new RangeError(`random bytes: at most 256 at a time, asked for ${n}`);
  if (used + n > POOL.length) {
    randomFillSync(POOL);
    used = 0;
  }
  const at = used;
  used += n;
  return at;
}

/** `n` random characters of the id alphabet (Crockford base32, lower case), from the CSPRNG. */
export function randomBase32(n: number): string {
  let out = '';
  for (let left = n; left > 0; left -= 256) {
    const k = Math.min(left, 256);
    const at = take(k);
    // 256 is a multiple of 32: each character is uniform.
    for (let i = at; i < at + k; i++) out += ALPHABET[POOL[i] % 32];
  }
  return out;
}

/** `bytes` (at most 256) random bytes from the CSPRNG, as hex. */
export function randomHex(bytes: number): string {
  const at = take(bytes);
  return POOL.toString('hex', at, at + bytes);
}

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
  return time + randomBase32(12);
}

export const MESSAGE_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{22}$/;
