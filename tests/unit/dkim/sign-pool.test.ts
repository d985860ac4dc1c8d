import { dkimVerify } from 'mailauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dnsRecordFor, generateDkimKey } from '../../../src/dkim/keys.js';
import { SignPool, signingThreadsFor } from '../../../src/dkim/sign-pool.js';
import { createDkimSigner, DkimError, type DkimKeySource, type PreparedKey, prepareKey } from '../../../src/dkim/signer.js';
import { makeResolver, startDnsServer, type DnsServer } from '../../helpers/dns-server.js';

const MESSAGE = 'From: a@pool.test\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n';

const rsa = generateDkimKey('rsa');
const rotated = generateDkimKey('rsa');
let dns: DnsServer;
let resolver: ReturnType<typeof makeResolver>;

beforeAll(async () => {
  dns = await startDnsServer({
    'cfg._domainkey.pool.test': { TXT: [dnsRecordFor('rsa', rsa.publicKeyBase64)] },
    'k1._domainkey.runtime.test': { TXT: [dnsRecordFor('rsa', rsa.publicKeyBase64)] },
    'k2._domainkey.runtime.test': { TXT: [dnsRecordFor('rsa', rotated.publicKeyBase64)] },
  });
  resolver = makeResolver(dns.address);
});

afterAll(async () => {
  await dns?.close();
});

async function rsaResult(message: Buffer): Promise<{ result: string; selector?: string }> {
  const { results } = await dkimVerify(message, { resolver });
  const r = results.find((x) => x.algo === 'rsa-sha256');
  return { result: r?.status.result ?? 'none', selector: r?.selector };
}

/** A runtime key source whose keys the test changes, as DomainDirectory does on a reload. */
function mutableSource(): DkimKeySource & { set(domain: string, keys: PreparedKey[] | undefined): void } {
  const byDomain = new Map<string, PreparedKey[]>();
  return {
    keysFor: (d) => byDomain.get(d),
    domains: () => [...byDomain.keys()],
    set: (d, keys) => (keys ? byDomain.set(d, keys) : byDomain.delete(d)),
  };
}

describe('SignPool', () => {
  it('signs many concurrent messages over two threads, each verifying', async () => {
    const pool = await SignPool.start({ threads: 2 });
    try {
      const signer = createDkimSigner({ keys: [{ domain: 'pool.test', selector: 'cfg', algorithm: 'rsa', privateKeyPem: rsa.privateKeyPem }], engine: pool });
      pool.sync(signer.liveKeys());
      const signed = await Promise.all(Array.from({ length: 40 }, (_, i) => signer.sign(Buffer.from(MESSAGE.replace('body', `body ${i}`)), 'pool.test')));
      for (const s of signed) expect(await rsaResult(s.message)).toEqual({ result: 'pass', selector: 'cfg' });
    } finally {
      await pool.close();
    }
  });

  it('signs with a runtime key after rotation and never with a revoked one', async () => {
    const pool = await SignPool.start({ threads: 2 });
    try {
      const source = mutableSource();
      const signer = createDkimSigner({ keys: [], source, engine: pool });
      source.set('runtime.test', [prepareKey({ domain: 'runtime.test', selector: 'k1', algorithm: 'rsa', privateKeyPem: rsa.privateKeyPem })]);
      pool.sync(signer.liveKeys());
      const msg = Buffer.from(MESSAGE.replace('a@pool.test', 'a@runtime.test'));
      expect(await rsaResult((await signer.sign(msg, 'runtime.test')).message)).toEqual({ result: 'pass', selector: 'k1' });

      source.set('runtime.test', [prepareKey({ domain: 'runtime.test', selector: 'k2', algorithm: 'rsa', privateKeyPem: rotated.privateKeyPem })]);
      pool.sync(signer.liveKeys());
      const after = await Promise.all([1, 2, 3, 4].map(() => signer.sign(msg, 'runtime.test')));
      for (const s of after) expect(await rsaResult(s.message)).toEqual({ result: 'pass', selector: 'k2' });

      source.set('runtime.test', undefined);
      pool.sync(signer.liveKeys());
      await expect(signer.sign(msg, 'runtime.test')).rejects.toMatchObject({ code: 'DKIM_NO_KEY' });
    } finally {
      await pool.close();
    }
  });

  it('fails the signatures in flight on a thread that dies with DKIM_UNAVAILABLE, then replaces the thread', async () => {
    const pool = await SignPool.start({ threads: 1 });
    try {
      const signer = createDkimSigner({ keys: [{ domain: 'pool.test', selector: 'cfg', algorithm: 'rsa', privateKeyPem: rsa.privateKeyPem }], engine: pool });
      pool.sync(signer.liveKeys());
      const [thread] = pool.workers();
      const inFlight = Array.from({ length: 10 }, () => signer.sign(Buffer.from(MESSAGE), 'pool.test').catch((e: unknown) => e));
      await thread!.terminate();
      const outcomes = await Promise.all(inFlight);
      const failed = outcomes.filter((o) => o instanceof DkimError);
      expect(failed.length).toBeGreaterThan(0);
      for (const e of failed) {
        expect(e).toMatchObject({ code: 'DKIM_UNAVAILABLE', domain: 'pool.test', message: expect.stringMatching(/signing thread stopped.*try again/) });
      }
      // Until the replacement runs, signing is refused with the same code; afterwards it works again.
      await expect.poll(() => pool.workers().length, { timeout: 5000 }).toBe(1);
      expect(pool.workers()[0]).not.toBe(thread);
      await expect
        .poll(
          async () =>
            (
              await signer.sign(Buffer.from(MESSAGE), 'pool.test').then(
                (s) => rsaResult(s.message),
                () => null,
              )
            )?.result,
          { timeout: 5000 },
        )
        .toBe('pass');
    } finally {
      await pool.close();
    }
  });

  it('refuses to sign once closed, with DKIM_UNAVAILABLE', async () => {
    const pool = await SignPool.start({ threads: 1 });
    const signer = createDkimSigner({ keys: [{ domain: 'pool.test', selector: 'cfg', algorithm: 'rsa', privateKeyPem: rsa.privateKeyPem }], engine: pool });
    await pool.close();
    await expect(signer.sign(Buffer.from(MESSAGE), 'pool.test')).rejects.toMatchObject({ code: 'DKIM_UNAVAILABLE' });
  });
});

describe('signingThreadsFor', () => {
  it('on auto: none on one core, one on two, then leaves two cores and uses at most two threads', () => {
    expect([1, 2, 3, 4, 8].map((cores) => signingThreadsFor('auto', cores))).toEqual([0, 1, 1, 2, 2]);
  });

  it('uses a number as given', () => {
    expect(signingThreadsFor(0, 8)).toBe(0);
    expect(signingThreadsFor(3, 2)).toBe(3);
  });
});
