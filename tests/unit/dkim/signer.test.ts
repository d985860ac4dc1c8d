import { dkimSign, dkimVerify, type DkimVerifyEntry } from 'mailauth';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { dnsRecordFor, generateDkimKey } from '../../../src/dkim/keys.js';
import { SignPool } from '../../../src/dkim/sign-pool.js';
import { createDkimSigner, DkimError, type DkimKey, type DkimSigner } from '../../../src/dkim/signer.js';
import { makeResolver, startDnsServer, type DnsServer } from '../../helpers/dns-server.js';

const SIGN_TIME = new Date('2025-03-04T05:06:07Z');

const MESSAGE = [
  'From: Alice <alice@example.test>',
  'To: Bob <bob@example.org>',
  'Subject: Your receipt',
  'Date: Tue, 04 Mar 2025 05:06:00 +0000',
  'Message-ID: <r-1@example.test>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  'X-Campaign: spring',
  '',
  'Thanks for your order.',
  'Total: 12.00 EUR',
  '',
].join('\r\n');

let dns: DnsServer;
let signer: DkimSigner;
let resolver: ReturnType<typeof makeResolver>;
let keys: DkimKey[];

beforeAll(async () => {
  const rsa = generateDkimKey('rsa');
  const ed = generateDkimKey('ed25519');
  const rsaOnly = generateDkimKey('rsa');
  dns = await startDnsServer({
    'rsa._domainkey.example.test': { TXT: [dnsRecordFor('rsa', rsa.publicKeyBase64)] },
    'ed._domainkey.example.test': { TXT: [dnsRecordFor('ed25519', ed.publicKeyBase64)] },
    's1._domainkey.rsa-only.test': { TXT: [dnsRecordFor('rsa', rsaOnly.publicKeyBase64)] },
  });
  resolver = makeResolver(dns.address);
  keys = [
    // ed25519 listed first on purpose: the signer must still put RSA first.
    { domain: 'example.test', selector: 'ed', algorithm: 'ed25519', privateKeyPem: ed.privateKeyPem },
    { domain: 'Example.Test', selector: 'rsa', algorithm: 'rsa', privateKeyPem: rsa.privateKeyPem },
    { domain: 'rsa-only.test', selector: 's1', algorithm: 'rsa', privateKeyPem: rsaOnly.privateKeyPem },
  ];
});

afterAll(async () => {
  await dns?.close();
});

async function verify(message: Buffer | string): Promise<Record<string, DkimVerifyEntry>> {
  const { results } = await dkimVerify(message, { resolver, curTime: new Date(SIGN_TIME.getTime() + 60_000) });
  return Object.fromEntries(results.map((r) => [r.algo, r]));
}

/** Inserts `line` into the header block of a signed message, at its top or just before the blank line. */
function insertHeader(message: Buffer, line: string, where: 'top' | 'bottom'): string {
  const text = message.toString('latin1');
  if (where === 'top') return `${line}\r\n${text}`;
  const end = text.indexOf('\r\n\r\n');
  return `${text.slice(0, end)}\r\n${line}${text.slice(end)}`;
}

function tagOf(message: Buffer, index: number, tag: string): string {
  const headers = message
    .toString('latin1')
    .split(/\r\n(?![ \t])/)
    .filter((h) => h.startsWith('DKIM-Signature:'));
  const value = headers[index]!.replace(/\r\n[ \t]/g, ' ').match(new RegExp(`(?:^|[;:]\\s*)${tag}=([^;]*)`));
  return value![1]!.replace(/\s+/g, ' ').trim();
}

// Every case runs on the main thread and through a pool of signing threads (dkim.signingThreads).
describe.each(['main thread', 'signing pool'] as const)('%s', (mode) => {
  let pool: SignPool | undefined;

  beforeAll(async () => {
    pool = mode === 'signing pool' ? await SignPool.start({ threads: 2 }) : undefined;
    signer = createDkimSigner({ clock: () => SIGN_TIME, keys, engine: pool });
  });

  afterAll(async () => {
    await pool?.close();
  });

  describe('createDkimSigner().sign', () => {
    it('adds an rsa-sha256 and an ed25519-sha256 signature that both verify', async () => {
      const { message, signatures } = await signer.sign(Buffer.from(MESSAGE), 'example.test');

      expect(signatures).toEqual([
        { domain: 'example.test', selector: 'rsa', algorithm: 'rsa-sha256' },
        { domain: 'example.test', selector: 'ed', algorithm: 'ed25519-sha256' },
      ]);
      expect(message.toString('latin1').startsWith('DKIM-Signature: ')).toBe(true);
      expect(message.subarray(-MESSAGE.length).toString()).toBe(MESSAGE);

      const results = await verify(message);
      expect(results['rsa-sha256']?.status.result).toBe('pass');
      expect(results['rsa-sha256']?.selector).toBe('rsa');
      expect(results['ed25519-sha256']?.status.result).toBe('pass');
      expect(results['ed25519-sha256']?.selector).toBe('ed');
      expect(Object.keys(results)).toHaveLength(2);
    });

    it('signs relaxed/relaxed at the injected time, over-signing From and Subject', async () => {
      const { message } = await signer.sign(Buffer.from(MESSAGE), 'example.test');
      for (const i of [0, 1]) {
        expect(tagOf(message, i, 'c')).toBe('relaxed/relaxed');
        expect(tagOf(message, i, 't')).toBe(String(SIGN_TIME.getTime() / 1000));
        expect(tagOf(message, i, 'd')).toBe('example.test');
        const h = tagOf(message, i, 'h')
          .toLowerCase()
          .split(/\s*:\s*/);
        // Present fields once each, From and Subject once more; unsigned X- headers and absent Cc stay out.
        expect(h.filter((n) => n === 'from')).toHaveLength(2);
        expect(h.filter((n) => n === 'subject')).toHaveLength(2);
        expect(h.filter((n) => n === 'to')).toHaveLength(1);
        expect(new Set(h)).toEqual(new Set(['from', 'to', 'subject', 'date', 'message-id', 'mime-version', 'content-type']));
      }
    });

    it('signs a domain with only an RSA key once', async () => {
      const { message, signatures } = await signer.sign(Buffer.from(MESSAGE), 'rsa-only.test');
      expect(signatures).toEqual([{ domain: 'rsa-only.test', selector: 's1', algorithm: 'rsa-sha256' }]);
      const results = await verify(message);
      expect(results['rsa-sha256']?.status.result).toBe('pass');
      expect(results['rsa-sha256']?.signingDomain).toBe('rsa-only.test');
    });

    it('fails both signatures when the body is altered after signing', async () => {
      const { message } = await signer.sign(Buffer.from(MESSAGE), 'example.test');
      const tampered = message.toString('latin1').replace('Total: 12.00 EUR', 'Total: 1200.00 EUR');
      for (const r of Object.values(await verify(tampered))) {
        expect(r.status.result).not.toBe('pass');
        expect(r.status.comment).toMatch(/body hash did not verify/);
      }
    });

    it('fails when a signed header value is altered', async () => {
      const { message } = await signer.sign(Buffer.from(MESSAGE), 'example.test');
      const tampered = message.toString('latin1').replace('Subject: Your receipt', 'Subject: Your refund');
      for (const r of Object.values(await verify(tampered))) expect(r.status.result).toBe('fail');
    });

    describe('over-signing: a From or Subject added after signing breaks DKIM wherever it is inserted', () => {
      for (const line of ['From: Mallory <ceo@example.test>', 'Subject: Urgent wire transfer']) {
        for (const where of ['top', 'bottom'] as const) {
          it(`${line.split(':')[0]} inserted at the ${where} of the header block`, async () => {
            const { message } = await signer.sign(Buffer.from(MESSAGE), 'example.test');
            const results = await verify(insertHeader(message, line, where));
            expect(results['rsa-sha256']?.status.result).toBe('fail');
            expect(results['ed25519-sha256']?.status.result).toBe('fail');
          });
        }
      }

      it('control: a To added at the top (signed but not over-signed) still verifies', async () => {
        // Verifiers bind h= names bottom-up, so without the surplus entry a prepended duplicate is never
        // looked at; this is exactly the gap over-signing closes for From and Subject.
        const { message } = await signer.sign(Buffer.from(MESSAGE), 'example.test');
        const results = await verify(insertHeader(message, 'To: extra@example.org', 'top'));
        expect(results['rsa-sha256']?.status.result).toBe('pass');
      });
    });

    it('normalises bare LF line endings to CRLF and signs what it returns', async () => {
      const { message } = await signer.sign(Buffer.from(MESSAGE.replace(/\r\n/g, '\n')), 'example.test');
      expect(message.toString('latin1')).not.toMatch(/[^\r]\n/);
      expect(message.subarray(-MESSAGE.length).toString()).toBe(MESSAGE);
      const results = await verify(message);
      expect(results['rsa-sha256']?.status.result).toBe('pass');
      expect(results['ed25519-sha256']?.status.result).toBe('pass');
    });

    it('signs a header-only message by adding the empty body', async () => {
      const headersOnly = 'From: a@example.test\r\nSubject: ping\r\n';
      const { message } = await signer.sign(Buffer.from(headersOnly), 'EXAMPLE.test.');
      expect(message.toString('latin1').endsWith(`${headersOnly}\r\n`)).toBe(true);
      expect((await verify(message))['rsa-sha256']?.status.result).toBe('pass');
    });

    it('throws DKIM_NO_KEY for a domain without keys', async () => {
      const err = await signer.sign(Buffer.from(MESSAGE), 'unknown.test').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DkimError);
      expect(err).toMatchObject({ code: 'DKIM_NO_KEY', domain: 'unknown.test', name: 'DkimError' });
    });

    it('throws DKIM_SIGN_FAILED for a message without From', async () => {
      const err = await signer.sign(Buffer.from('Subject: x\r\n\r\nbody\r\n'), 'example.test').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DkimError);
      expect(err).toMatchObject({ code: 'DKIM_SIGN_FAILED', message: expect.stringMatching(/no From header/) });
    });
  });

  describe('createDkimSigner key handling', () => {
    it('reports its domains case-insensitively', () => {
      expect(signer.domains()).toEqual(['example.test', 'rsa-only.test']);
      expect(signer.hasKey('EXAMPLE.TEST')).toBe(true);
      expect(signer.hasKey('other.test')).toBe(false);
    });

    it('refuses at creation a key whose type differs from its configured algorithm', () => {
      const pem = generateDkimKey('ed25519').privateKeyPem;
      expect(() => createDkimSigner({ keys: [{ domain: 'a.test', selector: 'k', algorithm: 'rsa', privateKeyPem: pem }] })).toThrow(
        'DKIM key k._domainkey.a.test: configured as rsa but the private key is ed25519',
      );
    });

    it('refuses at creation an unparsable key and a second key of the same algorithm', () => {
      expect(() => createDkimSigner({ keys: [{ domain: 'a.test', selector: 'k', algorithm: 'rsa', privateKeyPem: 'nope' }] })).toThrow(
        /^DKIM key k\._domainkey\.a\.test: DKIM private key is not PEM text/,
      );
      const ed = () => generateDkimKey('ed25519').privateKeyPem;
      expect(() =>
        createDkimSigner({
          keys: [
            { domain: 'a.test', selector: 'k1', algorithm: 'ed25519', privateKeyPem: ed() },
            { domain: 'a.test', selector: 'k2', algorithm: 'ed25519', privateKeyPem: ed() },
          ],
        }),
      ).toThrow(/already has an ed25519 key/);
    });
  });
});

describe('main thread and signing pool', () => {
  it('produce the same bytes for the same message, key and time', async () => {
    const pool = await SignPool.start({ threads: 1 });
    try {
      const main = createDkimSigner({ clock: () => SIGN_TIME, keys });
      const pooled = createDkimSigner({ clock: () => SIGN_TIME, keys, engine: pool });
      for (const raw of [MESSAGE, MESSAGE.replace(/\r\n/g, '\n'), 'From: a@example.test\r\nSubject: ping\r\n']) {
        const a = await main.sign(Buffer.from(raw), 'example.test');
        const b = await pooled.sign(Buffer.from(raw), 'example.test');
        expect(b.message.equals(a.message)).toBe(true);
        expect(b.signatures).toEqual(a.signatures);
      }
    } finally {
      await pool.close();
    }
  });
});

describe('the signing time', () => {
  it('is read once per message: a signature made while the clock crosses a half second still verifies', async () => {
    // Every read of Date.now() is 400 ms later than the one before, so any second read during one signature
    // lands on the other side of a half second (t= is the time in seconds, rounded).
    let now = SIGN_TIME.getTime() + 300;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => (now += 400));
    try {
      const signer = createDkimSigner({ clock: () => SIGN_TIME, keys });
      const signed = await signer.sign(Buffer.from(MESSAGE), 'example.test');
      expect((await verify(signed.message))['rsa-sha256']?.status.result).toBe('pass');
      expect(signed.message.toString('latin1')).toContain(`t=${SIGN_TIME.getTime() / 1000};`);

      // What this guards against: mailauth's own dkimSign, without signTime, reads the clock twice.
      const key = keys.find((k) => k.selector === 'rsa') as DkimKey;
      const data = { signingDomain: 'example.test', selector: 'rsa', privateKey: key.privateKeyPem, algorithm: 'rsa-sha256' as const };
      const bare = await dkimSign(MESSAGE, { signatureData: [data] });
      expect((await verify(bare.signatures + MESSAGE))['rsa-sha256']?.status.result).toBe('fail');
    } finally {
      clock.mockRestore();
    }
  });
});
